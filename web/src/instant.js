// The browser client of instant: it logs in through the auth endpoints,
// connects to Centrifugo with the issued tokens, subscribes to every
// channel the user may see, renews the tokens before they expire, and
// routes the messages to handlers. See instant.d.ts for the API.

import { Centrifuge, UnauthorizedError } from "centrifuge";
import { decode } from "./message.js";
import { RecentIds } from "./recent.js";
import { Router } from "./router.js";

export { decode, RecentIds, Router };

/** The auth endpoints, relative to the base URL. */
export const paths = Object.freeze({
  login: "/instant/login/",
  getToken: "/instant/get_token/",
  subscribe: "/instant/subscribe/",
  logout: "/instant/logout/",
});

const csrfHeader = "X-CSRFToken";
const csrfCookie = "instant_csrftoken";

/** The default number of message ids remembered to drop duplicates. */
export const defaultDedupLimit = 1000;

/** HTTPError is an auth endpoint answering with a status other than 200. */
export class HTTPError extends Error {
  constructor(path, status) {
    super(`instant: ${path} answered ${status}`);
    this.name = "HTTPError";
    this.path = path;
    this.status = status;
  }
}

/** Instant is one browser's connection to instant. */
export class Instant {
  constructor(options = {}) {
    this.baseURL = (options.baseURL ?? "").replace(/\/+$/, "");
    this.websocketURL = options.websocketURL ?? sameOriginWebsocket();
    this.identity = options.identity ?? null;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.centrifugeOptions = options.centrifuge ?? {};
    this.recent = new RecentIds(options.dedupLimit ?? defaultDedupLimit);
    this.messages = new Router(report);
    this.events = {
      state: new Router(report),
      unrecovered: new Router(report),
      channels: new Router(report),
      error: new Router(report),
    };
    this.state = "disconnected";
    this.csrf = "";
    this.client = null; // the Centrifuge client of the current session
    this.subs = new Map(); // channel name → Subscription
    this.granted = []; // [{name, level}] of the last token response
  }

  /** channels returns the channels granted by the last token response. */
  get channels() {
    return this.granted.map((c) => ({ ...c }));
  }

  on(channelOrHandler, handler) {
    if (typeof channelOrHandler === "function") {
      return this.messages.add(null, undefined, channelOrHandler);
    }
    return this.messages.add("channel", channelOrHandler, handler);
  }

  onEvent(eventClass, handler) {
    return this.messages.add("eventClass", eventClass, handler);
  }

  onBucket(bucket, handler) {
    return this.messages.add("bucket", bucket, handler);
  }

  onState(handler) {
    return this.events.state.add(null, undefined, handler);
  }

  onUnrecovered(handler) {
    return this.events.unrecovered.add(null, undefined, handler);
  }

  onChannels(handler) {
    return this.events.channels.add(null, undefined, handler);
  }

  onError(handler) {
    return this.events.error.add(null, undefined, handler);
  }

  async login(username, password) {
    this.start(await this.post(paths.login, { username, password }));
    return this.channels;
  }

  async connect() {
    this.start(await this.post(paths.getToken, {}));
    return this.channels;
  }

  async logout() {
    try {
      if (this.identity === null) {
        await this.post(paths.logout, {});
      }
    } finally {
      this.csrf = "";
      this.disconnect();
    }
  }

  disconnect() {
    const client = this.client;
    if (client === null) {
      return;
    }
    this.client = null;
    client.disconnect();
    client.removeAllListeners();
    this.subs.clear();
    this.setGranted([]);
  }

  /** start replaces the current session with one using tokens. */
  start(tokens) {
    this.disconnect();
    this.csrf = tokens.csrf_token || this.csrf;
    const client = new Centrifuge(this.websocketURL, {
      ...this.centrifugeOptions,
      token: tokens.ws_token,
      getToken: () => this.renewConnection(client),
    });
    client.on("connecting", (ctx) => this.setState("connecting", ctx));
    client.on("connected", () => this.setState("connected", { code: 0, reason: "" }));
    client.on("disconnected", (ctx) => this.setState("disconnected", ctx));
    client.on("error", (ctx) => this.events.error.dispatch({ type: ctx.type, error: ctx.error }));
    this.client = client;
    this.sync(tokens.channels ?? []);
    client.connect();
  }

  /**
   * renewConnection is the connection's getToken: a fresh ws_token from
   * get_token, whose channel list also updates the subscriptions.
   */
  async renewConnection(client) {
    const tokens = await this.renew(paths.getToken, {});
    if (this.client === client) {
      this.csrf = tokens.csrf_token || this.csrf;
      this.sync(tokens.channels ?? []);
    }
    return tokens.ws_token;
  }

  /** renewSubscription is a subscription's getToken. */
  async renewSubscription(channel) {
    return (await this.renew(paths.subscribe, { channel })).token;
  }

  /**
   * renew posts a token request for centrifuge-js: a 403 becomes its
   * UnauthorizedError (no retry: the connection or subscription ends),
   * any other failure is retried by centrifuge-js with backoff.
   */
  async renew(path, body) {
    try {
      return await this.post(path, body);
    } catch (err) {
      if (err instanceof HTTPError && err.status === 403) {
        throw new UnauthorizedError(err.message);
      }
      throw err;
    }
  }

  /**
   * sync subscribes to the granted channels not subscribed yet (or
   * subscribed no longer, e.g. after a revocation) and unsubscribes from
   * those no longer granted.
   */
  sync(channels) {
    const names = new Set(channels.map((c) => c.name));
    for (const [name, sub] of this.subs) {
      if (!names.has(name)) {
        this.client.removeSubscription(sub);
        this.subs.delete(name);
      }
    }
    for (const ch of channels) {
      const old = this.subs.get(ch.name);
      if (old !== undefined && old.state !== "unsubscribed") {
        continue;
      }
      this.client.removeSubscription(old ?? null);
      this.subs.set(ch.name, this.subscribe(ch));
    }
    this.setGranted(channels.map(({ name, level }) => ({ name, level })));
  }

  subscribe(ch) {
    const sub = this.client.newSubscription(ch.name, {
      token: ch.token,
      getToken: () => this.renewSubscription(ch.name),
    });
    sub.on("publication", (ctx) => this.receive(ctx.channel, ctx.data));
    sub.on("subscribed", (ctx) => {
      if (ctx.wasRecovering && !ctx.recovered) {
        this.events.unrecovered.dispatch({ channel: ctx.channel });
      }
    });
    sub.subscribe();
    return sub;
  }

  /** receive passes a publication on, unless its id was seen on its channel. */
  receive(channel, data) {
    const msg = decode(channel, data);
    if (this.recent.firstTime(msg.id && `${channel}\u0000${msg.id}`)) {
      this.messages.dispatch(msg);
    }
  }

  setState(state, ctx) {
    this.state = state;
    this.events.state.dispatch({ state, code: ctx.code, reason: ctx.reason });
  }

  setGranted(granted) {
    const key = (list) => list.map((c) => `${c.name}\u0000${c.level}`).join("\u0001");
    if (key(granted) === key(this.granted)) {
      return;
    }
    this.granted = granted;
    this.events.channels.dispatch(this.channels);
  }

  /** post sends body to an auth endpoint and returns the decoded answer. */
  async post(path, body) {
    const headers = { "Content-Type": "application/json" };
    const identity = typeof this.identity === "function" ? await this.identity() : this.identity;
    if (identity) {
      headers.Authorization = `Bearer ${identity}`;
    } else {
      const csrf = this.csrf || readCookie(csrfCookie);
      if (csrf) {
        headers[csrfHeader] = csrf;
      }
    }
    const resp = await this.fetch(this.baseURL + path, {
      method: "POST",
      credentials: "include",
      headers,
      body: JSON.stringify(body),
    });
    if (!resp.ok) {
      throw new HTTPError(path, resp.status);
    }
    return resp.json();
  }
}

/** sameOriginWebsocket is Centrifugo's websocket endpoint on the page's origin. */
function sameOriginWebsocket() {
  const loc = globalThis.location;
  if (loc === undefined) {
    throw new TypeError("instant: no page origin: set the websocketURL option");
  }
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/connection/websocket`;
}

/** readCookie returns the value of the cookie named name, or "". */
function readCookie(name) {
  const all = globalThis.document?.cookie ?? "";
  for (const part of all.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) {
      return decodeURIComponent(v.join("="));
    }
  }
  return "";
}

/** report hands an error thrown by a handler to the page's error reporting. */
function report(err) {
  if (typeof globalThis.reportError === "function") {
    globalThis.reportError(err);
  } else {
    console.error(err);
  }
}
