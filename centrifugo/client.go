// Package centrifugo is a small client of Centrifugo's server HTTP API,
// built on github.com/centrifugal/gocent/v3: batched publishing (one HTTP
// request per batch, commands applied in order), ending a user's
// subscriptions or connections, and a readiness check.
package centrifugo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/centrifugal/gocent/v3"
)

// DefaultTimeout bounds one HTTP request when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// maxIdleConnsPerHost lets that many batches be in flight at once and
// still reuse their connections.
const maxIdleConnsPerHost = 64

// Config configures a Client.
type Config struct {
	// URL is the API endpoint, e.g. "http://localhost:8000/api".
	URL string
	// Key is the API key (Centrifugo's http_api.key). It is sent in the
	// Authorization header and never appears in errors.
	Key string
	// Timeout bounds each HTTP request. Zero or less means DefaultTimeout.
	// It is ignored when HTTPClient is set.
	Timeout time.Duration
	// HTTPClient, when set, sends the requests instead of the Client's own
	// (which has Timeout, keep-alives, and room for 64 idle connections).
	HTTPClient *http.Client
}

// Client calls Centrifugo's server API. It is safe for concurrent use.
type Client struct {
	api *gocent.Client
	key string // only to keep it out of error messages
}

// New returns a Client for cfg. It does not contact Centrifugo; see Ping.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
		hc = &http.Client{Transport: tr, Timeout: timeout}
	}
	return &Client{
		api: gocent.New(gocent.Config{Addr: cfg.URL, Key: cfg.Key, HTTPClient: hc}),
		key: cfg.Key,
	}
}

// Publish is one publication to send.
type Publish struct {
	Channel string
	// Data is the publication data, already encoded as JSON (an object or
	// a string). It is sent as is, without a copy.
	Data []byte
}

// Result is Centrifugo's answer to one Publish: the publication's position
// in the channel's history (zero when the channel keeps none), or Err, an
// *APIError, when Centrifugo refused that one publication.
type Result struct {
	Offset uint64
	Epoch  string
	Err    error
}

// Publish sends pubs in one HTTP request; Centrifugo applies them in
// order. On a nil error it returns one Result per Publish, in the same
// order; with no pubs it sends nothing and returns (nil, nil).
//
// An error means the whole request failed and none, some or all of pubs
// may have been published: a *StatusError for an HTTP status other than
// 200 (matching ErrUnauthorized for 401), an error wrapping
// gocent.ErrMalformedResponse for a reply that cannot be read, or the
// wrapped transport error, including ctx's. Temporary tells whether a
// retry may succeed. Data that is not valid JSON fails the whole request
// with a permanent error.
func (c *Client) Publish(ctx context.Context, pubs []Publish) ([]Result, error) {
	if len(pubs) == 0 {
		return nil, nil
	}
	pipe := c.api.Pipe()
	for _, p := range pubs {
		if err := pipe.AddPublish(p.Channel, p.Data); err != nil {
			return nil, fmt.Errorf("centrifugo: %w", err)
		}
	}
	replies, err := c.api.SendPipe(ctx, pipe)
	if err != nil {
		return nil, c.requestError(err)
	}
	return publishResults(replies)
}

// publishResults turns the replies to publish commands into Results.
func publishResults(replies []gocent.Reply) ([]Result, error) {
	results := make([]Result, len(replies))
	var pr gocent.PublishResult // reused: one allocation per batch
	for i, r := range replies {
		if r.Error != nil {
			results[i].Err = &APIError{Code: r.Error.Code, Message: r.Error.Message}
			continue
		}
		if len(r.Result) == 0 {
			continue
		}
		pr = gocent.PublishResult{}
		if err := json.Unmarshal(r.Result, &pr); err != nil {
			return nil, fmt.Errorf("centrifugo: publish result %d: %w: %w", i, gocent.ErrMalformedResponse, err)
		}
		results[i].Offset, results[i].Epoch = pr.Offset, pr.Epoch
	}
	return results, nil
}

// Unsubscribe ends user's subscriptions to channel on every node. A user
// without such subscriptions is no error. Errors are those of Publish, or
// an *APIError when Centrifugo refuses the command.
func (c *Client) Unsubscribe(ctx context.Context, channel, user string) error {
	return c.commandError(c.api.Unsubscribe(ctx, channel, user))
}

// Disconnect closes every connection of user, telling clients not to
// reconnect. A user without connections is no error. Errors are those of
// Unsubscribe.
func (c *Client) Disconnect(ctx context.Context, user string) error {
	return c.commandError(c.api.Disconnect(ctx, user))
}

// Ping checks, with one cheap info command, that Centrifugo answers and
// accepts the API key, for readiness probes. Errors are those of
// Unsubscribe; a wrong key matches ErrUnauthorized.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.api.Info(ctx)
	return c.commandError(err)
}
