package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/backoff"
	"github.com/instanthq/instant/kvview"
)

// ErrPartitionsChanged means the stream is split into another number of
// partitions than Config.Partitions asks for.
var ErrPartitionsChanged = errors.New("bridge: the partition count differs from the stream's")

// lagInterval is how often a partition's runner reads its consumer's lag.
const lagInterval = 2 * time.Second

// pullExpiry and pullHeartbeat bound how long a partition waits on a pull
// request whose server went away (a NATS node died, or this worker was
// frozen): the pull fails after two missed heartbeats, 6 s, and the
// runner resets the consumer at its ack floor. nats.go's defaults (30 s
// expiry, 15 s heartbeats) let such a partition stall for 30 s.
const (
	pullExpiry    = 12 * time.Second
	pullHeartbeat = 3 * time.Second
)

// startJetStream makes sure the streams and the lease bucket exist, then
// joins the workers: it relays the partitions the assignment gives it
// until ctx ends. The returned function waits, until its argument ends,
// for the partitions' last batches and the release of their leases.
func (b *Bridge) startJetStream(ctx, relayCtx context.Context) (func(context.Context), error) {
	var (
		stream jetstream.Stream
		kv     jetstream.KeyValue
		ttl    time.Duration
	)
	err := b.untilReady(ctx, func(ctx context.Context) (err error) {
		if stream, err = b.ensureJetStream(ctx); err != nil {
			return err
		}
		kv, ttl, err = b.leaseBucket(ctx)
		return err
	})
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

// Waits between tries of the JetStream setup (see untilReady).
const (
	setupRetryMin = 250 * time.Millisecond
	setupRetryMax = 5 * time.Second
)

// untilReady is UntilReady with the bridge's logger.
func (b *Bridge) untilReady(ctx context.Context, setup func(context.Context) error) error {
	return UntilReady(ctx, b.log, setup)
}

// UntilReady runs setup until it succeeds, fails otherwise than
// transiently (no answer in time, no responders, JetStream unavailable
// for now: no leader, no peers yet), or ctx ends, waiting with backoff
// between tries and logging each failure to log: on a NATS cluster just
// started, JetStream answers only once its nodes have elected a leader.
// It returns setup's last error.
func UntilReady(ctx context.Context, log *zap.Logger, setup func(context.Context) error) error {
	if log == nil {
		log = zap.NewNop()
	}
	for attempt := 1; ; attempt++ {
		err := setup(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("JetStream is not ready (a cluster still electing its leader, or JetStream off on this server: "+
			"INSTANT_MODE=core needs none); retrying", zap.Int("attempt", attempt), zap.Error(err))
		if backoff.Wait(ctx, attempt, setupRetryMin, setupRetryMax) != nil {
			return err
		}
	}
}

// transient reports whether err, of a JetStream API request, may go away
// by itself: no answer in time, no responders, the connection
// reconnecting, or the server saying JetStream is unavailable for now
// (status 503 other than "not enabled", no leader, no peers yet). A
// stream not found is too: the setup creates what is missing, so it is
// one that another worker has just created and that a node does not
// know yet (workers starting together on a fresh cluster).
func transient(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return true
	case strings.Contains(err.Error(), "temporarily unavailable"):
		// JetStream's 503 "JetStream system temporarily unavailable" as
		// nats.go reports it from a status message (e.g. opening a KV
		// watch): a plain error, with no code to test.
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return false
		case jsClusterNoPeers, jsClusterNotAssigned, jsClusterNotAvailable, jsClusterNotLeader:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}

// JetStream error codes of a cluster not ready yet (nats-server's
// JSClusterNoPeersErrF, JSClusterNotAssignedErr, JSClusterNotAvailErr,
// JSClusterNotLeaderErr).
const (
	jsClusterNoPeers      jetstream.ErrorCode = 10005
	jsClusterNotAssigned  jetstream.ErrorCode = 10007
	jsClusterNotAvailable jetstream.ErrorCode = 10008
	jsClusterNotLeader    jetstream.ErrorCode = 10009
)

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
// number of partitions is refused: an *instant.SettingError wrapping
// ErrPartitionsChanged.
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
	b.batchAcks = info.Config.Retention == jetstream.LimitsPolicy
	if info.Config.Retention == jetstream.WorkQueuePolicy {
		b.log.Warn("the stream has work-queue retention (made by an older version): each envelope is acked on its own, "+
			"which costs the NATS server more. To ack whole batches: pause the producers, wait until `instant bridge status` "+
			"shows nothing pending, stop every worker, delete the stream (nats stream rm "+b.cfg.Stream+") and start "+
			"the workers; they create it with limits retention", zap.String("stream", b.cfg.Stream))
	}
	switch n := lay.partitionsOf(info.Config); {
	case n == b.cfg.Partitions:
	case n == 0:
		if stream, err = b.partitionStream(ctx, info.Config); err != nil {
			return nil, err
		}
	default:
		return nil, instant.SettingErrorf("INSTANT_PARTITIONS", "Partitions", "%d: %w: stream %s is split into %d partitions; "+
			"run every worker with %d, or pause the producers, wait until `instant bridge status` shows nothing pending, "+
			"stop every worker, delete the stream (nats stream rm %s) and start the workers with the new count",
			b.cfg.Partitions, ErrPartitionsChanged, b.cfg.Stream, n, n, b.cfg.Stream)
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
// after the lease revision, so that a previous holder that still pulls
// finds no consumer. The new consumer starts right after the old ones'
// ack floor (everything up to it is settled), or, when there is none or
// the stream has work-queue retention, at the partition's first stored
// message (what was acked is purged, up to the last few seconds;
// Centrifugo drops the resends by their idempotency key). So the new
// holder resends, in stream order, what the previous one may have
// relayed without acking.
//
// It also returns how many holders in a row ended without acking any of
// the messages they were given: the first unacked envelope was delivered
// that many times before (Config.MaxDeliver bounds it).
//
// With reset, the holder's own consumer is replaced too: it starts again
// after its own ack floor (see relayPartition).
func (b *Bridge) partitionConsumer(ctx context.Context, stream jetstream.Stream, lay layout, p int, rev uint64, reset bool) (jetstream.Consumer, int, error) {
	stalls := 0
	var floor uint64 // stream sequence up to which every envelope is settled
	name := lay.consumerPrefix(p) + strconv.FormatUint(rev, 10)
	list := stream.ListConsumers(ctx)
	var old []string
	for info := range list.Info() {
		if !strings.HasPrefix(info.Name, lay.consumerPrefix(p)) || (info.Name == name && !reset) {
			continue
		}
		old = append(old, info.Name)
		floor = max(floor, info.AckFloor.Stream)
		n, _ := strconv.Atoi(info.Config.Metadata[metaStalls])
		switch {
		case info.Name == name:
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
	var start uint64
	if b.batchAcks && floor > 0 {
		start = floor + 1
	}
	cfg := lay.consumerConfig(p, rev, b.cfg.AckWait, 4*b.cfg.BatchSize, b.batchAcks, start)
	cfg.Metadata = map[string]string{metaStalls: strconv.Itoa(stalls)}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	return cons, stalls, err
}

// runPartition relays partition l.partition while this worker holds its
// lease: one batch at a time, in stream order, the batch acked once every
// envelope in it is settled (relayed or dead-lettered): with one ack of
// its last message (AckAll), or, on a work-queue stream, message by
// message. What is acked is purged from the stream now and then (see
// purger), on either kind of stream. It
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
	iter, err := cons.Messages(jetstream.PullMaxMessages(2*b.cfg.BatchSize),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
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
	purge := newPurger(stream, lay, l.partition, b.cfg.StreamMaxBytes, log)
	defer func() {
		iter.Stop()
		for range msgs {
		}
		_ = b.nc.Flush() // the last ack reaches the server before the lease is released
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		purge.purge(pctx)
	}()

	lag := time.NewTicker(lagInterval)
	defer lag.Stop()
	idle := time.NewTicker(purgeIdle)
	defer idle.Stop()
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
		case <-idle.C:
			purge.idle(ctx)
			continue
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
		toAck := taken
		if b.batchAcks {
			toAck = taken[len(taken)-1:] // acks every earlier delivery too: all are settled
		}
		if b.ack(toAck, log) {
			meta, _ := taken[len(taken)-1].Metadata()
			purge.acked(ctx, meta.Sequence.Stream, taken)
		}
	}
}

// ack acks msgs in order and reports whether every ack was sent.
func (b *Bridge) ack(msgs []jetstream.Msg, log *zap.Logger) bool {
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			log.Warn("ack", zap.Error(err))
			return false
		}
	}
	return true
}

// When a runner purges its partition's acked envelopes. Each purge of
// more than one message makes the server recount every consumer's
// pending messages, which costs most while consumers are far behind (a
// backlog draining): so a busy partition is purged only every
// purgeBusyInterval, or once its acked envelopes take purgeShare of the
// stream's byte limit split over the partitions, an idle one within
// about purgeIdle, and every partition when its runner ends. The stream
// thus holds what waits plus a few seconds of relayed envelopes.
const (
	purgeBusyInterval = 5 * time.Second
	purgeIdle         = time.Second
	purgeShare        = 0.25
)

// purger removes the messages of partition p up to its consumer's ack
// floor from the stream. It is used by one runner only.
type purger struct {
	stream   jetstream.Stream
	lay      layout
	p        int
	log      *zap.Logger
	maxBytes int64     // acked bytes that trigger a purge
	floor    uint64    // acked up to here
	done     uint64    // purged up to here
	pended   int64     // bytes acked and not purged (bodies and subjects)
	last     time.Time // of the last purge
	lastAck  time.Time
	failed   bool // the last purge failed: wait purgeBusyInterval
}

func newPurger(stream jetstream.Stream, lay layout, p int, streamMaxBytes int64, log *zap.Logger) *purger {
	now := time.Now()
	return &purger{stream: stream, lay: lay, p: p, log: log, last: now, lastAck: now,
		maxBytes: max(int64(purgeShare*float64(streamMaxBytes)/float64(lay.count())), 1<<20)}
}

// acked records that the partition is acked up to stream sequence seq,
// with msgs the messages acked now, and purges when it is time to.
func (g *purger) acked(ctx context.Context, seq uint64, msgs []jetstream.Msg) {
	if seq <= g.floor {
		return
	}
	for _, m := range msgs {
		g.pended += int64(len(m.Data()) + len(m.Subject()))
	}
	g.floor, g.lastAck = seq, time.Now()
	if g.pended >= g.maxBytes || time.Since(g.last) >= purgeBusyInterval {
		g.purge(ctx)
	}
}

// idle purges what is acked once nothing was acked for purgeIdle.
func (g *purger) idle(ctx context.Context) {
	if time.Since(g.lastAck) >= purgeIdle {
		g.purge(ctx)
	}
}

// purge removes the partition's messages up to the ack floor.
func (g *purger) purge(ctx context.Context) {
	if g.floor <= g.done || g.failed && time.Since(g.last) < purgeBusyInterval {
		return
	}
	g.last, g.failed = time.Now(), true
	for _, f := range g.lay.filters(g.p) {
		if err := g.stream.Purge(ctx, jetstream.WithPurgeSubject(f), jetstream.WithPurgeSequence(g.floor+1)); err != nil {
			if ctx.Err() == nil {
				g.log.Warn("purging the partition's acked envelopes from the stream; retrying later", zap.Error(err))
			}
			return
		}
	}
	g.done, g.pended, g.failed = g.floor, 0, false
}

// prepare counts and checks it (see admit, which queues it instead).
func (b *Bridge) prepare(it *item) error {
	b.metrics.Received.Inc()
	return b.check(it, b.cfg.Subject)
}
