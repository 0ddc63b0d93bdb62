import { test } from "node:test";
import assert from "node:assert/strict";
import { Router } from "../src/router.js";
import { Instant } from "../src/instant.js";

const msgs = [
  { id: "1", channel: "public", eventClass: "important", bucket: "news" },
  { id: "2", channel: "$users", eventClass: "info" },
  { id: "3", channel: "public", bucket: "news" },
];

function collect(router, key, value) {
  const got = [];
  const off = router.add(key, value, (m) => got.push(m.id));
  return { got, off };
}

test("Router: filters by key", () => {
  const r = new Router(assert.fail);
  const all = collect(r, null);
  const pub = collect(r, "channel", "public");
  const important = collect(r, "eventClass", "important");
  const news = collect(r, "bucket", "news");
  const none = collect(r, "channel", "$staff");
  msgs.forEach((m) => r.dispatch(m));
  assert.deepEqual(all.got, ["1", "2", "3"]);
  assert.deepEqual(pub.got, ["1", "3"]);
  assert.deepEqual(important.got, ["1"]);
  assert.deepEqual(news.got, ["1", "3"]);
  assert.deepEqual(none.got, []);
});

test("Router: handlers run in the order they were added", () => {
  const r = new Router(assert.fail);
  const order = [];
  r.add(null, undefined, () => order.push("a"));
  r.add("channel", "public", () => order.push("b"));
  r.add(null, undefined, () => order.push("c"));
  r.dispatch(msgs[0]);
  assert.deepEqual(order, ["a", "b", "c"]);
});

test("Router: unsubscribe removes only its handler, twice is harmless", () => {
  const r = new Router(assert.fail);
  const a = collect(r, null);
  const b = collect(r, null);
  r.dispatch(msgs[0]);
  a.off();
  a.off();
  r.dispatch(msgs[1]);
  assert.deepEqual(a.got, ["1"]);
  assert.deepEqual(b.got, ["1", "2"]);
});

test("Router: a handler that throws does not stop the others", () => {
  const errors = [];
  const r = new Router((e) => errors.push(e.message));
  r.add(null, undefined, () => {
    throw new Error("boom");
  });
  const after = collect(r, null);
  r.dispatch(msgs[0]);
  assert.deepEqual(errors, ["boom"]);
  assert.deepEqual(after.got, ["1"]);
});

test("Router: a handler may remove itself while dispatching", () => {
  const r = new Router(assert.fail);
  const got = [];
  const off = r.add(null, undefined, (m) => {
    got.push(m.id);
    off();
  });
  const other = collect(r, null);
  r.dispatch(msgs[0]);
  r.dispatch(msgs[1]);
  assert.deepEqual(got, ["1"]);
  assert.deepEqual(other.got, ["1", "2"]);
});

test("Router: a handler must be a function", () => {
  assert.throws(() => new Router(assert.fail).add(null, undefined, "nope"), TypeError);
});

test("Instant: routes decoded messages and drops duplicates by id", () => {
  const client = new Instant({ websocketURL: "ws://127.0.0.1:1/connection/websocket", dedupLimit: 2 });
  const seen = { all: [], pub: [], important: [], news: [] };
  client.on((m) => seen.all.push(m.id));
  client.on("public", (m) => seen.pub.push(m.id));
  client.onEvent("important", (m) => seen.important.push(m.id));
  const offNews = client.onBucket("news", (m) => seen.news.push(m.id));
  client.receive("public", { id: "1", channel: "public", site: "S", message: "a", event_class: "important", bucket: "news" });
  client.receive("public", JSON.stringify({ id: "1", channel: "public", site: "S", message: "a" }));
  client.receive("$users", JSON.stringify({ id: "2", channel: "$users", site: "S", data: { n: 1 } }));
  offNews();
  client.receive("public", { id: "3", channel: "public", site: "S", bucket: "news" });
  client.receive("public", { id: "1", channel: "public", site: "S" }); // forgotten: limit 2
  client.receive("public", "no id, plain text");
  client.receive("public", "no id, plain text");
  assert.deepEqual(seen.all, ["1", "2", "3", "1", undefined, undefined]);
  assert.deepEqual(seen.pub, ["1", "3", "1", undefined, undefined]);
  assert.deepEqual(seen.important, ["1"]);
  assert.deepEqual(seen.news, ["1"]);
});

test("Instant: the websocket URL is required outside a page", () => {
  assert.throws(() => new Instant(), TypeError);
});
