// Types of the instant browser client (instant.js).

/** A message as published through instant (SPEC §2.3), decoded. */
export interface InstantMessage {
  /** Stable id of the envelope; a second message with the same id on the same channel is dropped. */
  id?: string;
  /** The channel it arrived on. */
  channel: string;
  /** The producer's site (SITE_NAME by default). */
  site?: string;
  /** Human text. */
  message?: string;
  /** Structured payload, any JSON value. */
  data?: unknown;
  /** Free tag for routing (the envelope's event_class). */
  eventClass?: string;
  /** Free tag for grouping. */
  bucket?: string;
  /** When the browser received it. */
  received: Date;
}

/** A channel the user may see, from the last token response. */
export interface GrantedChannel {
  name: string;
  /** "public", "users", "groups", "staff" or "superuser". */
  level: string;
}

/** The connection state and why it was entered. */
export interface StateEvent {
  state: "connecting" | "connected" | "disconnected";
  /** centrifuge-js's code ("connecting" and "disconnected"), else 0. */
  code: number;
  /** centrifuge-js's reason, e.g. "transport closed", "disconnect called". */
  reason: string;
}

/**
 * A subscription came back after a reconnect but the server could not
 * give the messages published meanwhile (history expired or lost, e.g.
 * Centrifugo restarted with its memory engine): some may be missing.
 */
export interface UnrecoveredEvent {
  channel: string;
}

/** An error centrifuge-js reported (token renewal failed, transport error…). */
export interface ErrorEvent {
  type: string;
  error: { code?: number; message: string };
}

/** An identity JWT, or a function returning one (called before each request). */
export type Identity = string | (() => string | Promise<string>);

export interface InstantOptions {
  /**
   * Where the auth endpoints (/instant/…) are, e.g. "https://auth.example.com".
   * Defaults to "" (the page's origin). Requests include credentials
   * (cookies); another origin must be listed in INSTANT_ALLOWED_ORIGINS.
   */
  baseURL?: string;
  /**
   * Centrifugo's websocket endpoint, e.g. "wss://rt.example.com/connection/websocket".
   * Defaults to /connection/websocket on the page's origin.
   */
  websocketURL?: string;
  /**
   * An identity JWT signed by your app (INSTANT_IDENTITY_KEY), sent as
   * "Authorization: Bearer" instead of the session cookie. Use connect(),
   * not login().
   */
  identity?: Identity;
  /** How many message ids are remembered to drop duplicates. Defaults to 1000. */
  dedupLimit?: number;
  /** Extra centrifuge-js options (e.g. debug, minReconnectDelay); token and getToken are set by the client. */
  centrifuge?: Record<string, unknown>;
  /** The fetch function to use. Defaults to globalThis.fetch. */
  fetch?: typeof fetch;
}

/** The auth endpoints, relative to the base URL. */
export declare const paths: {
  readonly login: "/instant/login/";
  readonly getToken: "/instant/get_token/";
  readonly subscribe: "/instant/subscribe/";
  readonly logout: "/instant/logout/";
};

export declare const defaultDedupLimit: number;

/** An auth endpoint answered with a status other than 200 (403: not allowed, 429: too many logins). */
export declare class HTTPError extends Error {
  readonly path: string;
  readonly status: number;
}

/** A function that removes the handler it was returned for. Calling it twice does nothing. */
export type Unsubscribe = () => void;

/**
 * Instant is one browser's connection to instant. It logs in, connects to
 * Centrifugo with the issued ws_token, subscribes to every granted
 * channel with its token, renews the tokens through centrifuge-js's
 * getToken before they expire (get_token for the connection, subscribe
 * for each channel), follows changes of the channel list on each renewal,
 * and reconnects by itself, recovering missed messages from Centrifugo's
 * history where it can. Handlers run in the order they were added; one
 * that throws does not stop the others (its error goes to reportError).
 */
export declare class Instant {
  constructor(options?: InstantOptions);

  /** The connection state: "disconnected" until login() or connect(). */
  readonly state: StateEvent["state"];
  /** The channels granted by the last token response, sorted by name. */
  readonly channels: GrantedChannel[];

  /** Calls handler for every message. */
  on(handler: (msg: InstantMessage) => void): Unsubscribe;
  /** Calls handler for the messages of channel. */
  on(channel: string, handler: (msg: InstantMessage) => void): Unsubscribe;
  /** Calls handler for the messages whose event_class is eventClass. */
  onEvent(eventClass: string, handler: (msg: InstantMessage) => void): Unsubscribe;
  /** Calls handler for the messages whose bucket is bucket. */
  onBucket(bucket: string, handler: (msg: InstantMessage) => void): Unsubscribe;

  /** Calls handler on every change of the connection state. */
  onState(handler: (e: StateEvent) => void): Unsubscribe;
  /** Calls handler when a reconnect could not recover missed messages. */
  onUnrecovered(handler: (e: UnrecoveredEvent) => void): Unsubscribe;
  /** Calls handler when the granted channel list changes (login, renewal, logout). */
  onChannels(handler: (channels: GrantedChannel[]) => void): Unsubscribe;
  /** Calls handler on the errors centrifuge-js reports; it retries by itself. */
  onError(handler: (e: ErrorEvent) => void): Unsubscribe;

  /**
   * Logs in with the built-in user store (POST /instant/login/; the
   * session cookie is kept by the browser) and connects. Rejects with an
   * HTTPError (403 for bad credentials, 429 when rate-limited) and leaves
   * any current connection as it is then.
   */
  login(username: string, password: string): Promise<GrantedChannel[]>;
  /**
   * Connects with the identity JWT, or with the session of an earlier
   * login (its CSRF cookie), or anonymously when the server allows it
   * (POST /instant/get_token/). Rejects with an HTTPError 403 when none
   * applies.
   */
  connect(): Promise<GrantedChannel[]>;
  /**
   * Ends the session on the server (POST /instant/logout/, skipped with
   * an identity JWT) and disconnects, even when the request fails.
   */
  logout(): Promise<void>;
  /** Closes the connection and forgets the subscriptions; the session stays. */
  disconnect(): void;
}

/**
 * Decodes a publication's data: the bridge's JSON object, or the same
 * object JSON-encoded as a string (INSTANT_PAYLOAD_ENCODING=string).
 * Anything else becomes the message text (a string) or the data.
 */
export declare function decode(channel: string, payload: unknown, received?: Date): InstantMessage;

/** A bounded record of recently seen ids. */
export declare class RecentIds {
  constructor(limit: number);
  /** Records id and reports whether it is new; an empty id is always new. */
  firstTime(id: string | undefined): boolean;
  readonly size: number;
}

/** Calls the handlers whose filter matches a message. */
export declare class Router {
  constructor(onError: (err: unknown) => void);
  /** Registers handler for the messages whose key equals value (null key: all). */
  add<T>(key: string | null, value: string | undefined, handler: (msg: T) => void): Unsubscribe;
  dispatch(msg: object): void;
}
