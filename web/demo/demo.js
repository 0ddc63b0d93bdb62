// The demo page: log in, watch the connection, show every message.

import { HTTPError, Instant } from "/instant/static/instant.js";

const feedLimit = 200;
const $ = (id) => document.getElementById(id);

const client = new Instant({
  websocketURL: document.querySelector('meta[name="instant-websocket-url"]').content || undefined,
});

// For the browser console: try instant.on((m) => console.log(m)).
window.instant = client;

client.onState(({ state, code, reason }) => {
  $("state-name").textContent = state;
  $("state-name").dataset.state = state;
  $("state-reason").textContent = reason ? `(${reason})` : "";
  if (state === "disconnected" && code !== 0) {
    // Not our own logout: the server ended the session (logout elsewhere,
    // password changed, user removed) or refused to renew its tokens.
    loggedIn(false);
    $("login-error").textContent = "Your session ended: log in again.";
  }
});

client.onChannels((channels) => {
  $("channels").textContent = channels.map((c) => `${c.name} (${c.level})`).join(", ") || "none";
});

const unrecovered = new Set();
client.onUnrecovered(({ channel }) => {
  unrecovered.add(channel);
  const note = $("unrecovered");
  note.textContent = `Some messages on ${[...unrecovered].join(", ")} may be missing: they could not be recovered after a reconnect.`;
  note.hidden = false;
});

client.on(show);

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  clearFeed(); // whatever is left was another session's
  try {
    await client.login($("username").value, $("password").value);
    $("password").value = "";
    loggedIn(true, true);
  } catch (err) {
    $("login-error").textContent = loginError(err);
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await client.logout();
  } catch (err) {
    // logout() disconnects even when the request fails: say so, go on.
    $("login-error").textContent = `Logged out here; the server did not confirm: ${err.message}`;
  } finally {
    clearFeed(); // the next user must not see this one's messages
    loggedIn(false, true);
  }
});

/** loggedIn shows the login form or the account; focus moves there after a user action. */
function loggedIn(yes, focus = false) {
  $("login").hidden = yes;
  $("account").hidden = !yes;
  $("console-link").hidden = true;
  if (yes) {
    showConsoleLink();
  }
  if (focus) {
    (yes ? $("logout") : $("username")).focus();
  }
}

/** showConsoleLink shows the console link to staff users and superusers: the admin API answers them. */
async function showConsoleLink() {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("instant_csrftoken="));
  const headers = csrf ? { "X-CSRFToken": decodeURIComponent(csrf.split("=")[1]) } : {};
  try {
    const resp = await fetch("/instant/admin/me/", { headers, credentials: "same-origin" });
    $("console-link").hidden = !resp.ok;
  } catch {
    // No console here.
  }
}

function loginError(err) {
  if (err instanceof HTTPError && err.status === 403) {
    return "Wrong user name or password.";
  }
  if (err instanceof HTTPError && err.status === 429) {
    return "Too many attempts: wait a moment and try again.";
  }
  return `Login failed: ${err.message}`;
}

/** show adds a message at the top of the feed. */
function show(msg) {
  const li = document.createElement("li");
  li.dataset.id = msg.id ?? "";
  li.dataset.channel = msg.channel;
  const time = document.createElement("time");
  time.dateTime = msg.received.toISOString();
  time.textContent = msg.received.toLocaleTimeString();
  li.append(time, " ", span("channel", msg.channel));
  for (const [label, value] of [["event", msg.eventClass], ["bucket", msg.bucket]]) {
    if (value) {
      li.append(" ", span("tag", `${label}: ${value}`));
    }
  }
  if (msg.message !== undefined) {
    li.append(span("text", msg.message));
  }
  if (msg.data !== undefined) {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(msg.data, null, 2);
    li.append(pre);
  }
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > feedLimit) {
    feed.lastElementChild.remove();
  }
  $("feed-empty").hidden = true;
}

/** clearFeed empties the feed and the notice of missing messages. */
function clearFeed() {
  $("feed").replaceChildren();
  $("feed-empty").hidden = false;
  unrecovered.clear();
  $("unrecovered").textContent = "";
  $("unrecovered").hidden = true;
}

function span(className, text) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  return s;
}

// Resume the session of an earlier login (or connect anonymously when the
// server allows it); otherwise show the login form.
client.connect().then(
  () => loggedIn(document.cookie.includes("instant_csrftoken=")),
  () => loggedIn(false),
);
