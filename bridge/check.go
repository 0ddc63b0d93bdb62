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
	if id := it.header.Get(nats.MsgIdHdr); id != "" {
		it.id = id
	}
	if err := b.check(it, prefix); err != nil {
		b.reject(ctx, it, err)
		return
	}
	if err := b.queue.put(ctx, it); err != nil {
		b.release(it, 0)
	}
}

// check parses it's body, checks it against the registry and fills it.pub.
func (b *Bridge) check(it *item, prefix string) error {
	env, err := instant.ParseEnvelope(subjectChannel(it.subject, prefix), it.body, b.cfg.MaxPayload)
	if err != nil {
		return err
	}
	ch, ok := b.registry.Lookup(env.Channel)
	if !ok {
		return fmt.Errorf("%w: %q is not in the registry", instant.ErrUnknownChannel, env.Channel)
	}
	if err := ch.Admit(&env); err != nil {
		return err
	}
	data, err := env.Publication(it.id, b.cfg.Site).Encode(b.cfg.Encoding)
	if err != nil {
		return fmt.Errorf("%w: %v", instant.ErrBadEnvelope, err)
	}
	it.pub = centrifugo.Publish{Channel: env.Channel, Data: data, IdempotencyKey: it.id}
	return nil
}

// subjectChannel returns what follows "prefix." in subject, or "".
func subjectChannel(subject, prefix string) string {
	rest, _ := strings.CutPrefix(subject, prefix)
	rest, _ = strings.CutPrefix(rest, ".")
	return rest
}
