package instant

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUsernameLength is the longest user name, in characters, as Django's.
const MaxUsernameLength = 150

// Identity is who asks to see channels: a user of the built-in store, the
// subject of an identity JWT, or, with an empty Username, an anonymous
// visitor. Its JSON form is the one of the user store's records and of
// `instant users list --json`.
type Identity struct {
	// Username is the Centrifugo user ID (the tokens' sub); empty for an
	// anonymous visitor.
	Username string `json:"username"`
	// Groups are the groups the identity belongs to; NormalizeGroups
	// gives them their canonical form (sorted, no duplicates).
	Groups    []string `json:"groups"`
	Staff     bool     `json:"staff"`
	Superuser bool     `json:"superuser"`
}

// Anonymous is the identity of a visitor who is not logged in.
var Anonymous = Identity{}

// IsAnonymous reports whether id is an anonymous visitor.
func (id Identity) IsAnonymous() bool { return id.Username == "" }

// User is a user of the built-in user store, without its password.
type User struct {
	Identity
	// Epoch identifies the current generation of the user's sessions. The
	// store sets it when the user is added and changes it with every new
	// password and every revocation of the sessions, so a session that
	// recorded an older Epoch is no longer valid. It is a random string,
	// kept out of the JSON form.
	Epoch string `json:"-"`
}

// Allowed is django-instant's rule of who sees what, the only place it is
// written down. An inactive channel is seen by nobody. An anonymous
// visitor sees public channels only. Any other identity sees public and
// users channels, staff channels if staff, superuser channels if
// superuser, and, whatever the level, every channel whose Groups holds
// one of the identity's groups. A superuser is not given the groups
// channels of groups they do not belong to.
//
// Whether anonymous visitors are let in at all is the auth service's
// decision, not Allowed's.
func Allowed(id Identity, c Channel) bool {
	if !c.Active {
		return false
	}
	if id.IsAnonymous() {
		return c.Level == LevelPublic
	}
	switch {
	case c.Level == LevelPublic, c.Level == LevelUsers,
		c.Level == LevelStaff && id.Staff,
		c.Level == LevelSuperuser && id.Superuser:
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
func Visible(id Identity, chs []Channel) []Channel {
	out := make([]Channel, 0, len(chs))
	for _, c := range chs {
		if Allowed(id, c) {
			out = append(out, c)
		}
	}
	return out
}

// ValidUsername reports why name cannot be a user name, or nil: a name is
// 1 to MaxUsernameLength characters of UTF-8 without white space or
// control characters. The error wraps ErrBadUsername.
func ValidUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadUsername)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrBadUsername)
	case utf8.RuneCountInString(name) > MaxUsernameLength:
		return fmt.Errorf("%w: longer than %d characters", ErrBadUsername, MaxUsernameLength)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("%w %q: contains %q", ErrBadUsername, name, r)
		}
	}
	return nil
}

// ValidGroup reports why g cannot be a group name, or nil: a group name is
// UTF-8, not blank, and holds no comma, carriage return or line feed (the
// separators of the command line and the channels file). The error wraps
// ErrBadGroup. Users, identity JWTs and channels follow the same rule.
func ValidGroup(g string) error {
	if strings.TrimSpace(g) == "" || strings.ContainsAny(g, ",\r\n") || !utf8.ValidString(g) {
		return fmt.Errorf("%w %q", ErrBadGroup, g)
	}
	return nil
}

// NormalizeGroups returns groups sorted and without duplicates, or the
// error of ValidGroup for the first invalid name. It returns nil for no
// groups.
func NormalizeGroups(groups []string) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	for _, g := range groups {
		if err := ValidGroup(g); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out)), nil
}
