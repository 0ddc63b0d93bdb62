package producer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is the part of instant's wire contract a producer sees. The
// bridge's side is package instant (envelope.go, channel.go, reply.go,
// errors.go in the instant module), whose tests check that both agree.

// ErrBadEnvelope is wrapped by the errors of an Event the bridge would
// refuse as bad_envelope.
var ErrBadEnvelope = errors.New("bad envelope")

// maxChannelLength is the longest channel name, in bytes.
const maxChannelLength = 255

// levels are the channel levels an envelope may expect.
var levels = []string{"public", "users", "groups", "staff", "superuser"}

// check reports what makes w an envelope the bridge refuses before it
// looks at the registry.
func (w wireEvent) check() error {
	if w.Channel == "" {
		return fmt.Errorf("%w: no channel", ErrBadEnvelope)
	}
	if err := checkChannelName(w.Channel); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEnvelope, err)
	}
	if w.Message == "" && w.Data == nil {
		return fmt.Errorf("%w: message or data is required", ErrBadEnvelope)
	}
	if w.Level != "" && !slices.Contains(levels, w.Level) {
		return fmt.Errorf("%w: unknown level %q (want one of %s)", ErrBadEnvelope, w.Level, strings.Join(levels, ", "))
	}
	for _, s := range []string{w.Channel, w.Message, w.EventClass, w.Bucket, w.Site} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: not UTF-8", ErrBadEnvelope)
		}
	}
	return nil
}

// checkChannelName is the channel name rule: at most 255 bytes of UTF-8
// without '.', '*', '>', white space or control characters (the name is
// the last token of a NATS subject).
func checkChannelName(name string) error {
	switch {
	case len(name) > maxChannelLength:
		return fmt.Errorf("channel name longer than %d bytes", maxChannelLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("channel name not UTF-8")
	}
	for _, r := range name {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("channel name %q contains %q", name, r)
		}
	}
	return nil
}

// literalSubject reports whether s is a NATS subject without wildcards.
func literalSubject(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) })
}

// reply is the bridge's answer to a request: {"ok":true,"id","channel",
// "offset","epoch"} or {"ok":false,"error":{"code","message"}}.
type reply struct {
	OK bool `json:"ok"`
	Accepted
	Error *ReplyError `json:"error,omitempty"`
}

// Accepted says where Centrifugo stored the publication of an accepted
// envelope.
type Accepted struct {
	// ID is the publication id browsers see: derived from the channel and
	// the WithMsgID id when the envelope had one.
	ID      string `json:"id,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Offset is the publication's position in the channel history, 0 when
	// the channel keeps none.
	Offset uint64 `json:"offset,omitempty"`
	// Epoch names the history Offset counts in; it changes when Centrifugo
	// loses the history.
	Epoch string `json:"epoch,omitempty"`
}

// Code is the machine-readable reason the bridge refused an envelope.
type Code string

// The refusal codes.
const (
	CodeBadEnvelope        Code = "bad_envelope"
	CodeTooLarge           Code = "too_large"
	CodeUnknownChannel     Code = "unknown_channel"
	CodeInactiveChannel    Code = "inactive_channel"
	CodeLevelMismatch      Code = "level_mismatch"
	CodeCentrifugoRejected Code = "centrifugo_rejected"
	CodeRedeliveryLimit    Code = "redelivery_limit"
	CodeInternal           Code = "internal"
	// CodeUnavailable: the bridge stopped before Centrifugo accepted the
	// envelope; it was not dead-lettered and may be sent again.
	CodeUnavailable Code = "unavailable"
)

// ReplyError is the bridge's refusal of a request.
type ReplyError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error returns "code: message".
func (e *ReplyError) Error() string { return string(e.Code) + ": " + e.Message }

// Temporary reports whether sending the envelope again may succeed
// (CodeUnavailable). Every other refusal is permanent until its cause is
// fixed.
func (e *ReplyError) Temporary() bool { return e.Code == CodeUnavailable }
