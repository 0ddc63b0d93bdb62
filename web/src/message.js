// Decoding of the publications instant's bridge sends to browsers.

/**
 * decode turns the data of a Centrifugo publication into a message.
 *
 * The bridge sends a JSON object {"id","channel","site","message"?,
 * "data"?,"event_class"?,"bucket"?}, or the same object JSON-encoded as a
 * string (INSTANT_PAYLOAD_ENCODING=string); both are accepted. A string
 * that is not such an object, or any other value, becomes the message
 * text or the data, so that publications from other producers still
 * arrive. The channel the publication came on wins over the one in the
 * payload.
 *
 * @param {string} channel the channel the publication arrived on
 * @param {unknown} payload the publication data
 * @param {Date} [received] when it arrived; defaults to now
 * @returns {import("./instant.js").InstantMessage}
 */
export function decode(channel, payload, received = new Date()) {
  const fields = objectOf(payload);
  if (fields === null) {
    return typeof payload === "string"
      ? { channel, message: payload, received }
      : { channel, data: payload, received };
  }
  const msg = { channel: channel || stringOr(fields.channel), received };
  setString(msg, "id", fields.id);
  setString(msg, "site", fields.site);
  setString(msg, "message", fields.message);
  setString(msg, "eventClass", fields.event_class);
  setString(msg, "bucket", fields.bucket);
  if (fields.data !== undefined) {
    msg.data = fields.data;
  }
  return msg;
}

/** objectOf returns payload, or the object a string payload encodes, or null. */
function objectOf(payload) {
  let v = payload;
  if (typeof v === "string") {
    if (!v.trimStart().startsWith("{")) {
      return null;
    }
    try {
      v = JSON.parse(v);
    } catch {
      return null;
    }
  }
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v : null;
}

function stringOr(v) {
  return typeof v === "string" ? v : "";
}

function setString(msg, key, v) {
  if (typeof v === "string") {
    msg[key] = v;
  } else if (typeof v === "number") {
    msg[key] = String(v);
  }
}
