package users

import (
	"context"
	"fmt"
	"slices"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/kvview"
)

// View is an in-memory, read-only copy of the user store kept up to date
// by Store.Watch. Its contract is kvview.View's; a change (see
// instant.Change) with a non-nil Old and New and a new Epoch means the
// password was changed or the sessions revoked.
type View = kvview.View[instant.User]

// codec reads the store's bucket.
var codec = kvview.Codec[instant.User]{
	Decode: func(key string, value []byte) (instant.User, error) {
		r, err := decodeEntry(key, value)
		return r.user(), err
	},
	Equal: func(a, b instant.User) bool { return same(&a, &b) },
	Copy:  copyUser,
}

// copyUser returns u with its own Groups.
func copyUser(u instant.User) instant.User {
	u.Groups = slices.Clone(u.Groups)
	return u
}

// Watch returns a View of the store once it holds every user, then keeps
// it up to date until ctx ends or the NATS connection closes (see
// kvview.Watch). A value that cannot be decoded removes its user from the
// View.
func (s *Store) Watch(ctx context.Context) (*View, error) {
	v, err := kvview.Watch(ctx, s.kv, codec)
	if err != nil {
		return nil, fmt.Errorf("users: watch: %w", err)
	}
	return v, nil
}
