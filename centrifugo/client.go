// Package centrifugo is a small client of Centrifugo v6's server HTTP API:
// batched, idempotent publishing through POST /api/batch (commands
// applied in order, request bodies bounded in bytes), and, through
// github.com/centrifugal/gocent/v3 and the /api route, ending a user's
// subscriptions or connections and a readiness check.
package centrifugo

import (
	"context"
	"net/http"
	"strings"
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
	// URL is the API endpoint, e.g. "http://localhost:8000/api". Publish
	// posts to URL + "/batch"; the other calls post to URL.
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
	// MaxRequestBytes bounds the body of one Publish request; more
	// publications take several requests, sent one after another. Zero or
	// less means DefaultMaxRequestBytes (2 MiB).
	MaxRequestBytes int
}

// Client calls Centrifugo's server API. It is safe for concurrent use.
type Client struct {
	api        *gocent.Client
	hc         *http.Client
	batchURL   string
	authHeader []string
	maxBytes   int
	key        string // only to keep it out of error messages
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
	maxBytes := cfg.MaxRequestBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	c := &Client{
		api:      gocent.New(gocent.Config{Addr: cfg.URL, Key: cfg.Key, HTTPClient: hc}),
		hc:       hc,
		batchURL: strings.TrimRight(cfg.URL, "/") + "/batch",
		maxBytes: maxBytes,
		key:      cfg.Key,
	}
	if cfg.Key != "" {
		c.authHeader = []string{"apikey " + cfg.Key}
	}
	return c
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
