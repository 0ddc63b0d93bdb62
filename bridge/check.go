package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
)

// admit parses and checks it, received on a subject under prefix, then
// queues it for the relay or rejects it.
func (b *Bridge) admit(ctx context.Context, it *item, prefix string) {
	b.metrics.Received.Inc()
	if err := b.check(it, prefix); err != nil {
		b.reject(ctx, it, err)
		return
	}
	if err := b.queue.put(ctx, it); err != nil {
		b.release(it, 0)
	}
}

// check parses it's body, checks it against the registry, gives it its
// publication id and fills it.pub.
func (b *Bridge) check(it *item, prefix string) error {
	if n := headerSize(it.header); n > b.cfg.MaxPayload {
		it.header = nil // not on the dead letter either: JetStream would refuse to store it
		return fmt.Errorf("%w: headers of %d bytes, limit %d", instant.ErrTooLarge, n, b.cfg.MaxPayload)
	}
	env, err := instant.ParseEnvelope(subjectChannel(it.subject, prefix), it.body, b.cfg.MaxPayload)
	if err != nil {
		return err
	}
	ch, ok := b.registry.Lookup(env.Channel)
	if !ok {
		return instant.UnknownChannelError(env.Channel, b.registered)
	}
	if err := ch.Admit(&env); err != nil {
		return err
	}
	it.id = publicationID(it, env.Channel)
	data, err := env.Publication(it.id, b.cfg.Site).Encode(b.cfg.Encoding)
	if err != nil {
		return fmt.Errorf("%w: %v", instant.ErrBadEnvelope, err)
	}
	if len(data) > b.cfg.MaxPayload {
		return fmt.Errorf("%w: the publication takes %d bytes, limit %d", instant.ErrTooLarge, len(data), b.cfg.MaxPayload)
	}
	it.pub = centrifugo.Publish{Channel: env.Channel, Data: data, IdempotencyKey: it.id}
	return nil
}

func (b *Bridge) registered(name string) bool {
	_, ok := b.registry.Lookup(name)
	return ok
}

// publicationID returns the id of it on channel (see
// instant.PublicationID): from its Nats-Msg-Id, else from its place in
// the stream, else the random id it was received with (core mode).
func publicationID(it *item, channel string) string {
	if id := it.header.Get(nats.MsgIdHdr); id != "" {
		return instant.PublicationID(channel, id)
	}
	if it.msg != nil {
		if meta, err := it.msg.Metadata(); err == nil {
			return instant.StreamPublicationID(channel, meta.Stream, meta.Sequence.Stream, meta.Timestamp)
		}
	}
	return it.id
}

// headerSize returns the size of h in the NATS protocol.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// ownHeader reports whether a header named k is one the bridge sets on
// dead letters (Instant-*, in any letter case): the producer's own are
// dropped.
func ownHeader(k string) bool {
	return len(k) >= len("Instant-") && strings.EqualFold(k[:len("Instant-")], "Instant-")
}

// subjectChannel returns what follows "prefix." in subject, or "".
func subjectChannel(subject, prefix string) string {
	rest, _ := strings.CutPrefix(subject, prefix)
	rest, _ = strings.CutPrefix(rest, ".")
	return rest
}
