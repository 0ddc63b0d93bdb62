package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/instanthq/instant"
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
	respond  func([]byte) error // set when the sender waits for the outcome
}

// fetchWait bounds one JetStream pull request; shutdown waits for the
// open one to end.
const fetchWait = 2 * time.Second

// startIntake subscribes to the publish and request subjects until ctx
// ends; handlers of core messages and requests may wait for room in the
// queue until flushCtx ends. The returned function stops taking new
// messages; it waits for in-progress handlers until its argument ends.
func (b *Bridge) startIntake(ctx, flushCtx context.Context) (stop func(context.Context), err error) {
	var stopPublish func(context.Context)
	if b.cfg.Mode == ModeJetStream {
		stopPublish, err = b.startJetStream(ctx)
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

// startJetStream makes sure the streams and the durable consumer exist,
// then pulls from the consumer until ctx ends.
func (b *Bridge) startJetStream(ctx context.Context) (func(context.Context), error) {
	cons, err := b.ensureJetStream(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.pull(ctx, cons, b.awaitOrphans(ctx, cons))
	}()
	return func(waitCtx context.Context) {
		select {
		case <-done:
		case <-waitCtx.Done():
		}
	}, nil
}

func (b *Bridge) ensureJetStream(ctx context.Context) (jetstream.Consumer, error) {
	stream, err := ensureStream(ctx, b.js, jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "instant: publish envelopes waiting for the bridge",
		Subjects:    []string{b.cfg.Subject, b.cfg.Subject + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy,
	})
	if err != nil {
		return nil, err
	}
	if _, err := ensureStream(ctx, b.js, jetstream.StreamConfig{
		Name:        b.cfg.DeadStream,
		Description: "instant: rejected envelopes, with the reason in their headers",
		Subjects:    []string{b.cfg.DeadSubject},
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    1 << 30,
	}); err != nil {
		return nil, err
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       b.cfg.Group,
		Description:   "instant bridge workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: 64 * b.cfg.BatchSize,
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = stream.Consumer(ctx, b.cfg.Group)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: consumer %s on stream %s: %w", b.cfg.Group, b.cfg.Stream, err)
	}
	return cons, nil
}

// ensureStream creates the stream unless it exists; an existing stream
// keeps the operator's settings.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, cfg.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// awaitOrphans keeps per-channel order across a crash: when the consumer
// has messages that a worker which died still held (acks pending, no other
// worker pulling), it waits one ack wait and a margin so that JetStream
// redelivers them before any newer message.
// It reports whether it waited.
func (b *Bridge) awaitOrphans(ctx context.Context, cons jetstream.Consumer) bool {
	info, err := cons.Info(ctx)
	if err != nil || info.NumAckPending == 0 || info.NumWaiting > 0 {
		return false
	}
	// The server notices expired acks on its own timer: leave it a margin.
	wait := info.Config.AckWait + max(time.Second, info.Config.AckWait/4)
	b.log.Info("waiting for the messages of a stopped worker to be redelivered first",
		zap.Int("pending", info.NumAckPending), zap.Duration("wait", wait))
	return sleep(ctx, wait)
}

// pull fetches as many messages as the queue has room for, so that every
// message the worker holds is one it can mark in progress. With sortFirst
// the first batch is relayed in stream order: the redeliveries of a crashed
// worker come back in the order their acks expired.
func (b *Bridge) pull(ctx context.Context, cons jetstream.Consumer, sortFirst bool) {
	failures := 0
	for {
		room := b.queue.waitRoom(ctx)
		if room == 0 {
			return
		}
		err := b.fetch(ctx, cons, room, sortFirst)
		sortFirst = false
		if err == nil || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		b.log.Warn("pulling from JetStream", zap.Error(err))
		if !sleep(ctx, backoff(failures, b.cfg.RetryMin, b.cfg.RetryMax)) {
			return
		}
	}
}

// fetch runs one pull request for up to n messages. It is not cut short
// when ctx ends: what arrives then is handed straight back (nak), so that
// it is redelivered at once, ahead of newer messages.
// With sorted it collects the whole batch and handles it in stream order.
func (b *Bridge) fetch(ctx context.Context, cons jetstream.Consumer, n int, sorted bool) error {
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(fetchWait))
	if err != nil {
		return err
	}
	if !sorted {
		for m := range batch.Messages() {
			b.handleJetStream(ctx, m)
		}
		return batch.Error()
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	slices.SortStableFunc(msgs, func(x, y jetstream.Msg) int { return cmp.Compare(streamSeq(x), streamSeq(y)) })
	for _, m := range msgs {
		b.handleJetStream(ctx, m)
	}
	return batch.Error()
}

// streamSeq is m's stream sequence, 0 when its metadata is unreadable.
func streamSeq(m jetstream.Msg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

func (b *Bridge) handleJetStream(ctx context.Context, m jetstream.Msg) {
	if ctx.Err() != nil {
		_ = m.Nak() // shutting down: let another worker have it now
		return
	}
	it := &item{subject: m.Subject(), header: m.Headers(), body: m.Data(), received: time.Now(), msg: m}
	meta, err := m.Metadata()
	if err != nil {
		b.reject(ctx, it, fmt.Errorf("%w: %v", instant.ErrBadEnvelope, err))
		return
	}
	it.id = strconv.FormatUint(meta.Sequence.Stream, 10)
	if meta.NumDelivered > uint64(b.cfg.MaxDeliver) {
		b.reject(ctx, it, fmt.Errorf("%w: delivered %d times", instant.ErrRedeliveryLimit, meta.NumDelivered))
		return
	}
	b.admit(ctx, it, b.cfg.Subject)
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
