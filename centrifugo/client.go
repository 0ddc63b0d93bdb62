// Package centrifugo is a small client of Centrifugo's server HTTP API,
// built on github.com/centrifugal/gocent/v3: batched publishing (one HTTP
// request per batch, commands applied in order), and ending a user's
// subscriptions or connection.
package centrifugo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/centrifugal/gocent/v3"
)

// DefaultTimeout bounds one HTTP request when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Config configures a Client.
type Config struct {
	// URL is the API endpoint, e.g. "http://localhost:8000/api".
	URL string
	// Key is the API key (Centrifugo's http_api.key). It is sent in a
	// header and never appears in errors.
	Key string
	// Timeout bounds each HTTP request. Defaults to DefaultTimeout.
	Timeout time.Duration
	// HTTPClient replaces the client's own HTTP client (whose Timeout is
	// then ignored).
	HTTPClient *http.Client
}

// Client calls Centrifugo's server API. It is safe for concurrent use.
type Client struct {
	api *gocent.Client
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		timeout := cfg.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr, Timeout: timeout}
	}
	return &Client{api: gocent.New(gocent.Config{Addr: cfg.URL, Key: cfg.Key, HTTPClient: hc})}
}

// Publish is one publication to send.
type Publish struct {
	Channel string
	Data    []byte // encoded JSON: the publication data
}

// Result is Centrifugo's answer to one Publish: its position in the
// channel's stream, or Err (an *APIError) when Centrifugo refused it.
type Result struct {
	Offset uint64
	Epoch  string
	Err    error
}

// Publish sends pubs in one HTTP request; Centrifugo applies them in
// order. On success it returns one Result per Publish. An error means the
// whole request failed (see Temporary).
func (c *Client) Publish(ctx context.Context, pubs []Publish) ([]Result, error) {
	pipe := c.api.Pipe()
	for _, p := range pubs {
		if err := pipe.AddPublish(p.Channel, p.Data); err != nil {
			return nil, err
		}
	}
	replies, err := c.api.SendPipe(ctx, pipe)
	if err != nil {
		return nil, requestError(err)
	}
	results := make([]Result, len(replies))
	for i, r := range replies {
		if r.Error != nil {
			results[i].Err = &APIError{Code: r.Error.Code, Message: r.Error.Message}
			continue
		}
		var pr gocent.PublishResult
		if len(r.Result) > 0 {
			if err := json.Unmarshal(r.Result, &pr); err != nil {
				return nil, fmt.Errorf("centrifugo: publish result: %w", gocent.ErrMalformedResponse)
			}
		}
		results[i].Offset, results[i].Epoch = pr.Offset, pr.Epoch
	}
	return results, nil
}

// Unsubscribe ends user's subscriptions to channel on every node.
func (c *Client) Unsubscribe(ctx context.Context, channel, user string) error {
	return commandError(c.api.Unsubscribe(ctx, channel, user))
}

// Disconnect closes every connection of user, without reconnect.
func (c *Client) Disconnect(ctx context.Context, user string) error {
	return commandError(c.api.Disconnect(ctx, user))
}

// Ping checks that Centrifugo answers and accepts the API key.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.api.Info(ctx)
	return commandError(err)
}

// ErrUnauthorized is matched (errors.Is) by the error of a request that
// Centrifugo refused with HTTP 401: a wrong API key.
var ErrUnauthorized = errors.New("centrifugo: API key refused (HTTP 401): check CENTRIFUGO_API_KEY against Centrifugo's http_api.key")

// APIError is Centrifugo's refusal of one command.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("centrifugo: error %d: %s", e.Code, e.Message)
}

// Temporary reports whether the command may succeed later: code 100
// (internal error) and 111 (too many requests).
func (e *APIError) Temporary() bool { return e.Code == 100 || e.Code == 111 }

// StatusError is an HTTP reply other than 200.
type StatusError struct {
	Status int
	Body   string // the first bytes of the body
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
// (the key may be fixed while the caller retries).
func (e *StatusError) Temporary() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return e.Status >= 500
}

// Temporary reports whether err, returned by this package, is worth a
// retry: network failures, timeouts, and the temporary API and HTTP errors
// above. Malformed replies and other refusals are permanent.
func Temporary(err error) bool {
	var api *APIError
	var status *StatusError
	var syntax *json.SyntaxError
	switch {
	case err == nil:
		return false
	case errors.As(err, &api):
		return api.Temporary()
	case errors.As(err, &status):
		return status.Temporary()
	case errors.Is(err, gocent.ErrMalformedResponse), errors.As(err, &syntax):
		return false
	}
	return true
}

const maxBody = 300

// requestError turns the error of a whole request into this package's
// errors.
func requestError(err error) error {
	var sc gocent.ErrStatusCode
	if errors.As(err, &sc) {
		body := sc.Body
		if len(body) > maxBody {
			body = body[:maxBody]
		}
		return &StatusError{Status: sc.Code, Body: string(body)}
	}
	return fmt.Errorf("centrifugo: %w", err)
}

// commandError maps the error of a single-command call.
func commandError(err error) error {
	var ge *gocent.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ge):
		return &APIError{Code: ge.Code, Message: ge.Message}
	}
	return requestError(err)
}
