package instant

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// The publication id (the "id" browsers receive, the idempotency key sent
// to Centrifugo) is derived, never taken from the producer as it is, so
// that no producer can make its envelopes collide with another's: it is a
// hash of the channel and of what identifies the envelope — the
// producer's Nats-Msg-Id (PublicationID), or the stream, sequence and
// storage time JetStream gave it (StreamPublicationID). Inputs of the two
// kinds are kept apart, so a Nats-Msg-Id cannot reproduce an automatic id
// either. Ids are 22 characters of unpadded base64url (128 bits).

// PublicationID returns the id of an envelope on channel that carried the
// Nats-Msg-Id header msgID. The same msgID on another channel gives
// another id.
func PublicationID(channel, msgID string) string {
	var arr [256]byte
	buf := append(arr[:0], "instant msg-id\x00"...)
	buf = append(buf, channel...)
	buf = append(buf, 0)
	buf = append(buf, msgID...)
	sum := sha256.Sum256(buf)
	return idString(sum[:])
}

// StreamPublicationID returns the id of an envelope on channel stored
// without a Nats-Msg-Id as message seq of stream at time stored. It is the
// same on every redelivery, and differs from the ids of a stream of the
// same name created again.
func StreamPublicationID(channel, stream string, seq uint64, stored time.Time) string {
	var arr [256]byte
	buf := append(arr[:0], "instant stream\x00"...)
	buf = append(buf, stream...)
	buf = append(buf, 0)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, stored.UnixNano(), 10)
	buf = append(buf, 0)
	buf = append(buf, channel...)
	sum := sha256.Sum256(buf)
	return idString(sum[:])
}

func idString(sum []byte) string {
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
