package centrifugo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/centrifugal/gocent/v3"
)

// ErrUnauthorized is matched (errors.Is) by the *StatusError of a request
// that Centrifugo refused with HTTP 401: a wrong API key. Temporary
// reports it as worth a retry, since the key may be fixed meanwhile.
var ErrUnauthorized = errors.New("centrifugo: API key refused (HTTP 401): check CENTRIFUGO_API_KEY against Centrifugo's http_api.key")

// APIError is Centrifugo's refusal of one command, e.g. code 102 for a
// channel in an unknown namespace.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("centrifugo: API error %d: %s", e.Code, e.Message)
}

// Temporary reports whether the command may succeed later: code 100
// (internal error) and 111 (too many requests). Every other code, such as
// 102 (unknown channel), 104 (not found) and 107 (bad request), is
// permanent.
func (e *APIError) Temporary() bool { return e.Code == 100 || e.Code == 111 }

// StatusError is an HTTP reply with a status other than 200.
type StatusError struct {
	Status int
	// Body is the start of the reply body (at most 256 bytes), trimmed,
	// with the API key, should it appear, redacted.
	Body string
}

func (e *StatusError) Error() string {
	if e.Status == http.StatusUnauthorized {
		return ErrUnauthorized.Error()
	}
	return fmt.Sprintf("centrifugo: HTTP %d: %s", e.Status, e.Body)
}

// Is makes a 401 match ErrUnauthorized.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

// Temporary reports whether a retry may succeed: 5xx, 408, 429, and 401
// (see ErrUnauthorized). Other statuses are permanent.
func (e *StatusError) Temporary() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return e.Status >= 500
}

// Temporary reports whether err, returned by this package, is worth a
// retry. An *APIError or *StatusError answers for itself; a malformed
// reply (gocent.ErrMalformedResponse) or ErrBadPublication is permanent;
// any other failure (network, timeout, connection refused, the caller's
// ctx) is temporary. Temporary(nil) is false.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Temporary()
	}
	if e, ok := errors.AsType[*StatusError](err); ok {
		return e.Temporary()
	}
	return !errors.Is(err, ErrBadPublication) && !errors.Is(err, gocent.ErrMalformedResponse)
}

// maxBody bounds StatusError.Body.
const maxBody = 256

// requestError maps the error of a whole request to this package's errors,
// keeping the API key out of them.
func (c *Client) requestError(err error) error {
	if sc, ok := errors.AsType[gocent.ErrStatusCode](err); ok {
		return &StatusError{Status: sc.Code, Body: c.redact(sc.Body)}
	}
	_, syntax := errors.AsType[*json.SyntaxError](err)
	_, typ := errors.AsType[*json.UnmarshalTypeError](err)
	if syntax || typ {
		return fmt.Errorf("centrifugo: %w: %w", gocent.ErrMalformedResponse, err)
	}
	return fmt.Errorf("centrifugo: %w", err)
}

// commandError maps the error of a single-command call.
func (c *Client) commandError(err error) error {
	if err == nil {
		return nil
	}
	if ge, ok := errors.AsType[*gocent.Error](err); ok {
		return &APIError{Code: ge.Code, Message: ge.Message}
	}
	return c.requestError(err)
}

// redact returns body trimmed, without the API key, cut to maxBody bytes.
func (c *Client) redact(body []byte) string {
	s := strings.TrimSpace(string(body))
	if c.key != "" {
		s = strings.ReplaceAll(s, c.key, "[redacted]")
	}
	if len(s) > maxBody {
		s = strings.ToValidUTF8(s[:maxBody], "")
	}
	return s
}
