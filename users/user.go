package users

import (
	"errors"
	"fmt"
	"slices"

	"github.com/instanthq/instant"
)

// Limits of passwords.
const (
	// MinPasswordLength is the shortest password accepted by Add and
	// SetPassword, in bytes.
	MinPasswordLength = 8
	// MaxPasswordLength is the longest password bcrypt can hash, in bytes.
	MaxPasswordLength = 72
)

// Errors of the user store. User names and groups follow the rules of
// package instant (instant.ValidUsername, instant.NormalizeGroups), whose
// errors wrap instant.ErrBadUsername and instant.ErrBadGroup.
var (
	// ErrExists is returned by Add for a user name already taken.
	ErrExists = errors.New("users: user already exists")
	// ErrNotFound is returned for a user that is not in the store.
	ErrNotFound = errors.New("users: user not found")
	// ErrBadPassword is returned by Add and SetPassword for a password
	// shorter than MinPasswordLength or longer than MaxPasswordLength
	// bytes.
	ErrBadPassword = errors.New("users: invalid password")
	// ErrBadCredentials is returned by Authenticate for an unknown user or
	// a wrong password; it does not say which.
	ErrBadCredentials = errors.New("users: wrong user name or password")
	// ErrBadEntry is returned by Get for a stored value that is not a
	// valid user record.
	ErrBadEntry = errors.New("users: malformed entry")
)

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

// same reports whether a and b (nil: absent) are the same user in every
// field, Epoch included.
func same(a, b *instant.User) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Username == b.Username && a.Staff == b.Staff && a.Superuser == b.Superuser &&
		a.Epoch == b.Epoch && slices.Equal(a.Groups, b.Groups)
}
