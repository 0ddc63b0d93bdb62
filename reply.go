package instant

// Reply is the JSON answer to an envelope sent on the request subject:
// {"ok":true,"id","channel","offset","epoch"} once Centrifugo accepted it,
// {"ok":false,"error":{"code","message"}} when it was refused.
type Reply struct {
	OK bool `json:"ok"`
	Accepted
	Error *ReplyError `json:"error,omitempty"`
}

// Accepted says where Centrifugo stored the publication of an accepted
// envelope.
type Accepted struct {
	// ID is the publication id (see PublicationID): derived from the
	// channel and the Nats-Msg-Id header when the envelope had one.
	ID      string `json:"id,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Offset is the publication's position in the channel history, 0 when
	// the channel keeps none.
	Offset uint64 `json:"offset,omitempty"`
	// Epoch names the history Offset counts in; it changes when Centrifugo
	// loses the history.
	Epoch string `json:"epoch,omitempty"`
}

// ReplyError is the refusal of a request. As an error it matches the
// rejection error of its code with errors.Is (e.g. a ReplyError with
// CodeUnknownChannel is ErrUnknownChannel).
type ReplyError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// CodeUnavailable answers a request the bridge could not relay before it
// stopped (Centrifugo unreachable until the shutdown timeout). The
// envelope is not dead-lettered; the caller may retry.
const CodeUnavailable Code = "unavailable"

// Error returns "code: message".
func (e *ReplyError) Error() string { return string(e.Code) + ": " + e.Message }

// Is reports whether target is the rejection error of e's code.
func (e *ReplyError) Is(target error) bool {
	for _, c := range codes {
		if target == c.err {
			return e.Code == c.code
		}
	}
	return false
}

// Temporary reports whether sending the envelope again may succeed: the
// bridge stopped before Centrifugo accepted it (CodeUnavailable). Every
// other refusal is permanent until its cause is fixed.
func (e *ReplyError) Temporary() bool { return e.Code == CodeUnavailable }
