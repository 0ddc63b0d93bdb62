package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/instanthq/instant/centrifugo"
)

// item is one accepted (or being checked) envelope and how to settle it.
type item struct {
	subject  string
	header   nats.Header
	body     []byte
	id       string
	pub      centrifugo.Publish
	received time.Time
	msg      jetstream.Msg      // set in JetStream mode: ack, nak, in progress
	batched  bool               // acked with its partition's batch (AckAll), not on its own
	respond  func([]byte) error // set when the sender waits for the outcome
}

// startIntake subscribes to the publish and request subjects until ctx
// ends; handlers of core messages and requests may wait for room in the
// queue until flushCtx ends. The returned function stops taking new
// messages; it waits for in-progress handlers until its argument ends.
func (b *Bridge) startIntake(ctx, flushCtx context.Context) (stop func(context.Context), err error) {
	var stopPublish func(context.Context)
	if b.cfg.Mode == ModeJetStream {
		stopPublish, err = b.startJetStream(ctx, flushCtx)
	} else {
		stopPublish, err = b.startCore(flushCtx)
	}
	if err != nil {
		return nil, err
	}
	svc, err := b.startRequests(flushCtx)
	if err != nil {
		stopPublish(ctx)
		return nil, err
	}
	return func(ctx context.Context) {
		if err := svc.Stop(); err != nil {
			b.log.Warn("stopping the request service", zap.Error(err))
		}
		stopPublish(ctx)
	}, nil
}

// startCore subscribes to the publish subjects with a queue group.
func (b *Bridge) startCore(ctx context.Context) (func(context.Context), error) {
	handler := func(m *nats.Msg) {
		it := &item{subject: m.Subject, header: m.Header, body: m.Data, received: time.Now(), id: nuid.Next()}
		if m.Reply != "" {
			it.respond = m.Respond
		}
		b.admit(ctx, it, b.cfg.Subject)
	}
	return b.queueSubscribe(handler, b.cfg.Subject, b.cfg.Subject+".>")
}

func (b *Bridge) queueSubscribe(handler nats.MsgHandler, subjects ...string) (func(context.Context), error) {
	var subs []*nats.Subscription
	stop := func(ctx context.Context) {
		for _, s := range subs {
			_ = s.Drain()
		}
		for _, s := range subs {
			for s.IsValid() && sleep(ctx, 10*time.Millisecond) {
			}
		}
	}
	for _, subj := range subjects {
		s, err := b.nc.QueueSubscribe(subj, b.cfg.Group, handler)
		if err != nil {
			stop(context.Background())
			return nil, fmt.Errorf("bridge: subscribe %s: %w", subj, err)
		}
		if err := s.SetPendingLimits(-1, 256<<20); err != nil {
			return nil, fmt.Errorf("bridge: subscribe %s: %w", subj, err)
		}
		subs = append(subs, s)
	}
	return stop, nil
}

// startRequests registers the request subjects as the NATS micro service
// "instant", so that `nats micro ls` lists it.
func (b *Bridge) startRequests(ctx context.Context) (micro.Service, error) {
	handler := micro.HandlerFunc(func(r micro.Request) {
		it := &item{subject: r.Subject(), header: nats.Header(r.Headers()), body: r.Data(), received: time.Now(), id: nuid.Next(),
			respond: func(p []byte) error { return r.Respond(p) }}
		b.admit(ctx, it, b.cfg.RequestSubject)
	})
	svc, err := micro.AddService(b.nc, micro.Config{
		Name:        "instant",
		Version:     "1.0.0",
		Description: "Relay an envelope to Centrifugo and reply with the outcome",
		QueueGroup:  b.cfg.Group,
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: request service: %w", err)
	}
	for name, subj := range map[string]string{"request": b.cfg.RequestSubject, "request-channel": b.cfg.RequestSubject + ".>"} {
		if err := svc.AddEndpoint(name, handler, micro.WithEndpointSubject(subj)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("bridge: request endpoint %s: %w", subj, err)
		}
	}
	return svc, nil
}
