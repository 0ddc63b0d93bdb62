package users

import (
	"context"
	"fmt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/kvview"
	"github.com/instanthq/instant/registry"
)

// View is an in-memory, read-only copy of the user store kept up to date
// by Store.Watch. It is safe for concurrent use. Users returned by a View
// share their Groups slice with it: callers must not modify it.
type View struct {
	v *kvview.View[instant.User]
}

// Change is one change of a View seen by a Changes reader. Old is the
// user before the change and New after it; a nil Old means the user was
// added, a nil New that it was deleted (or replaced by an entry that
// cannot be decoded). A new Epoch with a non-nil Old and New means the
// password was changed or the sessions revoked.
type Change struct {
	Username string
	Old      *instant.User
	New      *instant.User
}

// Watch returns a View of the store once it holds every user, then keeps
// it up to date until ctx ends or the NATS connection closes; the View
// then keeps its last state and its Changes channels are closed. The
// error wraps ctx's when ctx ends before the initial state is loaded.
// Watch starts one goroutine, and Changes one per reader; all of them end
// when ctx ends or the connection closes. A value that cannot be decoded
// removes its user from the View.
func (s *Store) Watch(ctx context.Context) (*View, error) {
	v, err := kvview.Watch(ctx, s.kv, kvview.Codec[instant.User]{
		Name: registry.NameOfKey,
		Decode: func(key string, value []byte) (instant.User, error) {
			r, err := decodeEntry(key, value)
			return r.user(), err
		},
		Equal: func(a, b instant.User) bool { return same(&a, &b) },
	})
	if err != nil {
		return nil, fmt.Errorf("users: watch: %w", err)
	}
	return &View{v}, nil
}

// Lookup returns user username and whether the View holds it.
func (v *View) Lookup(username string) (instant.User, bool) {
	return v.v.Lookup(username)
}

// All returns every user, sorted by name. The Groups slices are shared
// with the View.
func (v *View) All() []instant.User {
	return v.v.All()
}

// Changes returns a new channel that receives the changes the View sees
// from now on, in order per user. A slow reader never blocks the View:
// while it lags, the changes waiting for it are merged per user (Old of
// the first, New of the last; a change that cancels out is dropped). To
// never miss a change, call Changes before reading the state with All.
// The channel is closed when the View stops following the store (at once
// if it already has).
func (v *View) Changes() <-chan Change {
	return kvview.Subscribe(v.v, func(c kvview.Change[instant.User]) Change {
		return Change{Username: c.Name, Old: c.Old, New: c.New}
	})
}

// Done returns a channel closed when the View stops following the store.
func (v *View) Done() <-chan struct{} { return v.v.Done() }
