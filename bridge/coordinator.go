package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// coordinator keeps this worker in the lease bucket and holds the leases
// of the partitions the assignment gives it: every renewal interval it
// renews its member key and its leases, reads the live members, computes
// the assignment (assign), takes the free leases of its partitions and
// releases the partitions that now belong to another worker. For each
// lease it holds, one runner relays that partition. It is driven by tick
// and not safe for concurrent use, except that runners may end at any
// time.
type coordinator struct {
	id     string
	member []byte // value of the member key
	store  leaseStore
	layout layout
	ttl    time.Duration
	now    func() time.Time
	log    *zap.Logger
	m      *Metrics
	// run relays partition l.partition until ctx ends (release: finish the
	// batch under way) or the lease is lost or fails its fence (stop at
	// once). The coordinator releases the lease after it returns.
	run func(ctx context.Context, l *lease)

	held map[int]*holding
	wg   sync.WaitGroup
}

type holding struct {
	lease  *lease
	cancel context.CancelFunc
	done   chan struct{}
	ending bool // asked to release
}

// MemberInfo is the value of a worker's member key.
type MemberInfo struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// ownerInfo is the value of a partition's lease key.
type ownerInfo struct {
	Owner string `json:"owner"`
}

func newCoordinator(id string, store leaseStore, lay layout, ttl time.Duration, log *zap.Logger, m *Metrics, run func(context.Context, *lease)) *coordinator {
	host, _ := os.Hostname()
	member, _ := json.Marshal(MemberInfo{ID: id, Host: host, PID: os.Getpid(), Started: time.Now().UTC()})
	return &coordinator{id: id, member: member, store: store, layout: lay, ttl: ttl, now: time.Now,
		log: log, m: m, run: run, held: map[int]*holding{}}
}

// interval is the time between ticks: a lease is renewed five times per
// TTL, so a slow write or two do not lose it.
func (c *coordinator) interval() time.Duration { return c.ttl / 5 }

func memberKey(id string) string { return memberPrefix + id }

func (c *coordinator) partitionKey(p int) string { return partitionPrefix + c.layout.name(p) }

// errConflict is a leaseStore's error for a write whose expected revision
// is no longer the key's.
var errConflict = errors.New("bridge: lease revision conflict")

// tick renews, reads the members and takes or releases leases. It
// returns the error of the member write, when that failed.
func (c *coordinator) tick(ctx context.Context) error {
	c.reap(ctx)
	memberErr := c.store.put(ctx, memberKey(c.id), c.member)
	if memberErr != nil {
		c.log.Warn("renewing this worker's member key", zap.Error(memberErr))
	}
	owner, _ := json.Marshal(ownerInfo{Owner: c.id})
	for p, h := range c.held {
		sentAt := c.now()
		rev, err := c.store.update(ctx, c.partitionKey(p), owner, h.lease.revision())
		switch {
		case err == nil:
			h.lease.renewed(rev, sentAt, c.ttl)
		case errors.Is(err, errConflict) || errors.Is(err, errNoKey) || h.lease.expired(c.now()):
			c.log.Warn("lost the lease of a partition", zap.String("partition", c.layout.name(p)), zap.Error(err))
			h.lease.lose()
			h.cancel()
		default:
			c.log.Warn("renewing a partition lease", zap.String("partition", c.layout.name(p)), zap.Error(err))
		}
	}
	if memberErr != nil {
		return memberErr
	}
	keys, err := c.store.keys(ctx, memberPrefix)
	if err != nil {
		c.log.Warn("listing the live workers", zap.Error(err))
		return nil
	}
	members := []string{c.id}
	for _, k := range keys {
		members = append(members, strings.TrimPrefix(k, memberPrefix))
	}
	for p, want := range assign(members, c.layout.count()) {
		h, mine := c.held[p]
		switch {
		case want == c.id && !mine:
			c.acquire(ctx, p, owner)
		case want != c.id && mine && !h.ending:
			c.log.Info("handing a partition over", zap.String("partition", c.layout.name(p)))
			h.ending = true
			h.cancel()
		}
	}
	return nil
}

func (c *coordinator) acquire(ctx context.Context, p int, owner []byte) {
	sentAt := c.now()
	rev, err := c.store.create(ctx, c.partitionKey(p), owner)
	if err != nil {
		if !errors.Is(err, errConflict) {
			c.log.Warn("taking a partition lease", zap.String("partition", c.layout.name(p)), zap.Error(err))
		}
		return
	}
	l := newLease(p, rev, sentAt, c.ttl)
	runCtx, cancel := context.WithCancel(ctx)
	h := &holding{lease: l, cancel: cancel, done: make(chan struct{})}
	c.held[p] = h
	c.m.Takeovers.Inc()
	c.m.PartitionOwned.WithLabelValues(c.layout.name(p)).Set(1)
	c.m.PartitionsOwned.Set(float64(len(c.held)))
	c.log.Info("took a partition", zap.String("partition", c.layout.name(p)), zap.Uint64("lease", rev))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(h.done)
		c.run(runCtx, l)
	}()
}

// reap releases the leases whose runners ended.
func (c *coordinator) reap(ctx context.Context) {
	for p, h := range c.held {
		select {
		case <-h.done:
		default:
			continue
		}
		h.cancel()
		delete(c.held, p)
		c.m.PartitionOwned.DeleteLabelValues(c.layout.name(p))
		c.m.PartitionLag.DeleteLabelValues(c.layout.name(p))
		c.m.PartitionsOwned.Set(float64(len(c.held)))
		select {
		case <-h.lease.lost:
			continue // someone else may hold it already
		default:
		}
		if err := c.store.remove(ctx, c.partitionKey(p), h.lease.revision()); err != nil && !errors.Is(err, errConflict) {
			c.log.Warn("releasing a partition lease", zap.String("partition", c.layout.name(p)), zap.Error(err))
		}
	}
}

// loop ticks until ctx ends, then stops the runners gracefully, waits for
// them until stopCtx ends, releases every lease and leaves the members.
func (c *coordinator) loop(ctx, stopCtx context.Context) {
	t := time.NewTicker(c.interval())
	defer t.Stop()
	for {
		_ = c.tick(ctx)
		select {
		case <-ctx.Done():
			c.stop(stopCtx)
			return
		case <-t.C:
		}
	}
}

func (c *coordinator) stop(ctx context.Context) {
	for _, h := range c.held {
		h.cancel()
	}
	for _, h := range c.held {
		select {
		case <-h.done:
		case <-ctx.Done():
		}
	}
	c.reap(ctx)
	for _, h := range c.held { // still running: stop at once
		h.lease.lose()
	}
	if err := c.store.remove(ctx, memberKey(c.id), 0); err != nil {
		c.log.Warn("leaving the members", zap.Error(err))
	}
}

// wait waits for every runner to end.
func (c *coordinator) wait() { c.wg.Wait() }

// conflict maps a KV revision mismatch to errConflict and a missing key
// to errNoKey.
func conflict(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return errNoKey
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return errors.Join(errConflict, err)
	case errors.Is(err, jetstream.ErrKeyExists):
		return errors.Join(errConflict, err)
	}
	return err
}
