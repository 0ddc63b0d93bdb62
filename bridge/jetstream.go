package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/kvview"
)

// ErrPartitionsChanged means the stream is split into another number of
// partitions than Config.Partitions asks for.
var ErrPartitionsChanged = errors.New("bridge: the partition count differs from the stream's")

// lagInterval is how often a partition's runner reads its consumer's lag.
const lagInterval = 2 * time.Second

// startJetStream makes sure the streams and the lease bucket exist, then
// joins the workers: it relays the partitions the assignment gives it
// until ctx ends. The returned function waits, until its argument ends,
// for the partitions' last batches and the release of their leases.
func (b *Bridge) startJetStream(ctx, relayCtx context.Context) (func(context.Context), error) {
	stream, err := b.ensureJetStream(ctx)
	if err != nil {
		return nil, err
	}
	kv, ttl, err := b.leaseBucket(ctx)
	if err != nil {
		return nil, err
	}
	lay := newLayout(b.cfg)
	c := newCoordinator(b.cfg.WorkerID, kvStore{kv}, lay, ttl, b.log.Named("partitions"), b.metrics,
		func(runCtx context.Context, l *lease) { b.runPartition(runCtx, relayCtx, stream, lay, l) })
	b.log.Info("joining the workers", zap.String("worker", b.cfg.WorkerID), zap.Int("partitions", b.cfg.Partitions),
		zap.String("lease_bucket", b.cfg.LeaseBucket), zap.Duration("lease_ttl", ttl))
	stopCtx, cancelStop := context.WithCancel(context.WithoutCancel(ctx))
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.loop(ctx, stopCtx)
		c.wait()
	}()
	return func(wctx context.Context) {
		stop := context.AfterFunc(wctx, cancelStop)
		defer stop()
		<-stopped
		cancelStop()
	}, nil
}

// leaseBucket opens the lease bucket, creating it with Config.LeaseTTL if
// missing, and returns it with its TTL. An existing bucket keeps its
// settings (replicas, TTL): its TTL, which the server applies, is the
// lease TTL every worker uses.
func (b *Bridge) leaseBucket(ctx context.Context) (jetstream.KeyValue, time.Duration, error) {
	kv, err := kvview.Open(ctx, b.js, leaseBucketSpec(b.cfg.LeaseBucket, b.cfg.LeaseTTL, b.cfg.Replicas))
	if err != nil {
		return nil, 0, fmt.Errorf("bridge: lease bucket %s: %w", b.cfg.LeaseBucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("bridge: lease bucket %s: %w", b.cfg.LeaseBucket, err)
	}
	ttl := st.TTL()
	if ttl < 2*minRelayWindow {
		return nil, 0, fmt.Errorf("bridge: lease bucket %s: its TTL %s is shorter than %s (delete the bucket; the workers recreate it)", b.cfg.LeaseBucket, ttl, 2*minRelayWindow)
	}
	if ttl != b.cfg.LeaseTTL {
		b.log.Warn("the lease bucket's TTL differs from LeaseTTL (INSTANT_LEASE_TTL); using the bucket's",
			zap.Duration("bucket_ttl", ttl), zap.Duration("lease_ttl", b.cfg.LeaseTTL))
	}
	return kv, ttl, nil
}

// ensureJetStream creates the stream (partitioned by channel) and the
// dead-letter stream unless they exist. An existing stream keeps the
// operator's settings; one from before partitions gets the partition
// transform (and loses the old shared consumer), one split into another
// number of partitions is refused with ErrPartitionsChanged.
func (b *Bridge) ensureJetStream(ctx context.Context) (jetstream.Stream, error) {
	lay := newLayout(b.cfg)
	cfg := lay.streamConfig()
	cfg.Replicas = b.cfg.Replicas
	cfg.MaxBytes, cfg.MaxAge = b.cfg.StreamMaxBytes, b.cfg.StreamMaxAge
	// Full: refuse new envelopes (producers see the error) rather than drop
	// stored ones.
	cfg.Discard = jetstream.DiscardNew
	stream, err := ensureStream(ctx, b.js, cfg, b.log)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bridge: stream %s: %w", b.cfg.Stream, err)
	}
	switch n := lay.partitionsOf(info.Config); {
	case n == b.cfg.Partitions:
	case n == 0:
		if stream, err = b.partitionStream(ctx, info.Config); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: stream %s is split into %d partitions, Partitions (INSTANT_PARTITIONS) is %d: "+
			"run every worker with %d, or stop them all, let the stream drain (nats stream info %s shows 0 messages), "+
			"delete it (nats stream rm %s) and start the workers with the new count",
			ErrPartitionsChanged, b.cfg.Stream, n, b.cfg.Partitions, n, b.cfg.Stream, b.cfg.Stream)
	}
	if _, err := ensureStream(ctx, b.js, jetstream.StreamConfig{
		Name:        b.cfg.DeadStream,
		Description: "instant: rejected envelopes, with the reason in their headers",
		Subjects:    []string{b.cfg.DeadSubject},
		Storage:     jetstream.FileStorage,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    1 << 30,
		Replicas:    b.cfg.Replicas,
	}, b.log); err != nil {
		return nil, err
	}
	return stream, nil
}

// partitionStream adds the partition transform to a stream made before
// partitions and deletes the shared consumer of that time; what it holds
// is relayed by the bare partition, which takes every subject the
// transform did not rewrite.
func (b *Bridge) partitionStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.SubjectTransform = newLayout(b.cfg).transform()
	stream, err := b.js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bridge: adding the partition transform to stream %s: %w", cfg.Name, err)
	}
	b.log.Info("stream split into partitions", zap.String("stream", cfg.Name), zap.Int("partitions", b.cfg.Partitions))
	if err := stream.DeleteConsumer(ctx, b.cfg.Group); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("bridge: deleting the shared consumer %s of stream %s: %w", b.cfg.Group, cfg.Name, err)
	}
	return stream, nil
}

// ensureStream creates the stream unless it exists; an existing stream
// keeps the operator's settings, with a warning when it has fewer
// replicas than cfg asks for.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *zap.Logger) (jetstream.Stream, error) {
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
	if r := s.CachedInfo().Config.Replicas; r < cfg.Replicas {
		log.Warn("the stream has fewer replicas than INSTANT_REPLICAS; raise them with `nats stream edit --replicas`",
			zap.String("stream", cfg.Name), zap.Int("replicas", r), zap.Int("want", cfg.Replicas))
	}
	return s, nil
}

// metaStalls is the consumer metadata key counting the holders in a row
// that ended without acking anything (see partitionConsumer).
const metaStalls = "instant_stalls"

// partitionConsumer replaces partition p's consumers with a new one named
// after the lease revision: it starts at the partition's ack floor (the
// stream keeps only unacked envelopes), so the new holder resends what the
// previous one may have relayed without acking, in stream order, and a
// previous holder that still pulls finds no consumer.
//
// It also returns how many holders in a row ended without acking any of
// the messages they were given: the first unacked envelope was delivered
// that many times before (Config.MaxDeliver bounds it).
//
// With reset, the holder's own consumer is replaced too: it starts again
// at the ack floor (see relayPartition).
func (b *Bridge) partitionConsumer(ctx context.Context, stream jetstream.Stream, lay layout, p int, rev uint64, reset bool) (jetstream.Consumer, int, error) {
	cfg := lay.consumerConfig(p, rev, b.cfg.AckWait, 4*b.cfg.BatchSize)
	stalls := 0
	list := stream.ListConsumers(ctx)
	var old []string
	for info := range list.Info() {
		if !strings.HasPrefix(info.Name, lay.consumerPrefix(p)) || (info.Name == cfg.Durable && !reset) {
			continue
		}
		old = append(old, info.Name)
		n, _ := strconv.Atoi(info.Config.Metadata[metaStalls])
		switch {
		case info.Name == cfg.Durable:
			stalls = max(stalls, n) // a reset is no holder's end
		case info.Delivered.Consumer > 0 && info.AckFloor.Consumer == 0:
			stalls = max(stalls, n+1)
		}
	}
	if err := list.Err(); err != nil {
		return nil, 0, err
	}
	for _, name := range old {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, 0, err
		}
	}
	cfg.Metadata = map[string]string{metaStalls: strconv.Itoa(stalls)}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	return cons, stalls, err
}

// runPartition relays partition l.partition while this worker holds its
// lease: one batch at a time, in stream order, the batch's messages acked
// once every envelope in it is settled. It
// returns when ctx ends (after the batch under way), when the lease is
// lost, or when the lease no longer covers a relay request (fenced); in
// the last two cases it acks nothing more and leaves what it holds to the
// next holder. relayCtx bounds the last batch on shutdown.
func (b *Bridge) runPartition(ctx, relayCtx context.Context, stream jetstream.Stream, lay layout, l *lease) {
	log := b.log.With(zap.String("partition", lay.name(l.partition)))
	for reset := false; ; reset = true {
		why := b.relayPartition(ctx, relayCtx, stream, lay, l, reset, log)
		if why == "" || ctx.Err() != nil {
			return
		}
		// Only a holder whose lease still covers a relay may make the
		// consumer anew: a worker resuming from a stall finds its pull
		// failed (missed heartbeats) while its lease, long gone, is not
		// yet known to be lost; it must leave the partition alone.
		if _, ok := l.fence(b.now()); !ok {
			return
		}
		b.metrics.Resets.Inc()
		log.Warn("resetting the partition's consumer to its ack floor; what was taken and not relayed is sent again", zap.String("reason", why))
	}
}

// relayPartition relays partition l.partition from a consumer made anew
// (reset: replacing this holder's own) until runPartition must return, or
// until the deliveries it gets are no longer consecutive: then it returns
// why, having relayed nothing past the gap. A delivery is missing when its
// consumer sequence, which grows by one per delivery (redeliveries
// included), is not the last one's plus one, or when the pull failed: a
// pull request answered on a server that went away leaves its messages
// pending on the consumer, redelivered only after the ack wait, while
// the next pull gets the later ones. The new consumer starts again at the
// first unacked envelope; Centrifugo drops the ones relayed twice by
// their idempotency key.
func (b *Bridge) relayPartition(ctx, relayCtx context.Context, stream jetstream.Stream, lay layout, l *lease, reset bool, log *zap.Logger) (gap string) {
	name := lay.name(l.partition)
	cons, stalls, err := b.partitionConsumer(ctx, stream, lay, l.partition, l.revision(), reset)
	if err != nil {
		log.Warn("creating the partition's consumer", zap.Error(err))
		return ""
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(2*b.cfg.BatchSize), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		log.Warn("pulling from the partition", zap.Error(err))
		return ""
	}
	msgs := make(chan jetstream.Msg, b.cfg.BatchSize)
	var pullErr error // set before msgs closes
	go func() {
		defer close(msgs)
		for {
			m, err := iter.Next()
			switch {
			case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrConsumerNotFound):
				return // the runner ends: someone else took the partition
			case err != nil:
				pullErr = err
				return
			}
			msgs <- m
		}
	}()
	defer func() {
		iter.Stop()
		for range msgs {
		}
		_ = b.nc.Flush() // the last ack reaches the server before the lease is released
	}()

	lag := time.NewTicker(lagInterval)
	defer lag.Stop()
	var (
		next  uint64 = 1 // consumer sequence of the next delivery
		last  uint64     // stream sequence of the last message taken
		batch = make([]jetstream.Msg, 0, b.cfg.BatchSize)
		taken = make([]jetstream.Msg, 0, b.cfg.BatchSize) // not seen before, to ack
		items = make([]*item, 0, b.cfg.BatchSize)
		pubs  = make([]centrifugo.Publish, 0, b.cfg.BatchSize)
	)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return ""
		case <-l.lost:
			return ""
		case <-lag.C:
			if info, err := cons.Info(ctx); err == nil {
				b.metrics.PartitionLag.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				if pullErr != nil {
					return "pull failed: " + pullErr.Error()
				}
				return ""
			}
			batch = append(batch, m)
		}
	fill:
		for len(batch) < b.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		for _, m := range batch {
			if meta, err := m.Metadata(); err == nil && meta.Sequence.Consumer != next {
				return fmt.Sprintf("delivery %d came after %d (stream sequence %d)", meta.Sequence.Consumer, next-1, meta.Sequence.Stream)
			}
			next++
		}
		items, taken = items[:0], taken[:0]
		for _, m := range batch {
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream <= last {
				continue // redelivered after the ack wait while still held
			}
			first := last == 0
			last = meta.Sequence.Stream
			taken = append(taken, m)
			it := &item{subject: lay.publishSubject(m.Subject()), header: m.Headers(), body: m.Data(),
				received: time.Now(), msg: m, batched: true, id: strconv.FormatUint(meta.Sequence.Stream, 10)}
			err = b.prepare(it)
			if delivered := stalls + int(meta.NumDelivered); first && err == nil && delivered > b.cfg.MaxDeliver {
				err = fmt.Errorf("%w: delivered %d times", instant.ErrRedeliveryLimit, delivered)
			}
			if err != nil {
				if !b.reject(relayCtx, it, err) {
					log.Warn("a dead letter could not be stored: leaving the partition to be taken again")
					return ""
				}
				continue
			}
			items = append(items, it)
		}
		if len(taken) == 0 {
			continue
		}
		var ok bool
		if pubs, ok = b.send(relayCtx, items, pubs, l); !ok {
			b.metrics.Fenced.Inc()
			log.Warn("stopped relaying the partition: its lease ran out or was lost; the next holder resends from the last ack")
			return ""
		}
		for _, m := range taken {
			if err := m.Ack(); err != nil {
				log.Warn("ack", zap.Error(err))
				break
			}
		}
	}
}

// prepare counts and checks it (see admit, which queues it instead).
func (b *Bridge) prepare(it *item) error {
	b.metrics.Received.Inc()
	return b.check(it, b.cfg.Subject)
}
