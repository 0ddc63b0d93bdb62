package bridge

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/kvview"
)

// Lease defaults (see Config.LeaseTTL).
const (
	DefaultLeaseTTL = 5 * time.Second
	// minRelayWindow is the least validity a lease must have left for a
	// relay request to start; the request's deadline is the lease's end.
	minRelayWindow = time.Second
)

// Keys of the lease bucket.
const (
	memberPrefix    = "members."
	partitionPrefix = "partitions."
)

// lease is this worker's hold on one partition: the revision of its key in
// the lease bucket and, on the monotonic clock, when it surely ends. The
// key's TTL counts on the NATS server from when it stored the write; the
// worker counts from before it sent the write, so its own view ends first.
// A lease is safe for concurrent use.
type lease struct {
	partition int
	mu        sync.Mutex
	rev       uint64
	until     time.Time
	lost      chan struct{} // closed when the lease is known to be gone
	lostOnce  sync.Once
}

func newLease(p int, rev uint64, sentAt time.Time, ttl time.Duration) *lease {
	return &lease{partition: p, rev: rev, until: sentAt.Add(ttl), lost: make(chan struct{})}
}

// renewed records a renewal written before sentAt as revision rev.
func (l *lease) renewed(rev uint64, sentAt time.Time, ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rev = rev
	l.until = sentAt.Add(ttl)
}

func (l *lease) revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// fence reports whether a relay request may start at now and by when it
// must be done: the lease must be valid for at least minRelayWindow more.
// After a stall (SIGSTOP, a long pause) longer than the lease's validity it
// says no, whatever happened meanwhile.
func (l *lease) fence(now time.Time) (deadline time.Time, ok bool) {
	select {
	case <-l.lost:
		return time.Time{}, false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until, l.until.Sub(now) >= minRelayWindow
}

// expired reports whether the lease's validity has run out at now.
func (l *lease) expired(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !now.Before(l.until)
}

func (l *lease) lose() { l.lostOnce.Do(func() { close(l.lost) }) }

// leaseStore is the lease bucket: a KV bucket whose keys vanish a TTL
// after their last write.
type leaseStore interface {
	// create writes key if it is absent and returns its revision.
	create(ctx context.Context, key string, value []byte) (uint64, error)
	// update writes key if its revision is still rev.
	update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	put(ctx context.Context, key string, value []byte) error
	// remove deletes key if its revision is still rev (any when rev is 0).
	remove(ctx context.Context, key string, rev uint64) error
	get(ctx context.Context, key string) ([]byte, error)
	// keys lists the keys starting with prefix.
	keys(ctx context.Context, prefix string) ([]string, error)
}

// errNoKey is a leaseStore's error for a missing key.
var errNoKey = errors.New("bridge: no such key")

// kvStore is the leaseStore on a JetStream KV bucket.
type kvStore struct{ kv jetstream.KeyValue }

func (s kvStore) create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, value)
	return rev, conflict(err)
}

func (s kvStore) update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	rev, err := s.kv.Update(ctx, key, value, rev)
	return rev, conflict(err)
}

func (s kvStore) put(ctx context.Context, key string, value []byte) error {
	_, err := s.kv.Put(ctx, key, value)
	return err
}

func (s kvStore) remove(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	return conflict(s.kv.Delete(ctx, key, opts...))
}

func (s kvStore) get(ctx context.Context, key string) ([]byte, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

func (s kvStore) keys(ctx context.Context, prefix string) ([]string, error) {
	l, err := s.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range l.Keys() { // closed after the last key; the lister stops itself
		out = append(out, k)
	}
	return out, ctx.Err()
}

// leaseBucketSpec is the lease bucket: keys vanish ttl after their last
// write.
func leaseBucketSpec(bucket string, ttl time.Duration, replicas int) kvview.Bucket {
	return kvview.Bucket{
		Name:        bucket,
		Description: "instant bridge: live workers and who relays each partition",
		TTL:         ttl,
		Replicas:    replicas,
	}
}

// assign returns the owner of each of count partitions among members
// (any order): every member gets ⌊count/N⌋ or ⌈count/N⌉ partitions, and
// each partition, in turn, goes to the member ranking highest for it
// (rendezvous hashing) among those with room. Every worker computes the
// same answer from the same members; a change of members moves few
// partitions. With no members it returns nil.
func assign(members []string, count int) []string {
	if len(members) == 0 {
		return nil
	}
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	n := len(members)
	floor, extra := count/n, count%n
	load := make(map[string]int, n)
	big := 0 // members already holding floor+1
	owners := make([]string, count)
	ranked := make([]string, n)
	for p := range count {
		copy(ranked, members)
		slices.SortFunc(ranked, func(a, b string) int {
			sa, sb := score(a, p), score(b, p)
			if sa != sb {
				if sa > sb {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
		for _, m := range ranked {
			if load[m] < floor || (load[m] == floor && big < extra) {
				if load[m] == floor {
					big++
				}
				load[m]++
				owners[p] = m
				break
			}
		}
	}
	return owners
}

func score(member string, p int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.Itoa(p)))
	return mix(h.Sum64())
}

// mix spreads FNV's output over all 64 bits (splitmix64's finalizer).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
