// Compiled (never run) by types.test.js: the declarations in
// src/instant.d.ts type-check, and describe the API as used.

import { decode, HTTPError, Instant, paths, RecentIds, type InstantMessage, type StateEvent } from "../src/instant.js";

const client = new Instant({
  baseURL: "https://auth.example.com",
  websocketURL: "wss://rt.example.com/connection/websocket",
  identity: async () => "identity-jwt",
  dedupLimit: 500,
  centrifuge: { debug: true },
});
const offAll: () => void = client.on((m: InstantMessage) => console.log(m.channel, m.received.getTime(), m.id));
client.on("public", (m) => m.message?.toUpperCase());
client.onEvent("important", (m) => m.eventClass);
client.onBucket("notifications", (m) => m.data);
client.onState((e: StateEvent) => e.state === "connected" || e.reason.length + e.code);
client.onUnrecovered((e) => e.channel);
client.onChannels((channels) => channels.map((c) => c.name + c.level));
client.onError((e) => e.error.message + e.type);
const state: "connecting" | "connected" | "disconnected" = client.state;
void client.login("alice", "secret").then((channels) => channels.length);
void client.connect().catch((err: unknown) => err instanceof HTTPError && err.status === 403 && err.path);
void client.logout();
client.disconnect();
offAll();
const path: string = paths.getToken;
const msg: InstantMessage = decode("public", '{"id":"1","message":"hi"}');
const fresh: boolean = new RecentIds(10).firstTime(msg.id);
void [state, path, fresh];
