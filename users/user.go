package users

import (
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

// Errors of the user store; each wraps its kind in package instant
// (users.ErrNotFound wraps instant.ErrNotFound, and so on). User names and
// groups follow the rules of package instant (instant.ValidUsername,
// instant.NormalizeGroups), whose errors wrap instant.ErrBadUsername and
// instant.ErrBadGroup.
var (
	// ErrExists is returned by Add for a user name already taken.
	ErrExists = fmt.Errorf("users: user %w", instant.ErrExists)
	// ErrNotFound is returned for a user that is not in the store.
	ErrNotFound = fmt.Errorf("users: user %w", instant.ErrNotFound)
	// ErrBadPassword is returned by Add and SetPassword for a password
	// shorter than MinPasswordLength or longer than MaxPasswordLength
	// bytes.
	ErrBadPassword = fmt.Errorf("users: %w", instant.ErrBadPassword)
	// ErrBadCredentials is returned by Authenticate for an unknown user or
	// a wrong password; it does not say which.
	ErrBadCredentials = fmt.Errorf("users: %w", instant.ErrBadCredentials)
	// ErrBadEntry is returned by Get for a stored value that is not a
	// valid user record.
	ErrBadEntry = fmt.Errorf("users: %w", instant.ErrBadEntry)
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
