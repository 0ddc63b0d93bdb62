package users

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/registry"
)

// View is an in-memory, read-only copy of the user store kept up to date
// by Store.Watch. It is safe for concurrent use. Users returned by a View
// share their Groups slice with it: callers must not modify it.
type View struct {
	state atomic.Pointer[map[string]User]

	mu    sync.Mutex
	subs  []*subscriber
	ended bool
	done  chan struct{} // closed when the View stops following the store
}

// Change is one change of a View seen by a Changes reader. Old is the
// user before the change and New after it; a nil Old means the user was
// added, a nil New that it was deleted (or replaced by an entry that
// cannot be decoded). A new Epoch with a non-nil Old and New means the
// password was changed or the sessions revoked.
type Change struct {
	Username string
	Old      *User
	New      *User
}

// Watch returns a View of the store once it holds every user, then keeps
// it up to date until ctx ends or the NATS connection closes; the View
// then keeps its last state and its Changes channels are closed. The
// error wraps ctx's when ctx ends before the initial state is loaded.
// Watch starts one goroutine, and Changes one per reader; all of them end
// when ctx ends or the connection closes. A value that cannot be decoded
// removes its user from the View.
func (s *Store) Watch(ctx context.Context) (*View, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("users: watch: %w", err)
	}
	m := make(map[string]User)
	for loaded := false; !loaded; {
		select {
		case <-ctx.Done():
			stopWatcher(w)
			return nil, fmt.Errorf("users: watch: %w", ctx.Err())
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				stopWatcher(w)
				return nil, errors.New("users: watch: closed before the initial state was loaded")
			case e == nil:
				loaded = true
			default:
				if u, ok := toUpdate(e); ok && u.present {
					m[u.name] = u.user
				} else if ok {
					delete(m, u.name)
				}
			}
		}
	}
	v := &View{done: make(chan struct{})}
	v.state.Store(&m)
	go v.follow(ctx, w)
	return v, nil
}

// update is one new state of a key: present is false when the user is
// gone.
type update struct {
	name    string
	user    User
	present bool
}

// toUpdate turns a watched entry into an update; ok is false when its key
// is not a user's.
func toUpdate(e jetstream.KeyValueEntry) (u update, ok bool) {
	name, err := registry.NameOfKey(e.Key())
	if err != nil {
		return update{}, false
	}
	if e.Operation() != jetstream.KeyValuePut {
		return update{name: name}, true
	}
	r, err := decodeEntry(e.Key(), e.Value())
	if err != nil {
		return update{name: name}, true
	}
	return update{name: name, user: r.user(), present: true}, true
}

// follow applies the watcher's updates until ctx ends or the watcher
// closes.
func (v *View) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer v.end()
	defer stopWatcher(w)
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			if u, ok := toUpdate(e); ok {
				v.apply(u)
			}
		}
	}
}

func (v *View) apply(u update) {
	next := maps.Clone(*v.state.Load())
	before, had := next[u.name]
	if u.present {
		next[u.name] = u.user
	} else {
		delete(next, u.name)
	}
	v.state.Store(&next)
	c := Change{Username: u.name, Old: ptr(before, had), New: ptr(u.user, u.present)}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.subs {
		s.add(c)
	}
}

func ptr(u User, ok bool) *User {
	if !ok {
		return nil
	}
	return &u
}

// Lookup returns user username and whether the View holds it.
func (v *View) Lookup(username string) (User, bool) {
	u, ok := (*v.state.Load())[username]
	return u, ok
}

// All returns every user, sorted by name. The Groups slices are shared
// with the View.
func (v *View) All() []User {
	m := *v.state.Load()
	us := slices.Collect(maps.Values(m))
	slices.SortFunc(us, func(a, b User) int { return strings.Compare(a.Username, b.Username) })
	return us
}

// Changes returns a new channel that receives the changes the View sees
// from now on, in order per user. A slow reader never blocks the View:
// while it lags, the changes waiting for it are merged per user (Old of
// the first, New of the last; a change that cancels out is dropped). To
// never miss a change, call Changes before reading the state with All.
// The channel is closed when the View stops following the store (at once
// if it already has).
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

// Done returns a channel closed when the View stops following the store.
func (v *View) Done() <-chan struct{} { return v.done }

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

// subscriber is one Changes reader: a queue of changes merged per user.
type subscriber struct {
	mu      sync.Mutex
	pending map[string]*Change
	order   []string // users in pending, oldest first

	wake chan struct{} // capacity 1: "pending is not empty"
	out  chan Change
}

func (s *subscriber) add(c Change) {
	s.mu.Lock()
	if p, ok := s.pending[c.Username]; ok {
		p.New = c.New
		if same(p.Old, p.New) {
			delete(s.pending, c.Username)
			if i := slices.Index(s.order, c.Username); i >= 0 {
				s.order = slices.Delete(s.order, i, i+1)
			}
		}
	} else if !same(c.Old, c.New) {
		s.pending[c.Username] = &c
		s.order = append(s.order, c.Username)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

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
