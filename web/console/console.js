// The operator console: channels, users, dead letters and live traffic,
// on the admin API of instant auth (/instant/admin/…). Every value that
// comes from a producer or a user is rendered as text (textContent),
// never as HTML.

import uPlot from "uplot";
import { HTTPError, Instant } from "../src/instant.js";

const admin = "/instant/admin/";
const csrfCookie = "instant_csrftoken";
const tailLimit = 200;
const chartPoints = 300; // seconds of traffic shown

const $ = (id) => document.getElementById(id);

/** APIError is an admin endpoint answering with a status other than 200. */
class APIError extends Error {
  constructor(status, message) {
    super(message || `the server answered ${status}`);
    this.status = status;
  }
}

/** api calls an admin endpoint: GET without body, POST with a JSON body. */
async function api(path, body) {
  const headers = { Accept: "application/json" };
  const csrf = cookie(csrfCookie);
  if (csrf) {
    headers["X-CSRFToken"] = csrf;
  }
  const init = { method: "GET", headers, credentials: "same-origin" };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(admin + path, init);
  if (!resp.ok) {
    let msg = "";
    try {
      msg = (await resp.json()).error;
    } catch {
      // 403 and others have no body.
    }
    throw new APIError(resp.status, msg || (resp.status === 403 ? "not allowed" : ""));
  }
  return resp.json();
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) {
      return decodeURIComponent(v.join("="));
    }
  }
  return "";
}

/** el creates an element with text content and attributes. */
function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) {
    e.textContent = String(text);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "className") {
      e.className = v;
    } else if (k.startsWith("data-")) {
      e.dataset[k.slice(5)] = v;
    } else {
      e.setAttribute(k, v);
    }
  }
  return e;
}

function button(text, onClick, className = "") {
  const b = el("button", text, { type: "button" });
  if (className) {
    b.className = className;
  }
  b.addEventListener("click", onClick);
  return b;
}

function say(id, text, ok = true) {
  $(id).textContent = text;
  $(id).className = ok ? "ok" : "error";
}

function groupsOf(text) {
  return text.split(",").map((g) => g.trim()).filter((g) => g !== "");
}

// ---- session ---------------------------------------------------------

const client = new Instant({
  websocketURL: document.querySelector('meta[name="instant-websocket-url"]').content || undefined,
});
let me = null;

async function start() {
  try {
    await client.connect();
  } catch {
    showLogin();
    return;
  }
  await enter();
}

function showLogin() {
  $("login").hidden = false;
  $("tabs").hidden = true;
  for (const p of document.querySelectorAll("[data-panel]")) {
    p.hidden = true;
  }
}

async function enter() {
  try {
    me = await api("me/");
  } catch (err) {
    client.disconnect();
    $("notice").textContent = err.status === 403 ? "This account may not use the console: it is for staff users and superusers." : `The console cannot start: ${err.message}`;
    showLogin();
    return;
  }
  $("notice").textContent = "";
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("who").textContent = `${me.username} (${me.superuser ? "superuser" : "staff"})`;
  document.querySelector('[data-tab="users"]').hidden = !me.users;
  $("channel-form").hidden = !me.can_edit;
  $("dead-actions").hidden = !(me.superuser && me.dead_letters);
  $("dead-core").hidden = me.dead_letters;
  show("channels");
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("notice").textContent = "";
  try {
    await client.login($("username").value, $("password").value);
    $("password").value = "";
  } catch (err) {
    $("notice").textContent = err instanceof HTTPError && err.status === 403 ? "Wrong user name or password." : `Login failed: ${err.message}`;
    return;
  }
  await enter();
});

$("logout").addEventListener("click", async () => {
  try {
    await client.logout();
  } catch {
    // Disconnected anyway.
  }
  location.reload();
});

client.onState(({ state }) => {
  $("tail-state").textContent = `(${state})`;
});

// ---- tabs ------------------------------------------------------------

const loaders = { channels: loadChannels, users: loadUsers, dead: loadDead, traffic: startTraffic };

function show(tab) {
  for (const b of document.querySelectorAll("[data-tab]")) {
    b.setAttribute("aria-pressed", String(b.dataset.tab === tab));
  }
  for (const p of document.querySelectorAll("[data-panel]")) {
    p.hidden = p.id !== tab;
  }
  if (tab !== "traffic") {
    stopTraffic();
  }
  loaders[tab]().catch((err) => {
    $("notice").textContent = `Loading ${tab} failed: ${err.message}`;
  });
}

for (const b of document.querySelectorAll("[data-tab]")) {
  b.addEventListener("click", () => show(b.dataset.tab));
}

// ---- channels --------------------------------------------------------

async function loadChannels() {
  const { channels } = await api("channels/");
  const rows = $("channel-rows");
  rows.replaceChildren();
  for (const c of channels) {
    const tr = el("tr", null, { "data-name": c.name });
    tr.append(
      el("td", c.name),
      el("td", c.level),
      el("td", c.groups.join(", ")),
      el("td", c.active ? "yes" : "no"),
      el("td", c.subscribers ?? "?"),
      el("td", c.history ? c.history.offset : "–"),
    );
    const actions = el("td");
    if (me.can_edit) {
      actions.append(
        button("Edit", () => editChannel(c)),
        " ",
        confirmButton("Remove", "Confirm remove", () => removeChannel(c.name)),
      );
    }
    tr.append(actions);
    rows.append(tr);
  }
}

/** confirmButton asks for a second click before it acts. */
function confirmButton(text, confirmText, act) {
  let armed = false;
  const b = button(text, async () => {
    if (!armed) {
      armed = true;
      b.textContent = confirmText;
      b.className = "danger";
      return;
    }
    await act();
  });
  return b;
}

function editChannel(c) {
  $("channel-name").value = c.name;
  $("channel-level").value = c.level;
  $("channel-groups").value = c.groups.join(", ");
  $("channel-active").checked = c.active;
  preview();
  $("channel-name").focus();
}

async function removeChannel(name) {
  try {
    const res = await api("channels/remove/", { name });
    say("channel-result", `Removed ${name}.${ended(res.revocations, "subscription")}`);
  } catch (err) {
    say("channel-result", `Removing ${name} failed: ${err.message}`, false);
  }
  await loadChannels();
}

/** ended says how many revocations a change made. */
function ended(n, what) {
  if (n === undefined || n === null || n === 0) {
    return "";
  }
  return ` ${n} ${what}${n === 1 ? "" : "s"} ended.`;
}

let previewSeq = 0;
async function preview() {
  const name = $("channel-name").value;
  const level = $("channel-level").value;
  const seq = ++previewSeq;
  if (name === "") {
    $("channel-preview").textContent = "";
    return;
  }
  try {
    const res = await api(`channels/name/?${new URLSearchParams({ name, level })}`);
    if (seq !== previewSeq) {
      return;
    }
    const p = $("channel-preview");
    if (res.error) {
      p.textContent = res.error;
      p.className = "error";
    } else {
      p.textContent = res.name === name ? `Registered as ${res.name}.` : `Registered as ${res.name}: a ${level} channel's name starts with $.`;
      p.className = "hint";
    }
    p.dataset.name = res.name;
  } catch {
    // The next keystroke tries again.
  }
}

$("channel-name").addEventListener("input", preview);
$("channel-level").addEventListener("change", preview);

$("channel-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = {
    name: $("channel-name").value,
    level: $("channel-level").value,
    groups: groupsOf($("channel-groups").value),
    active: $("channel-active").checked,
  };
  try {
    const res = await api("channels/", body);
    say("channel-result", `${res.created ? "Added" : "Saved"} ${res.channel.name}.${ended(res.revocations, "subscription")}`);
    $("channel-form").reset();
    $("channel-preview").textContent = "";
  } catch (err) {
    say("channel-result", `Saving failed: ${err.message}`, false);
  }
  await loadChannels();
});

// ---- users -----------------------------------------------------------

let editing = null; // the user name being edited, or null when adding

async function loadUsers() {
  const { users } = await api("users/");
  const rows = $("user-rows");
  rows.replaceChildren();
  for (const u of users) {
    const tr = el("tr", null, { "data-name": u.username });
    tr.append(el("td", u.username), el("td", u.groups.join(", ")), el("td", u.staff ? "yes" : "no"), el("td", u.superuser ? "yes" : "no"));
    const actions = el("td");
    actions.append(
      button("Edit", () => editUser(u)),
      " ",
      confirmButton("Reset password", "Confirm reset", () => resetPassword(u.username)),
      " ",
    );
    if (u.username !== me.username) {
      actions.append(confirmButton("Remove", "Confirm remove", () => removeUser(u.username)));
    }
    tr.append(actions);
    rows.append(tr);
  }
}

function editUser(u) {
  editing = u.username;
  $("user-form-title").textContent = `Change ${u.username}`;
  $("user-name").value = u.username;
  $("user-name").disabled = true;
  $("user-groups").value = u.groups.join(", ");
  $("user-staff").checked = u.staff;
  $("user-superuser").checked = u.superuser;
  $("user-submit").textContent = "Save user";
  $("user-cancel").hidden = false;
}

function resetUserForm() {
  editing = null;
  $("user-form").reset();
  $("user-name").disabled = false;
  $("user-form-title").textContent = "Add a user";
  $("user-submit").textContent = "Add user";
  $("user-cancel").hidden = true;
}

$("user-cancel").addEventListener("click", resetUserForm);

function showPassword(user, password) {
  $("password-user").textContent = user;
  $("new-password").textContent = password;
  $("password-box").hidden = false;
}

$("user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("password-box").hidden = true;
  const body = {
    username: $("user-name").value,
    groups: groupsOf($("user-groups").value),
    staff: $("user-staff").checked,
    superuser: $("user-superuser").checked,
  };
  try {
    if (editing === null) {
      const res = await api("users/", body);
      say("user-result", `Added ${res.user.username}.`);
      showPassword(res.user.username, res.password);
    } else {
      const res = await api("users/update/", body);
      say("user-result", `Saved ${res.user.username}.${ended(res.revocations, "subscription")}`);
    }
    resetUserForm();
  } catch (err) {
    say("user-result", `Failed: ${err.message}`, false);
  }
  await loadUsers();
});

async function resetPassword(username) {
  $("password-box").hidden = true;
  try {
    const res = await api("users/password/", { username });
    say("user-result", `New password for ${username}.${connectionsEnded(username, res.revocations)}`);
    showPassword(username, res.password);
  } catch (err) {
    say("user-result", `Resetting the password failed: ${err.message}`, false);
  }
  await loadUsers();
}

async function removeUser(username) {
  $("password-box").hidden = true;
  try {
    const res = await api("users/remove/", { username });
    say("user-result", `Removed ${username}.${connectionsEnded(username, res.revocations)}`);
  } catch (err) {
    say("user-result", `Removing failed: ${err.message}`, false);
  }
  await loadUsers();
}

function connectionsEnded(username, n) {
  return n ? ` Every connection of ${username} ended.` : "";
}

// ---- dead letters ----------------------------------------------------

async function loadDead() {
  const q = new URLSearchParams();
  if ($("dead-code").value) {
    q.set("code", $("dead-code").value);
  }
  if ($("dead-channel").value) {
    q.set("channel", $("dead-channel").value);
  }
  const { kept, messages } = await api(`dead/?${q}`);
  $("dead-core").hidden = kept;
  $("dead-all").checked = false;
  const rows = $("dead-rows");
  rows.replaceChildren();
  for (const m of messages) {
    const tr = el("tr", null, { "data-seq": String(m.seq) });
    const pick = el("input", null, { type: "checkbox", "aria-label": `Select ${m.seq}` });
    pick.value = String(m.seq);
    const pickCell = el("td");
    pickCell.append(pick);
    const body = el("td");
    body.append(el("pre", m.body, { className: "body" }));
    tr.append(
      pickCell,
      el("td", new Date(m.time).toLocaleString()),
      el("td", m.code, { className: "code" }),
      el("td", m.channel),
      el("td", m.subject),
      el("td", m.message),
      body,
    );
    rows.append(tr);
  }
  if (messages.length === 0) {
    const tr = el("tr");
    tr.append(el("td", kept ? "No dead letters." : "", { colspan: "7" }));
    rows.append(tr);
  }
}

$("dead-filter").addEventListener("submit", (e) => {
  e.preventDefault();
  loadDead().catch((err) => say("dead-result", err.message, false));
});

$("dead-all").addEventListener("change", () => {
  for (const c of $("dead-rows").querySelectorAll('input[type="checkbox"]')) {
    c.checked = $("dead-all").checked;
  }
});

$("dead-republish").addEventListener("click", async () => {
  const seqs = [...$("dead-rows").querySelectorAll('input[type="checkbox"]:checked')].map((c) => Number(c.value));
  if (seqs.length === 0) {
    say("dead-result", "Select the dead letters to publish again.", false);
    return;
  }
  try {
    const { results } = await api("dead/republish/", { seqs });
    const failed = results.filter((r) => !r.ok);
    say(
      "dead-result",
      `Published ${results.length - failed.length} of ${results.length} again; the bridge checks them anew.` +
        failed.map((r) => ` ${r.seq}: ${r.error}`).join(""),
      failed.length === 0,
    );
  } catch (err) {
    say("dead-result", `Re-publishing failed: ${err.message}`, false);
  }
  await loadDead();
});

$("dead-purge").addEventListener("click", () => {
  $("dead-confirm").hidden = false;
});
$("dead-purge-no").addEventListener("click", () => {
  $("dead-confirm").hidden = true;
});
$("dead-purge-yes").addEventListener("click", async () => {
  $("dead-confirm").hidden = true;
  try {
    const { purged } = await api("dead/purge/", { confirm: true });
    say("dead-result", `Purged ${purged} dead letter${purged === 1 ? "" : "s"}.`);
  } catch (err) {
    say("dead-result", `Purging failed: ${err.message}`, false);
  }
  await loadDead();
});

// ---- live traffic ----------------------------------------------------

let timer = null;
let chart = null;
let last = null; // the previous counters reading
const series = [[], [], [], []]; // time, relayed, rejected, retried per second

function startTraffic() {
  fillTailChannels();
  if (!me.traffic) {
    $("chart-note").textContent = "The bridge's metrics are not configured here (INSTANT_BRIDGE_METRICS_URL).";
    return Promise.resolve();
  }
  if (chart === null) {
    chart = new uPlot(
      {
        width: Math.min(900, $("chart").clientWidth || 900),
        height: 220,
        series: [
          {},
          { label: "relayed/s", stroke: "#1d5fbf", width: 2 },
          { label: "rejected/s", stroke: "#b33", width: 2 },
          { label: "retried/s", stroke: "#c80", width: 2 },
        ],
        axes: [{ values: (_u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString()) }, { label: "per second" }],
        scales: {
          x: { time: true, range: (_u, _min, max) => [max - chartPoints, max] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
        },
      },
      series,
      $("chart"),
    );
  }
  if (timer === null) {
    timer = setInterval(sample, 1000);
  }
  return sample();
}

function stopTraffic() {
  clearInterval(timer);
  timer = null;
}

async function sample() {
  const t = await api("traffic/");
  if (!t.available) {
    $("chart-note").textContent = "The bridge's metrics cannot be read now.";
    last = null;
    return;
  }
  $("chart-note").textContent = `Totals since the bridge started: ${t.counters.relayed} relayed, ${t.counters.rejected} rejected, ${t.counters.retried} retried.`;
  if (last !== null && t.time > last.time) {
    const dt = (t.time - last.time) / 1000;
    const rate = (k) => Math.max(0, (t.counters[k] - last.counters[k]) / dt);
    series[0].push(t.time / 1000);
    series[1].push(rate("relayed"));
    series[2].push(rate("rejected"));
    series[3].push(rate("retried"));
    for (const s of series) {
      s.splice(0, Math.max(0, s.length - chartPoints));
    }
    chart.setData(series);
    $("chart").dataset.points = String(series[0].length);
  }
  last = t;
}

function fillTailChannels() {
  const select = $("tail-channel");
  const current = select.value;
  select.replaceChildren();
  for (const c of client.channels) {
    select.append(el("option", c.name, { value: c.name }));
  }
  if (current) {
    select.value = current;
  }
}

client.onChannels(() => {
  if (!$("traffic").hidden) {
    fillTailChannels();
  }
});

client.on((msg) => {
  if (msg.channel !== $("tail-channel").value) {
    return;
  }
  const li = el("li", null, { "data-id": msg.id ?? "" });
  li.append(el("span", msg.received.toLocaleTimeString(), { className: "tag" }));
  for (const [label, value] of [["event", msg.eventClass], ["bucket", msg.bucket]]) {
    if (value) {
      li.append(el("span", `${label}: ${value}`, { className: "tag" }));
    }
  }
  if (msg.message !== undefined) {
    li.append(el("span", msg.message, { className: "text" }));
  }
  if (msg.data !== undefined) {
    li.append(el("pre", JSON.stringify(msg.data, null, 2)));
  }
  const tail = $("tail");
  tail.prepend(li);
  while (tail.children.length > tailLimit) {
    tail.lastElementChild.remove();
  }
});

$("tail-channel").addEventListener("change", () => $("tail").replaceChildren());

start();
