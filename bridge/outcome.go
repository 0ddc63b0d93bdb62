package bridge

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
)

// relayed settles an item Centrifugo accepted.
func (b *Bridge) relayed(it *item, r centrifugo.Result) {
	b.metrics.Relayed.Inc()
	b.metrics.Latency.Observe(time.Since(it.received).Seconds())
	if it.msg != nil && !it.batched {
		if err := it.msg.Ack(); err != nil {
			b.log.Warn("ack", zap.String("id", it.id), zap.Error(err))
		}
	}
	b.reply(it, instant.Reply{OK: true, Accepted: instant.Accepted{ID: it.id, Channel: it.pub.Channel, Offset: r.Offset, Epoch: r.Epoch}})
}

// reject dead-letters it with the reason err, then acks it and answers the
// request. If the dead letter cannot be stored, a JetStream message is
// handed back for a later retry instead of being acked, and reject
// returns false (a batched one is left to its partition's runner).
func (b *Bridge) reject(ctx context.Context, it *item, err error) bool {
	code := instant.CodeOf(err)
	b.metrics.Rejected.WithLabelValues(string(code)).Inc()
	b.rejectLog.Warn("envelope rejected", zap.String("code", string(code)),
		zap.String("subject", it.subject), zap.String("id", it.id), zap.Error(err))
	if dlErr := b.deadLetter(ctx, it, code, err.Error()); dlErr != nil {
		b.log.Error("storing a dead letter failed", zap.String("subject", b.cfg.DeadSubject), zap.Error(dlErr))
		if it.msg != nil {
			if !it.batched {
				b.release(it, b.cfg.RetryMax)
			}
			return false
		}
	}
	if it.msg != nil && !it.batched {
		if err := it.msg.Ack(); err != nil {
			b.log.Warn("ack", zap.String("id", it.id), zap.Error(err))
		}
	}
	b.reply(it, instant.Reply{Error: &instant.ReplyError{Code: code, Message: err.Error()}})
	return true
}

// release hands a message the bridge could not relay back to JetStream,
// redelivered after delay, and tells a waiting requester. A core-mode
// message nobody waits for is lost (at-most-once): it is counted and
// logged.
func (b *Bridge) release(it *item, delay time.Duration) {
	switch {
	case it.msg != nil:
		if err := it.msg.NakWithDelay(delay); err != nil {
			b.log.Warn("nak", zap.String("id", it.id), zap.Error(err))
		}
	case it.respond == nil:
		b.metrics.Dropped.Inc()
		b.rejectLog.Warn("core-mode envelope dropped: the bridge stopped before Centrifugo accepted it",
			zap.String("subject", it.subject), zap.String("id", it.id))
	}
	b.reply(it, instant.Reply{Error: &instant.ReplyError{Code: instant.CodeUnavailable, Message: "the bridge stopped before Centrifugo accepted the envelope; retry"}})
}

func (b *Bridge) deadLetter(ctx context.Context, it *item, code instant.Code, reason string) error {
	m := nats.NewMsg(b.cfg.DeadSubject)
	m.Data = it.body
	for k, v := range it.header {
		if !ownHeader(k) {
			m.Header[k] = v
		}
	}
	m.Header.Set(instant.HeaderError, string(code))
	m.Header.Set(instant.HeaderErrorMessage, reason)
	m.Header.Set(instant.HeaderSubject, it.subject)
	if b.js == nil {
		return b.nc.PublishMsg(m)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := b.js.PublishMsg(ctx, m)
	return err
}

func (b *Bridge) reply(it *item, r instant.Reply) {
	if it.respond == nil {
		return
	}
	p, err := json.Marshal(r)
	if err == nil {
		err = it.respond(p)
	}
	if err != nil {
		b.log.Warn("reply", zap.String("id", it.id), zap.Error(err))
	}
}

// rateLimited returns a child of log that writes at most 10 entries per
// second with the same message, so a flood of bad input cannot flood the
// log.
func rateLimited(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 10, 0)
	}))
}
