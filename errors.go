package instant

import (
	"errors"
	"fmt"
)

// Code is the machine-readable reason an envelope was rejected. It is the
// value of the Instant-Error dead-letter header and of error.code in
// request replies.
type Code string

// The rejection codes.
const (
	CodeBadEnvelope        Code = "bad_envelope"
	CodeTooLarge           Code = "too_large"
	CodeUnknownChannel     Code = "unknown_channel"
	CodeInactiveChannel    Code = "inactive_channel"
	CodeLevelMismatch      Code = "level_mismatch"
	CodeCentrifugoRejected Code = "centrifugo_rejected"
	CodeRedeliveryLimit    Code = "redelivery_limit"
	CodeInternal           Code = "internal"
)

// Rejection errors. Each maps to one Code (see CodeOf); returned errors
// wrap them with details.
var (
	ErrBadEnvelope        = errors.New("bad envelope")
	ErrTooLarge           = errors.New("envelope too large")
	ErrUnknownChannel     = errors.New("unknown channel")
	ErrInactiveChannel    = errors.New("inactive channel")
	ErrLevelMismatch      = errors.New("level mismatch")
	ErrCentrifugoRejected = errors.New("rejected by Centrifugo")
	ErrRedeliveryLimit    = errors.New("redelivery limit reached")
)

// ErrBadChannel and ErrBadLevel are returned for malformed registry input.
var (
	ErrBadChannel = errors.New("invalid channel name")
	ErrBadLevel   = errors.New("invalid level")
)

// Errors of the access rules (see ValidUsername and ValidGroup).
var (
	ErrBadUsername = errors.New("invalid user name")
	ErrBadGroup    = errors.New("invalid group name")
)

// Errors of the stores (the channel registry, the user store). Each store
// returns its own errors, which wrap these, so that a consumer such as the
// auth service matches them without knowing the store.
var (
	// ErrNotFound: no entry of that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: an entry of that name exists already.
	ErrExists = errors.New("already exists")
	// ErrBadEntry: a stored value that is not a valid entry.
	ErrBadEntry = errors.New("malformed entry")
	// ErrBadPassword: a password the user store does not accept.
	ErrBadPassword = errors.New("invalid password")
	// ErrBadCredentials: an unknown user or a wrong password; it does not
	// say which.
	ErrBadCredentials = errors.New("wrong user name or password")
)

var codes = []struct {
	err  error
	code Code
}{
	{ErrBadEnvelope, CodeBadEnvelope},
	{ErrTooLarge, CodeTooLarge},
	{ErrUnknownChannel, CodeUnknownChannel},
	{ErrInactiveChannel, CodeInactiveChannel},
	{ErrLevelMismatch, CodeLevelMismatch},
	{ErrCentrifugoRejected, CodeCentrifugoRejected},
	{ErrRedeliveryLimit, CodeRedeliveryLimit},
}

// CodeOf returns the rejection code of err, or CodeInternal when err wraps
// none of the rejection errors.
func CodeOf(err error) Code {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// UnknownChannelError returns ErrUnknownChannel for name with a hint when
// the registry (asked through registered) holds the name the naming rule
// gives a non-public channel: "team" is unknown, but `channels add team
// --level users` registered "$team".
func UnknownChannelError(name string, registered func(string) bool) error {
	if alt := ChannelName(name, LevelUsers); alt != name && registered(alt) {
		return fmt.Errorf("%w: %q is not in the registry (did you mean %s?)", ErrUnknownChannel, name, alt)
	}
	return fmt.Errorf("%w: %q is not in the registry", ErrUnknownChannel, name)
}
