// Publish to instant from Node.js with the nats package: one envelope
// fire-and-forget (stored by JetStream, relayed by the bridge later), then
// one on the request subject, printing the bridge's outcome.
//
//   npm ci && node publish.mjs [CHANNEL [MESSAGE]]
//
// NATS_URL names the server (default nats://127.0.0.1:4222). The exit
// status is 1, with one line on stderr, when NATS is unreachable or the
// bridge refuses the envelope.
import { connect } from "nats";

const url = process.env.NATS_URL || "nats://127.0.0.1:4222";
const [channel = "public", message = "Hello from Node.js"] = process.argv.slice(2);

async function main() {
  let nc;
  try {
    nc = await connect({ servers: url, name: "instant example (node)" });
  } catch (err) {
    throw new Error(`connecting to NATS at ${url}: ${err.message}`);
  }
  try {
    // Fire-and-forget: resolves once JetStream stored it. The message id
    // becomes the publication id; JetStream drops a second envelope with
    // the same id, so a retry after a lost ack cannot duplicate it.
    const msgID = `${channel}-${Date.now()}`;
    const envelope = { message, data: { from: "node" }, event_class: "info", bucket: "examples" };
    const ack = await nc.jetstream().publish(`instant.publish.${channel}`, JSON.stringify(envelope), { msgID });
    console.log(`stored in ${ack.stream} as #${ack.seq} (id ${msgID})`);

    // Request: waits until Centrifugo accepted or the bridge refused it.
    const request = { message, event_class: "important" };
    const reply = await nc.request(`instant.request.${channel}`, JSON.stringify(request), { timeout: 10000 });
    const outcome = reply.json();
    if (!outcome.ok) {
      throw new Error(`refused: ${outcome.error.code}: ${outcome.error.message}`);
    }
    console.log(`relayed to ${outcome.channel} as ${outcome.id} (offset ${outcome.offset ?? 0})`);
  } finally {
    await nc.close();
  }
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
