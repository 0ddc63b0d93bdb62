// Package bridge relays publish envelopes from NATS to Centrifugo: it takes
// them from a JetStream consumer or a core queue subscription and from the
// request subject, checks each against the channel registry, sends the
// accepted ones to Centrifugo in batches, and dead-letters the rest.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
)

// Registry looks channels up. Implementations must be safe for concurrent
// use and cheap: the bridge calls Lookup once per envelope.
type Registry interface {
	Lookup(name string) (instant.Channel, bool)
}

// Relay sends publications to Centrifugo. *centrifugo.Client implements it.
type Relay interface {
	// Publish sends pubs in one request, in order, and returns one result
	// per publication. An error means the whole request failed;
	// centrifugo.Temporary tells whether a retry may succeed.
	Publish(ctx context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error)
}

var errClosed = errors.New("bridge: shutting down")

// Bridge is one relay worker. Any number of them may run side by side on
// the same NATS subjects; the load spreads over them.
type Bridge struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream
	registry  Registry
	relay     Relay
	log       *zap.Logger
	rejectLog *zap.Logger
	metrics   *Metrics
	queue     *queue
	now       func() time.Time // the clock of lease fences
	// batchAcks: the stream has limits retention; partition consumers
	// ack all and their runners purge what is acked (JetStream mode).
	batchAcks bool
}

// New returns a bridge that uses nc, which the caller owns and closes after
// Run returns. A nil logger logs nothing; nil metrics are not recorded.
// cfg is validated (see Config.Validate).
func New(nc *nats.Conn, reg Registry, relay Relay, cfg Config, log *zap.Logger, m *Metrics) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	b := &Bridge{
		cfg: cfg, nc: nc, registry: reg, relay: relay,
		log:       log,
		rejectLog: rateLimited(log),
		metrics:   m,
		queue:     newQueue(2 * cfg.BatchSize),
		now:       time.Now,
	}
	if cfg.Mode == ModeJetStream {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		b.js = js
	}
	return b, nil
}

// Run relays until ctx ends, then shuts down: it stops taking messages,
// flushes what it holds to Centrifugo, acks, and returns nil within
// Config.ShutdownTimeout. What could not be flushed by then is handed back
// to JetStream (nak) for another worker. Run returns an error only when it
// cannot start (stream or subscription setup failed otherwise than
// transiently: while JetStream is not ready it retries until ctx ends).
func (b *Bridge) Run(ctx context.Context) error {
	// The relay loop and the intake handlers outlive ctx by at most the
	// shutdown timeout.
	relayCtx, cancelRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRelay()
	stopIntake, err := b.startIntake(ctx, relayCtx)
	if err != nil {
		if ctx.Err() != nil {
			b.log.Info("bridge stopped before it started", zap.Error(err))
			return nil
		}
		return err
	}
	b.log.Info("bridge started", zap.String("mode", string(b.cfg.Mode)),
		zap.String("subject", b.cfg.Subject), zap.String("request_subject", b.cfg.RequestSubject),
		zap.Int("batch_size", b.cfg.BatchSize))

	var g errgroup.Group
	g.Go(func() error { b.relayLoop(relayCtx); return nil })

	<-ctx.Done()
	b.log.Info("bridge stopping: flushing held envelopes", zap.Duration("timeout", b.cfg.ShutdownTimeout))
	timer := time.AfterFunc(b.cfg.ShutdownTimeout, cancelRelay)
	defer timer.Stop()
	stopIntake(relayCtx)
	b.queue.close()
	err = g.Wait()
	b.log.Info("bridge stopped")
	return err
}
