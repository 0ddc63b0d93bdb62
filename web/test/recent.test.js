import { test } from "node:test";
import assert from "node:assert/strict";
import { RecentIds } from "../src/recent.js";

test("RecentIds: an id is new once", () => {
  const r = new RecentIds(10);
  assert.equal(r.firstTime("a"), true);
  assert.equal(r.firstTime("a"), false);
  assert.equal(r.firstTime("b"), true);
  assert.equal(r.firstTime("a"), false);
});

test("RecentIds: messages without an id are never dropped", () => {
  const r = new RecentIds(10);
  for (const id of [undefined, "", undefined, ""]) {
    assert.equal(r.firstTime(id), true);
  }
  assert.equal(r.size, 0);
});

test("RecentIds: memory is bounded and the oldest id goes first", () => {
  const r = new RecentIds(3);
  for (const id of ["1", "2", "3", "4"]) {
    assert.equal(r.firstTime(id), true);
  }
  assert.equal(r.size, 3);
  assert.equal(r.firstTime("4"), false);
  assert.equal(r.firstTime("2"), false);
  assert.equal(r.firstTime("1"), true, "the oldest id was forgotten");
  for (let i = 0; i < 10000; i++) {
    r.firstTime(`x${i}`);
  }
  assert.equal(r.size, 3);
});

test("RecentIds: the limit must be a positive integer", () => {
  for (const limit of [0, -1, 1.5, NaN, "3"]) {
    assert.throws(() => new RecentIds(limit), RangeError, String(limit));
  }
});
