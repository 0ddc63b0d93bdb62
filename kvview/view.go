// Package kvview is the base of instant's stores over NATS JetStream
// key-value buckets: it opens or creates a bucket (Open), names keys
// (Key, NameOfKey), reads a whole bucket once (Entries), and keeps a live,
// read-only, in-memory copy of a bucket whose entries decode to values of
// one type (View), telling readers what changes (View.Changes). Packages
// registry and users are built on it.
package kvview

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
)

// Codec tells a View how to read the entries of its bucket. Decode and
// Equal must be set.
type Codec[T any] struct {
	// Name returns the name that key stands for, under which the View
	// holds its value, or an error when key is not an entry's: such keys
	// are ignored. Nil: NameOfKey, the inverse of Key.
	Name func(key string) (string, error)
	// Decode decodes the value stored under key. A value that cannot be
	// decoded removes its name from the View, so that a broken entry
	// never keeps an old value alive.
	Decode func(key string, value []byte) (T, error)
	// Equal reports whether a and b are the same entry: a change from a
	// value to an equal one is not reported to readers.
	Equal func(a, b T) bool
	// Copy returns a copy of a value that shares nothing a caller could
	// modify with the View (All returns such copies). Nil: values are
	// copied as they are.
	Copy func(T) T
}

// View is an in-memory, read-only copy of a bucket, either kept up to
// date by Watch or fixed by Fixed. It is safe for concurrent use; Lookup
// is a map read behind an atomic pointer load, cheap enough for every
// envelope on the hot path. Values returned by Lookup and Changes are
// shallow copies of the View's: slices and maps in them are shared with
// it and must not be modified.
type View[T any] struct {
	state atomic.Pointer[map[string]T] // never modified once stored
	codec Codec[T]

	mu    sync.Mutex
	subs  []*subscriber[T]
	ended bool
	done  chan struct{} // closed when the View stops following the bucket
}

func newView[T any](m map[string]T, codec Codec[T]) *View[T] {
	v := &View[T]{codec: codec, done: make(chan struct{})}
	v.state.Store(&m)
	return v
}

// Fixed returns a View that always holds m, which it takes over: the
// caller must not modify m afterwards. Of codec, it uses Equal and Copy.
// Its Done channel is closed, and so is every channel Changes returns for
// it.
func Fixed[T any](m map[string]T, codec Codec[T]) *View[T] {
	v := newView(m, codec)
	v.end()
	return v
}

// Watch returns a View of the bucket kv once it holds the whole current
// state, then keeps it up to date until ctx ends or the NATS connection
// closes; the View then keeps its last state, its Done channel is closed
// and so are its Changes channels. The error wraps ctx's when ctx ends
// before the initial state is loaded. Watch starts one goroutine, and
// Changes one per reader; all of them end when ctx ends or the connection
// closes. The NATS client restarts the underlying consumer by itself
// after a reconnection.
//
// Puts, deletes and purges are applied in the order the bucket received
// them, decoded by codec. A key that codec.Name refuses is ignored; a
// value that codec.Decode refuses (written by hand, or by a newer or
// broken program) removes its name from the View, so that a broken entry
// never keeps an old value alive.
func Watch[T any](ctx context.Context, kv jetstream.KeyValue, codec Codec[T]) (*View[T], error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]T)
	for loaded := false; !loaded; {
		select {
		case <-ctx.Done():
			StopWatcher(w)
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				StopWatcher(w)
				return nil, errors.New("closed before the initial state was loaded")
			case e == nil:
				loaded = true
			default:
				if u, ok := codec.update(e); ok && u.present {
					m[u.name] = u.value
				} else if ok {
					delete(m, u.name)
				}
			}
		}
	}
	v := newView(m, codec)
	go v.follow(ctx, w, codec)
	return v, nil
}

// Lookup returns the value held under name and whether there is one.
func (v *View[T]) Lookup(name string) (T, bool) {
	x, ok := (*v.state.Load())[name]
	return x, ok
}

// All returns every value of the View, sorted by name, in a new slice of
// copies (see Codec.Copy) the caller may modify.
func (v *View[T]) All() []T {
	m := *v.state.Load()
	names := slices.Sorted(maps.Keys(m))
	xs := make([]T, len(names))
	for i, name := range names {
		xs[i] = m[name]
		if v.codec.Copy != nil {
			xs[i] = v.codec.Copy(xs[i])
		}
	}
	return xs
}

// Done returns a channel closed when the View stops following the bucket
// (at once for a Fixed View).
func (v *View[T]) Done() <-chan struct{} { return v.done }

// Changes returns a new channel that receives the changes v sees from now
// on, in order per name (see instant.Change). Each call returns a new,
// independent channel and starts one goroutine, which ends when v stops
// following its bucket.
//
// A slow reader never blocks the View nor other readers: while a reader
// lags, the changes waiting for it are merged per name, so at most one
// change per name waits and the reader still learns the net effect of
// everything that happened. To never miss a change, call Changes before
// reading the initial state with All.
//
// The channel is closed when v stops following its bucket; changes still
// waiting then are dropped. For a View that has already stopped, and for
// a Fixed View, the channel is closed at once.
func (v *View[T]) Changes() <-chan instant.Change[T] {
	s := &subscriber[T]{
		equal:   v.codec.Equal,
		pending: make(map[string]*instant.Change[T]),
		wake:    make(chan struct{}, 1),
		out:     make(chan instant.Change[T]),
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		close(s.out)
		return s.out
	}
	v.subs = append(v.subs, s)
	go s.pump(v.done)
	return s.out
}

// update is one new state of a name: present is false when it is gone.
type update[T any] struct {
	name    string
	value   T
	present bool
}

// update turns a watched entry into an update; ok is false when its key
// is not an entry's.
func (c Codec[T]) update(e jetstream.KeyValueEntry) (u update[T], ok bool) {
	nameOf := c.Name
	if nameOf == nil {
		nameOf = NameOfKey
	}
	name, err := nameOf(e.Key())
	if err != nil {
		return update[T]{}, false
	}
	if e.Operation() != jetstream.KeyValuePut {
		return update[T]{name: name}, true
	}
	x, err := c.Decode(e.Key(), e.Value())
	if err != nil {
		return update[T]{name: name}, true
	}
	return update[T]{name: name, value: x, present: true}, true
}

// maxBatch bounds how many queued updates follow applies as one snapshot.
const maxBatch = 256

// follow applies the watcher's updates to v until ctx ends or the watcher
// closes. Updates already queued are applied together, so a burst costs
// one copy of the map, not one per update.
func (v *View[T]) follow(ctx context.Context, w jetstream.KeyWatcher, codec Codec[T]) {
	defer v.end()
	defer StopWatcher(w)
	ups := make([]update[T], 0, maxBatch)
	appendUpdate := func(e jetstream.KeyValueEntry) {
		if e == nil {
			return
		}
		if u, ok := codec.update(e); ok {
			ups = append(ups, u)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			ups = ups[:0]
			appendUpdate(e)
		more:
			for len(ups) < maxBatch {
				select {
				case e, ok := <-w.Updates():
					if !ok {
						break more
					}
					appendUpdate(e)
				default:
					break more
				}
			}
			if len(ups) > 0 {
				v.apply(ups)
			}
		}
	}
}

// apply installs the updates as a new snapshot and hands the resulting
// changes to the subscribers. Only the goroutine running follow calls it.
func (v *View[T]) apply(ups []update[T]) {
	next := maps.Clone(*v.state.Load())
	if next == nil {
		next = make(map[string]T)
	}
	changes := make([]instant.Change[T], 0, len(ups))
	for _, u := range ups {
		before, had := next[u.name]
		if u.present {
			next[u.name] = u.value
		} else {
			delete(next, u.name)
		}
		changes = append(changes, instant.Change[T]{Name: u.name, Old: ptr(before, had), New: ptr(u.value, u.present)})
	}
	v.state.Store(&next)

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.subs {
		s.add(changes)
	}
}

// end marks the View as no longer following its bucket and stops the
// subscribers' goroutines.
func (v *View[T]) end() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return
	}
	v.ended = true
	v.subs = nil
	close(v.done)
}

func ptr[T any](x T, ok bool) *T {
	if !ok {
		return nil
	}
	return &x
}

// subscriber is one Changes reader: a queue of changes merged per name,
// fed by View.apply without blocking and drained by pump.
type subscriber[T any] struct {
	equal func(a, b T) bool

	mu      sync.Mutex
	pending map[string]*instant.Change[T]
	order   []string // names in pending, oldest first

	wake chan struct{} // capacity 1: "pending is not empty"
	out  chan instant.Change[T]
}

// add queues changes, merging each with a change of the same name that is
// still waiting. It never blocks.
func (s *subscriber[T]) add(changes []instant.Change[T]) {
	s.mu.Lock()
	for _, c := range changes {
		p, ok := s.pending[c.Name]
		if !ok {
			if !s.same(c.Old, c.New) {
				s.pending[c.Name] = &c
				s.order = append(s.order, c.Name)
			}
			continue
		}
		p.New = c.New
		if s.same(p.Old, p.New) {
			delete(s.pending, c.Name)
			if i := slices.Index(s.order, c.Name); i >= 0 {
				s.order = slices.Delete(s.order, i, i+1)
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// same reports whether a and b (nil: absent) are the same entry.
func (s *subscriber[T]) same(a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return s.equal(*a, *b)
}

// next pops the oldest waiting change.
func (s *subscriber[T]) next() (instant.Change[T], bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return instant.Change[T]{}, false
	}
	name := s.order[0]
	s.order = s.order[1:]
	c := s.pending[name]
	delete(s.pending, name)
	return *c, true
}

// pump delivers waiting changes to out until done is closed, then closes
// out.
func (s *subscriber[T]) pump(done <-chan struct{}) {
	defer close(s.out)
	for {
		c, ok := s.next()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-done:
				return
			}
		}
		select {
		case s.out <- c:
		case <-done:
			return
		}
	}
}

// StopWatcher stops w and drains its updates until they are closed, so
// that the subscription's delivery goroutine, which may be blocked on a
// full updates channel, can exit.
func StopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	for range w.Updates() {
	}
}
