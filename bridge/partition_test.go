package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestAssign(t *testing.T) {
	for _, tt := range []struct{ members, count int }{{1, 17}, {2, 17}, {3, 17}, {4, 17}, {8, 17}, {20, 17}, {3, 3}, {5, 2}} {
		t.Run(fmt.Sprintf("%d members %d partitions", tt.members, tt.count), func(t *testing.T) {
			var members []string
			for i := range tt.members {
				members = append(members, fmt.Sprintf("w%d", i))
			}
			owners := assign(members, tt.count)
			load := map[string]int{}
			for p, o := range owners {
				if !slices.Contains(members, o) {
					t.Fatalf("partition %d owned by %q, not a member", p, o)
				}
				load[o]++
			}
			lo, hi := tt.count/tt.members, (tt.count+tt.members-1)/tt.members
			for _, m := range members {
				if load[m] < lo || load[m] > hi {
					t.Errorf("%s owns %d partitions, want %d to %d (%v)", m, load[m], lo, hi, load)
				}
			}
			shuffled := slices.Clone(members)
			slices.Reverse(shuffled)
			if got := assign(append(shuffled, members[0]), tt.count); !slices.Equal(got, owners) {
				t.Errorf("another order of the same members gives %v, want %v", got, owners)
			}
		})
	}
	if got := assign(nil, 3); got != nil {
		t.Errorf("no members: got %v, want nil", got)
	}
}

// A worker joining or leaving moves few partitions: at most about twice
// its share.
func TestAssignMovesFew(t *testing.T) {
	const count = 17
	three := assign([]string{"a", "b", "c"}, count)
	four := assign([]string{"a", "b", "c", "d"}, count)
	moved := 0
	for p := range count {
		if three[p] != four[p] {
			moved++
		}
	}
	if moved > 2*(count/4+1) {
		t.Errorf("adding a fourth worker moved %d of %d partitions: %v → %v", moved, count, three, four)
	}
	two := assign([]string{"a", "c"}, count)
	kept := 0
	for p := range count {
		if three[p] != "b" && three[p] == two[p] {
			kept++
		}
	}
	if stay := count - count/3 - 1; kept < stay/2 {
		t.Errorf("removing b kept only %d partitions of a and c in place: %v → %v", kept, three, two)
	}
}

func TestLayout(t *testing.T) {
	l := layout{stream: "INSTANT", subject: "instant.publish", group: "instant-bridge", n: 16}
	if got := l.publishSubject("INSTANT.3.$users"); got != "instant.publish.$users" {
		t.Errorf("publishSubject: got %s", got)
	}
	if got := l.publishSubject("instant.publish"); got != "instant.publish" {
		t.Errorf("publishSubject of the bare form: got %s", got)
	}
	if got := l.partitionsOf(l.streamConfig()); got != 16 {
		t.Errorf("partitionsOf: got %d, want 16", got)
	}
	cfg := l.streamConfig()
	cfg.SubjectTransform = nil
	if got := l.partitionsOf(cfg); got != 0 {
		t.Errorf("partitionsOf without a transform: got %d, want 0", got)
	}
	if got := l.consumerConfig(16, 7, time.Second, 10, true, 0).Durable; got != "instant-bridge-pbare-7" {
		t.Errorf("bare consumer name %s", got)
	}
	if strings.HasPrefix(l.consumerConfig(10, 7, time.Second, 10, true, 0).Durable, l.consumerPrefix(1)) {
		t.Error("partition 10's consumer carries partition 1's prefix")
	}
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLeaseFence(t *testing.T) {
	const ttl = 5 * time.Second
	clock := &fakeClock{t: time.Unix(1000, 0)}
	t0 := clock.now()
	l := newLease(3, 1, t0, ttl)
	steps := []struct {
		at   time.Duration
		ok   bool
		what string
	}{
		{0, true, "just taken"},
		{3 * time.Second, true, "before the end"},
		{4*time.Second + 500*time.Millisecond, false, "less than the relay window left"},
		{10 * time.Second, false, "after a stall past the TTL"},
	}
	for _, st := range steps {
		deadline, ok := l.fence(t0.Add(st.at))
		if ok != st.ok {
			t.Errorf("%s (t0+%s): fence %v, want %v", st.what, st.at, ok, st.ok)
		}
		if ok && !deadline.Equal(t0.Add(ttl)) {
			t.Errorf("%s: deadline t0+%s, want t0+%s", st.what, deadline.Sub(t0), ttl)
		}
	}
	l.renewed(2, t0.Add(4*time.Second), ttl)
	if d, ok := l.fence(t0.Add(5 * time.Second)); !ok || !d.Equal(t0.Add(9*time.Second)) {
		t.Errorf("after a renewal sent at t0+4s: fence %v, deadline t0+%s; want ok, t0+9s", ok, d.Sub(t0))
	}
	l.lose()
	if _, ok := l.fence(t0.Add(5 * time.Second)); ok {
		t.Error("a lost lease still allows relaying")
	}
}

// fakeStore is a lease bucket whose keys expire on a fake clock.
type fakeStore struct {
	mu    sync.Mutex
	clock *fakeClock
	ttl   time.Duration
	rev   uint64
	keys_ map[string]fakeEntry
}

type fakeEntry struct {
	value   []byte
	rev     uint64
	written time.Time
}

func newFakeStore(clock *fakeClock, ttl time.Duration) *fakeStore {
	return &fakeStore{clock: clock, ttl: ttl, keys_: map[string]fakeEntry{}}
}

func (s *fakeStore) live(key string) (fakeEntry, bool) {
	e, ok := s.keys_[key]
	if ok && s.clock.now().Sub(e.written) >= s.ttl {
		delete(s.keys_, key)
		return e, false
	}
	return e, ok
}

func (s *fakeStore) write(key string, value []byte) uint64 {
	s.rev++
	s.keys_[key] = fakeEntry{value: value, rev: s.rev, written: s.clock.now()}
	return s.rev
}

func (s *fakeStore) create(_ context.Context, key string, value []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(key); ok {
		return 0, errConflict
	}
	return s.write(key, value), nil
}

func (s *fakeStore) update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live(key); !ok || e.rev != rev {
		return 0, errConflict
	}
	return s.write(key, value), nil
}

func (s *fakeStore) put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(key, value)
	return nil
}

func (s *fakeStore) remove(_ context.Context, key string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if rev != 0 && (!ok || e.rev != rev) {
		return errConflict
	}
	delete(s.keys_, key)
	return nil
}

func (s *fakeStore) get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key)
	if !ok {
		return nil, errNoKey
	}
	return e.value, nil
}

func (s *fakeStore) keys(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.keys_ {
		if _, ok := s.live(k); ok && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

// testWorker is a coordinator whose runners only wait to be stopped.
type testWorker struct {
	c *coordinator
}

func newTestWorker(t *testing.T, id string, store leaseStore, clock *fakeClock, lay layout, ttl time.Duration) *testWorker {
	c := newCoordinator(id, store, lay, ttl, zaptest.NewLogger(t).Named(id), NewMetrics(nil), func(ctx context.Context, l *lease) {
		select {
		case <-ctx.Done():
		case <-l.lost:
		}
	})
	c.now = clock.now
	t.Cleanup(func() {
		for _, h := range c.held {
			h.cancel()
		}
		c.wait()
	})
	return &testWorker{c: c}
}

// tick ticks and then waits until the runners it stopped have ended.
func (w *testWorker) tick(t *testing.T) {
	t.Helper()
	if err := w.c.tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, h := range w.c.held {
		if h.ending || isClosed(h.lease.lost) {
			<-h.done
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// relaying returns the partitions w may relay at now: held, and the
// lease's fence allows a request.
func (w *testWorker) relaying(now time.Time) []int {
	var out []int
	for p, h := range w.c.held {
		if _, ok := h.lease.fence(now); ok && !isClosed(h.done) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestCoordinatorFencing runs two workers on a fake clock through a join
// and a stall of one of them longer than the lease TTL: at every step no
// partition may be relayed by both, and in the end every partition is
// relayed by one of them.
func TestCoordinatorFencing(t *testing.T) {
	const ttl = 5 * time.Second
	clock := &fakeClock{t: time.Unix(1000, 0)}
	store := newFakeStore(clock, ttl)
	lay := layout{stream: "INSTANT", subject: "instant.publish", group: "g", n: 8}
	a := newTestWorker(t, "a", store, clock, lay, ttl)
	b := newTestWorker(t, "b", store, clock, lay, ttl)
	step := func(what string, workers ...*testWorker) {
		t.Helper()
		for _, w := range workers {
			w.tick(t)
		}
		now := clock.now()
		ra, rb := a.relaying(now), b.relaying(now)
		for _, p := range ra {
			if slices.Contains(rb, p) {
				t.Fatalf("%s: partition %d relayed by both (a %v, b %v)", what, p, ra, rb)
			}
		}
		t.Logf("%s: a relays %v, b relays %v", what, ra, rb)
	}
	interval := a.c.interval()
	step("a alone", a)
	if got := len(a.relaying(clock.now())); got != lay.count() {
		t.Fatalf("a alone relays %d partitions, want all %d", got, lay.count())
	}
	for range 3 {
		clock.advance(interval)
		step("b joins", b, a)
	}
	na, nb := len(a.relaying(clock.now())), len(b.relaying(clock.now()))
	if na+nb != lay.count() || na == 0 || nb == 0 {
		t.Fatalf("after b joined: a relays %d, b %d, want a split of %d", na, nb, lay.count())
	}

	// a stalls: only b ticks while the clock runs past the TTL.
	for range 8 {
		clock.advance(interval)
		step("a stalled", b)
	}
	if got := a.relaying(clock.now()); len(got) != 0 {
		t.Fatalf("a stalled past its leases' TTL may still relay %v", got)
	}
	if got := len(b.relaying(clock.now())); got != lay.count() {
		t.Fatalf("b relays %d partitions after a stalled, want all %d", got, lay.count())
	}
	// a resumes: it learns its leases are gone, rejoins and gets a share
	// back through handovers.
	for range 4 {
		clock.advance(interval)
		step("a resumed", a, b)
	}
	na, nb = len(a.relaying(clock.now())), len(b.relaying(clock.now()))
	if na+nb != lay.count() || na == 0 || nb == 0 {
		t.Fatalf("after a resumed: a relays %d, b %d, want a split of %d", na, nb, lay.count())
	}

	// b stops: it releases its leases and leaves at once.
	b.c.stop(t.Context())
	b.c.wait()
	clock.advance(interval)
	step("b stopped", a)
	if got := len(a.relaying(clock.now())); got != lay.count() {
		t.Fatalf("a relays %d partitions after b stopped, want all %d", got, lay.count())
	}
}
