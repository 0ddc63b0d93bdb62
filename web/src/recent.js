// A bounded record of the message ids seen lately.

/**
 * RecentIds remembers the last `limit` ids it was shown, so that a message
 * delivered twice (a bridge redelivery, a recovery overlapping live
 * delivery) is handled once. Memory stays bounded: the oldest id is
 * forgotten when a new one would exceed the limit.
 */
export class RecentIds {
  /** @param {number} limit how many ids to remember; at least 1 */
  constructor(limit) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`RecentIds: limit ${limit} is not a positive integer`);
    }
    this.limit = limit;
    this.ids = new Set();
  }

  /**
   * firstTime records id and reports whether it was not seen before. An
   * empty or missing id is never recorded and always reported new.
   *
   * @param {string | undefined} id
   * @returns {boolean}
   */
  firstTime(id) {
    if (!id) {
      return true;
    }
    if (this.ids.has(id)) {
      return false;
    }
    this.ids.add(id);
    if (this.ids.size > this.limit) {
      // A Set iterates in insertion order: the first is the oldest.
      this.ids.delete(this.ids.values().next().value);
    }
    return true;
  }

  /** size is how many ids are remembered. */
  get size() {
    return this.ids.size;
  }
}
