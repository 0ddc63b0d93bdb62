// Routing of messages to the handlers registered for them.

/**
 * Router calls, for each message, every handler whose filter matches it,
 * in the order they were added. A handler that throws does not stop the
 * others: its error goes to the `onError` callback.
 */
export class Router {
  /** @param {(err: unknown) => void} onError receives what a handler threw */
  constructor(onError) {
    this.routes = [];
    this.onError = onError;
  }

  /**
   * add registers handler for the messages whose `key` property equals
   * `value`; a null key matches every message. It returns a function that
   * removes the handler (calling it again does nothing).
   *
   * @param {string | null} key "channel", "eventClass", "bucket" or null
   * @param {string | undefined} value
   * @param {(msg: object) => void} handler
   * @returns {() => void}
   */
  add(key, value, handler) {
    if (typeof handler !== "function") {
      throw new TypeError("instant: a handler must be a function");
    }
    const route = { key, value, handler };
    this.routes.push(route);
    return () => {
      const i = this.routes.indexOf(route);
      if (i >= 0) {
        this.routes.splice(i, 1);
      }
    };
  }

  /** dispatch calls the handlers matching msg. */
  dispatch(msg) {
    // A copy: a handler may add or remove routes.
    for (const r of [...this.routes]) {
      if (r.key !== null && msg[r.key] !== r.value) {
        continue;
      }
      try {
        r.handler(msg);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
