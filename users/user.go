package users

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of user names and passwords.
const (
	// MaxUsernameLength is the longest user name, in characters, as
	// Django's.
	MaxUsernameLength = 150
	// MinPasswordLength is the shortest password accepted by Add and
	// SetPassword, in bytes.
	MinPasswordLength = 8
	// MaxPasswordLength is the longest password bcrypt can hash, in bytes.
	MaxPasswordLength = 72
)

// Errors of the user store.
var (
	// ErrExists is returned by Add for a user name already taken.
	ErrExists = errors.New("users: user already exists")
	// ErrNotFound is returned for a user that is not in the store.
	ErrNotFound = errors.New("users: user not found")
	// ErrBadUsername is returned for a name that breaks the naming rule
	// (see ValidUsername).
	ErrBadUsername = errors.New("users: invalid user name")
	// ErrBadPassword is returned by Add and SetPassword for a password
	// shorter than MinPasswordLength or longer than MaxPasswordLength
	// bytes.
	ErrBadPassword = errors.New("users: invalid password")
	// ErrBadGroup is returned for an empty group name or one holding a
	// comma or a line break.
	ErrBadGroup = errors.New("users: invalid group name")
	// ErrBadCredentials is returned by Authenticate for an unknown user or
	// a wrong password; it does not say which.
	ErrBadCredentials = errors.New("users: wrong user name or password")
	// ErrBadEntry is returned by Get for a stored value that is not a
	// valid user record.
	ErrBadEntry = errors.New("users: malformed entry")
)

// User is a user of the built-in store, without its password. Its JSON
// form is what `instant users list --json` prints.
type User struct {
	Username string `json:"username"`
	// Groups are sorted and free of duplicates; never nil in a User the
	// store returns.
	Groups    []string `json:"groups"`
	Staff     bool     `json:"staff"`
	Superuser bool     `json:"superuser"`
	// Epoch identifies the current generation of the user's sessions. It
	// is set by Add and changes with every SetPassword and RevokeSessions,
	// so a session that recorded an older Epoch is no longer valid. It is
	// a random string, kept out of the JSON form.
	Epoch string `json:"-"`
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

// ValidPassword reports why password cannot be set, or nil. The error
// wraps ErrBadPassword and never holds the password.
func ValidPassword(password string) error {
	switch {
	case len(password) < MinPasswordLength:
		return fmt.Errorf("%w: shorter than %d bytes", ErrBadPassword, MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("%w: longer than %d bytes, the most bcrypt reads", ErrBadPassword, MaxPasswordLength)
	}
	return nil
}

// NormalizeGroups returns groups sorted and without duplicates, or an
// error wrapping ErrBadGroup for an empty or blank name or one holding a
// comma or a line break (the separators of the command line and the
// channels file). It returns nil for no groups.
func NormalizeGroups(groups []string) ([]string, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" || strings.ContainsAny(g, ",\r\n") || !utf8.ValidString(g) {
			return nil, fmt.Errorf("%w %q", ErrBadGroup, g)
		}
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out)), nil
}

// InGroup reports whether u is a member of group.
func (u User) InGroup(group string) bool {
	return slices.Contains(u.Groups, group)
}

// same reports whether a and b (nil: absent) are the same user in every
// field, Epoch included.
func same(a, b *User) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Username == b.Username && a.Staff == b.Staff && a.Superuser == b.Superuser &&
		a.Epoch == b.Epoch && slices.Equal(a.Groups, b.Groups)
}
