package registry

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/instanthq/instant"
)

// View is an in-memory, read-only copy of the channel registry: either
// kept up to date by Store.Watch or fixed by Static. It is safe for
// concurrent use; Lookup is a map read behind an atomic pointer load,
// cheap enough for every envelope on the hot path.
//
// Channels returned by a View share their Groups slice with it: callers
// must not modify it.
type View struct {
	state atomic.Pointer[snapshot]

	mu    sync.Mutex
	subs  []*subscriber
	ended bool
	done  chan struct{} // closed when the View stops following the registry
}

// snapshot is an immutable state of the registry: it is never modified
// once stored in View.state.
type snapshot struct {
	byName map[string]instant.Channel
}

// Change is one change of a View seen by a Changes reader. Old is the
// channel before the change and New after it; a nil Old means the channel
// was added, a nil New that it was removed (deleted, purged, or replaced by
// an entry that cannot be decoded).
type Change struct {
	Name string
	Old  *instant.Channel
	New  *instant.Channel
}

func newView(m map[string]instant.Channel) *View {
	v := &View{done: make(chan struct{})}
	v.state.Store(&snapshot{byName: m})
	return v
}

// Static returns a View that always holds chs, for a registry read from a
// file (see LoadFile) where NATS has no JetStream. chs should be valid and
// free of duplicates, as LoadFile returns them; on a duplicate name the
// last entry wins. Static copies chs. Its Changes channel is closed at
// once, since it never changes.
func Static(chs []instant.Channel) *View {
	m := make(map[string]instant.Channel, len(chs))
	for _, c := range chs {
		c.Groups = slices.Clip(slices.Clone(c.Groups))
		m[c.Name] = c
	}
	v := newView(m)
	v.end()
	return v
}

// Lookup returns the channel named name and whether it is in the registry,
// whatever its Active flag.
func (v *View) Lookup(name string) (instant.Channel, bool) {
	c, ok := v.state.Load().byName[name]
	return c, ok
}

// All returns every channel of the registry, sorted by name. The slice and
// the Groups slices are fresh copies the caller may modify.
func (v *View) All() []instant.Channel {
	m := v.state.Load().byName
	chs := make([]instant.Channel, 0, len(m))
	for _, c := range m {
		c.Groups = slices.Clone(c.Groups)
		chs = append(chs, c)
	}
	slices.SortFunc(chs, func(a, b instant.Channel) int { return strings.Compare(a.Name, b.Name) })
	return chs
}

// Changes returns a new channel that receives the changes the View sees
// from now on, in order per channel name. Each call returns a new,
// independent channel.
//
// A slow reader never blocks the View nor other readers: while a reader
// lags, the changes waiting for it are merged per channel name (Old of the
// first, New of the last; a change that cancels out is dropped), so at
// most one change per name waits and the reader still learns the net
// effect of everything that happened. To never miss a change, call
// Changes before reading the initial state with All.
//
// The channel is closed when the View stops following the registry: when
// the context given to Store.Watch ends or the NATS connection closes.
// Changes that are still waiting then are dropped. For a View that has
// already stopped, and for a Static View, the channel is closed at once.
func (v *View) Changes() <-chan Change {
	s := &subscriber{
		pending: make(map[string]*Change),
		wake:    make(chan struct{}, 1),
		out:     make(chan Change),
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

// update is one new state of a key in the registry: present is false when
// the channel is gone.
type update struct {
	name    string
	channel instant.Channel
	present bool
}

// apply installs the updates as a new snapshot and hands the resulting
// changes to the Changes readers. Only the goroutine that follows the
// registry calls it.
func (v *View) apply(ups []update) {
	old := v.state.Load().byName
	next := maps.Clone(old)
	if next == nil {
		next = make(map[string]instant.Channel)
	}
	var changes []Change
	for _, u := range ups {
		before, had := next[u.name]
		switch {
		case u.present:
			next[u.name] = u.channel
		case had:
			delete(next, u.name)
		}
		changes = append(changes, Change{Name: u.name, Old: ptr(before, had), New: ptr(u.channel, u.present)})
	}
	v.state.Store(&snapshot{byName: next})

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.subs {
		s.add(changes)
	}
}

// end marks the View as no longer following the registry and stops the
// Changes readers' goroutines.
func (v *View) end() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return
	}
	v.ended = true
	v.subs = nil
	close(v.done)
}

func ptr(c instant.Channel, ok bool) *instant.Channel {
	if !ok {
		return nil
	}
	return &c
}

// subscriber is one Changes reader: a queue of changes merged per name,
// fed by View.apply without blocking and drained by pump.
type subscriber struct {
	mu      sync.Mutex
	pending map[string]*Change
	order   []string // names in pending, oldest first

	wake chan struct{} // capacity 1: "pending is not empty"
	out  chan Change
}

// add queues changes, merging each with a change of the same name that is
// still waiting. It never blocks.
func (s *subscriber) add(changes []Change) {
	s.mu.Lock()
	for _, c := range changes {
		p, ok := s.pending[c.Name]
		if !ok {
			if !sameChannel(c.Old, c.New) {
				cc := c
				s.pending[c.Name] = &cc
				s.order = append(s.order, c.Name)
			}
			continue
		}
		p.New = c.New
		if sameChannel(p.Old, p.New) {
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

// next pops the oldest waiting change.
func (s *subscriber) next() (Change, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return Change{}, false
	}
	name := s.order[0]
	s.order = s.order[1:]
	c := s.pending[name]
	delete(s.pending, name)
	return *c, true
}

// pump delivers waiting changes to out until done is closed, then closes
// out.
func (s *subscriber) pump(done <-chan struct{}) {
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

// sameChannel reports whether a and b (nil: absent) are the same entry.
func sameChannel(a, b *instant.Channel) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Name == b.Name && a.Level == b.Level && a.Active == b.Active && slices.Equal(a.Groups, b.Groups)
}
