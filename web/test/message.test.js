import { test } from "node:test";
import assert from "node:assert/strict";
import { decode } from "../src/message.js";

const received = new Date(0);
const full = {
  id: "order-42",
  channel: "$users",
  site: "shop",
  message: "hello",
  data: { n: 1 },
  event_class: "important",
  bucket: "notifications",
};
const want = {
  id: "order-42",
  channel: "$users",
  site: "shop",
  message: "hello",
  data: { n: 1 },
  eventClass: "important",
  bucket: "notifications",
  received,
};

test("decode: the bridge's object", () => {
  assert.deepEqual(decode("$users", full, received), want);
});

test("decode: the same object JSON-encoded as a string", () => {
  assert.deepEqual(decode("$users", JSON.stringify(full), received), want);
  assert.deepEqual(decode("$users", "  \n" + JSON.stringify(full), received), want);
});

test("decode: optional keys stay absent", () => {
  const got = decode("public", { id: "7", channel: "public", site: "Site", message: "hi" }, received);
  assert.deepEqual(got, { id: "7", channel: "public", site: "Site", message: "hi", received });
  assert.equal("data" in got, false);
  assert.equal("eventClass" in got, false);
});

test("decode: data may be any JSON value, null and false included", () => {
  for (const data of [null, false, 0, "", [1, 2], "text"]) {
    assert.deepEqual(decode("c", { id: "1", data }, received).data, data);
  }
});

test("decode: the arrival channel wins over the payload's", () => {
  assert.equal(decode("public", { ...full, channel: "$staff" }, received).channel, "public");
  assert.equal(decode("", { ...full, channel: "$staff" }, received).channel, "$staff");
});

test("decode: numeric ids become strings", () => {
  assert.equal(decode("c", { id: 12, message: "m" }, received).id, "12");
});

test("decode: fields of the wrong type are dropped", () => {
  const got = decode("c", { id: {}, message: 5, event_class: ["x"], bucket: null }, received);
  assert.deepEqual(got, { channel: "c", message: "5", received });
});

test("decode: other payloads still arrive", () => {
  const cases = [
    ["plain text", "Message for everyone", { channel: "c", message: "Message for everyone", received }],
    ["broken JSON", "{not json", { channel: "c", message: "{not json", received }],
    ["JSON array string", "[1,2]", { channel: "c", message: "[1,2]", received }],
    ["array", [1, 2], { channel: "c", data: [1, 2], received }],
    ["number", 3, { channel: "c", data: 3, received }],
    ["null", null, { channel: "c", data: null, received }],
  ];
  for (const [name, payload, expected] of cases) {
    assert.deepEqual(decode("c", payload, received), expected, name);
  }
});

test("decode: received defaults to now", () => {
  const before = Date.now();
  const got = decode("c", full).received.getTime();
  assert.ok(got >= before && got <= Date.now());
});
