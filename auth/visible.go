package auth

import (
	"slices"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/users"
)

// Identity is who asks for tokens: a user of the built-in store, the
// subject of an identity JWT, or, with an empty Username, an anonymous
// visitor.
type Identity struct {
	// Username is the Centrifugo user ID (the tokens' sub); empty for an
	// anonymous visitor.
	Username  string
	Groups    []string
	Staff     bool
	Superuser bool
}

// Anonymous is the identity of a visitor who is not logged in.
var Anonymous = Identity{}

// IsAnonymous reports whether id is an anonymous visitor.
func (id Identity) IsAnonymous() bool { return id.Username == "" }

// identityOf returns the identity of a user of the built-in store.
func identityOf(u users.User) Identity {
	return Identity{Username: u.Username, Groups: u.Groups, Staff: u.Staff, Superuser: u.Superuser}
}

// Allowed is django-instant's rule of who sees what, the only place it is
// written down. An inactive channel is seen by nobody. An anonymous
// visitor sees public channels only. Any other identity sees public and
// users channels, staff channels if staff, superuser channels if
// superuser, and, whatever the level, every channel whose Groups holds
// one of the identity's groups. A superuser is not given the groups
// channels of groups they do not belong to.
//
// Whether anonymous visitors are let in at all is the Server's decision
// (Config.Anonymous), not Allowed's.
func Allowed(id Identity, c instant.Channel) bool {
	if !c.Active {
		return false
	}
	if id.IsAnonymous() {
		return c.Level == instant.LevelPublic
	}
	switch {
	case c.Level == instant.LevelPublic, c.Level == instant.LevelUsers,
		c.Level == instant.LevelStaff && id.Staff,
		c.Level == instant.LevelSuperuser && id.Superuser:
		return true
	}
	for _, g := range c.Groups {
		if slices.Contains(id.Groups, g) {
			return true
		}
	}
	return false
}

// Visible returns the channels of chs that id may see (see Allowed), in
// the order of chs.
func Visible(id Identity, chs []instant.Channel) []instant.Channel {
	out := make([]instant.Channel, 0, len(chs))
	for _, c := range chs {
		if Allowed(id, c) {
			out = append(out, c)
		}
	}
	return out
}
