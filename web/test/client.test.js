import { test } from "node:test";
import assert from "node:assert/strict";
import { HTTPError, Instant, paths } from "../src/instant.js";

/** A WebSocket that never opens: the tests look at the HTTP side only. */
class IdleWebSocket {
  constructor(url) {
    this.url = url;
  }
  send() {}
  close() {
    queueMicrotask(() => this.onclose?.({ code: 1000, reason: "" }));
  }
}

const tokens = (channels, extra = {}) => ({
  csrf_token: "csrf-1",
  ws_token: "ws",
  channels: channels.map((name) => ({ name, level: name === "public" ? "public" : "users", token: `tok-${name}` })),
  ...extra,
});

/** fakeFetch answers each path with the next of its responses and records the calls. */
function fakeFetch(responses) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, ...init, body: JSON.parse(init.body) });
    const path = new URL(url).pathname;
    const next = responses[path]?.shift();
    if (next === undefined) {
      throw new Error(`unexpected request to ${path}`);
    }
    return typeof next === "number"
      ? { ok: false, status: next, json: async () => ({}) }
      : { ok: true, status: 200, json: async () => next };
  };
  return { fetch, calls };
}

function newClient(fetch, options = {}) {
  return new Instant({
    baseURL: "http://auth.test/",
    websocketURL: "ws://ws.test/connection/websocket",
    fetch,
    centrifuge: { websocket: IdleWebSocket },
    ...options,
  });
}

test("login posts the credentials with cookies, then sends the CSRF token", async () => {
  const { fetch, calls } = fakeFetch({
    [paths.login]: [tokens(["$users", "public"])],
    [paths.subscribe]: [{ token: "fresh" }],
    [paths.logout]: [{ response: "ok" }],
  });
  const client = newClient(fetch);
  const changes = [];
  client.onChannels((c) => changes.push(c.map((x) => x.name)));
  assert.deepEqual(await client.login("alice", "pw"), [
    { name: "$users", level: "users" },
    { name: "public", level: "public" },
  ]);
  assert.equal(client.state, "connecting");
  assert.deepEqual(await client.renewSubscription("$users"), "fresh");
  await client.logout();
  assert.equal(client.state, "disconnected");
  assert.deepEqual(changes, [["$users", "public"], []]);
  assert.deepEqual(
    calls.map((c) => [c.url, c.method, c.credentials, c.headers["X-CSRFToken"], c.body]),
    [
      ["http://auth.test/instant/login/", "POST", "include", undefined, { username: "alice", password: "pw" }],
      ["http://auth.test/instant/subscribe/", "POST", "include", "csrf-1", { channel: "$users" }],
      ["http://auth.test/instant/logout/", "POST", "include", "csrf-1", {}],
    ],
  );
});

test("a failed login rejects with the status and leaves the state alone", async () => {
  const { fetch } = fakeFetch({ [paths.login]: [403] });
  const client = newClient(fetch);
  await assert.rejects(client.login("alice", "wrong"), (err) => err instanceof HTTPError && err.status === 403);
  assert.equal(client.state, "disconnected");
  assert.deepEqual(client.channels, []);
});

test("an identity JWT goes as a Bearer token, from a function too; logout skips the endpoint", async () => {
  let n = 0;
  const { fetch, calls } = fakeFetch({ [paths.getToken]: [tokens(["public"], { csrf_token: "" }), tokens(["public"])] });
  const client = newClient(fetch, { identity: async () => `jwt-${++n}` });
  await client.connect();
  await client.renewConnection(client.client);
  await client.logout();
  assert.deepEqual(
    calls.map((c) => [c.headers.Authorization, c.headers["X-CSRFToken"]]),
    [
      ["Bearer jwt-1", undefined],
      ["Bearer jwt-2", undefined],
    ],
  );
});

test("a renewal follows changes of the channel list", async () => {
  const { fetch } = fakeFetch({
    [paths.getToken]: [tokens(["$users", "public"]), tokens(["$group1", "public"]), tokens(["$group1", "public"])],
  });
  const client = newClient(fetch);
  const changes = [];
  client.onChannels((c) => changes.push(c.map((x) => x.name)));
  await client.connect();
  assert.deepEqual([...client.subs.keys()].sort(), ["$users", "public"]);
  const publicSub = client.subs.get("public");
  assert.equal(await client.renewConnection(client.client), "ws");
  assert.deepEqual([...client.subs.keys()].sort(), ["$group1", "public"]);
  assert.equal(client.subs.get("public"), publicSub, "a kept channel keeps its subscription");
  assert.equal(client.client.getSubscription("$users"), null, "a lost channel is unsubscribed and removed");
  await client.renewConnection(client.client); // unchanged: no event
  assert.deepEqual(changes, [["$users", "public"], ["$group1", "public"]]);
  client.disconnect();
});

test("a 403 on renewal ends the connection or subscription instead of retrying", async () => {
  const { fetch } = fakeFetch({ [paths.getToken]: [tokens(["public"]), 403], [paths.subscribe]: [403, 500] });
  const client = newClient(fetch);
  await client.connect();
  await assert.rejects(client.renewConnection(client.client), { name: "UnauthorizedError" });
  await assert.rejects(client.renewSubscription("public"), { name: "UnauthorizedError" });
  await assert.rejects(client.renewSubscription("public"), (err) => err instanceof HTTPError && err.status === 500);
  client.disconnect();
});

test("duplicates are dropped per channel: the same id on another channel is another message", () => {
  const client = newClient(fakeFetch({}).fetch);
  const got = [];
  client.on((m) => got.push(`${m.channel}:${m.id}`));
  client.receive("public", { id: "7", channel: "public", message: "a" });
  client.receive("public", { id: "7", channel: "public", message: "a" });
  client.receive("$users", { id: "7", channel: "$users", message: "b" });
  client.receive("public", { channel: "public", message: "no id" });
  client.receive("public", { channel: "public", message: "no id" });
  assert.deepEqual(got, ["public:7", "$users:7", "public:undefined", "public:undefined"]);
});
