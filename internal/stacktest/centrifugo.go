package stacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/child"
)

// Timeouts of the Centrifugo helpers.
const (
	readyTimeout = 30 * time.Second // start until /health and the API answer
	stopTimeout  = 15 * time.Second // SIGTERM until the process is gone
	tokenTTL     = time.Hour        // lifetime of ConnToken and SubToken
)

// CentrifugoOptions tune StartCentrifugo. The zero value is a Centrifugo
// with the default channel options for channels without namespace.
type CentrifugoOptions struct {
	// Namespaces are extra channel namespaces, each with the same options
	// as channels without namespace. A channel "ns:$chan" needs "ns".
	Namespaces []string
	// Extra is merged into the top level of the generated JSON config:
	// objects are merged key by key (recursively), other values replace
	// the generated ones. E.g. "consumers" for Centrifugo's built-in
	// nats_jetstream consumer.
	Extra map[string]any
	// HistorySize is the history_size of every channel. Defaults to 10000.
	HistorySize int
	// LogLevel is Centrifugo's log level. Defaults to "warn". Its output
	// is shown (tb.Log) only when the test fails or runs with -v.
	LogLevel string
}

// Centrifugo is a real Centrifugo process listening on 127.0.0.1 with the
// memory engine. Its methods are safe for concurrent use; it is killed at
// cleanup.
type Centrifugo struct {
	URL        string // http://127.0.0.1:PORT
	APIURL     string // URL + "/api"
	WSURL      string // ws://127.0.0.1:PORT/connection/websocket
	Port       int
	APIKey     string // http_api.key, sent as X-API-Key
	HMACKey    string // client.token.hmac_secret_key, used as raw bytes
	ConfigPath string // the generated JSON config

	bin  string
	out  *tailBuffer
	http *http.Client

	mu   sync.Mutex
	proc *child.Process // nil when not running
}

// StartCentrifugo writes a Centrifugo v6 config with fresh random secrets
// into tb.TempDir(), starts bin/centrifugo with it and returns once
// /health and the HTTP API answer (at most 30s). The process is killed at
// cleanup.
func StartCentrifugo(tb testing.TB, opts CentrifugoOptions) *Centrifugo {
	tb.Helper()
	c := newCentrifugo(tb, randomHex(tb), randomHex(tb))
	dir := tb.TempDir()
	// The port comes from FreePort, so another process may grab it before
	// Centrifugo binds it: try a few ports.
	for attempt := 1; ; attempt++ {
		c.setPort(FreePort(tb))
		cfg := centrifugoConfig(c, opts)
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			tb.Fatalf("stacktest: centrifugo config: %v", err)
		}
		c.ConfigPath = filepath.Join(dir, "config.json")
		if err := os.WriteFile(c.ConfigPath, data, 0o600); err != nil {
			tb.Fatalf("stacktest: centrifugo config: %v", err)
		}
		err = c.start()
		if err == nil {
			return c
		}
		if !errors.Is(err, errAddrInUse) || attempt == 3 {
			tb.Fatalf("stacktest: %v", err)
		}
	}
}

// StartCentrifugoWithConfig starts bin/centrifugo with the config file
// at path, written elsewhere (e.g. by `instant init`), which must listen on
// port with apiKey and hmacKey. It returns once /health and the HTTP API
// answer; the process is killed at cleanup.
func StartCentrifugoWithConfig(tb testing.TB, path string, port int, apiKey, hmacKey string) *Centrifugo {
	tb.Helper()
	c := newCentrifugo(tb, apiKey, hmacKey)
	c.setPort(port)
	c.ConfigPath = path
	if err := c.start(); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	return c
}

// newCentrifugo returns a Centrifugo not yet started, killed at cleanup.
func newCentrifugo(tb testing.TB, apiKey, hmacKey string) *Centrifugo {
	c := &Centrifugo{
		bin:     Binary(tb, "centrifugo"),
		APIKey:  apiKey,
		HMACKey: hmacKey,
		out:     newTailBuffer(1 << 20),
		http:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}},
	}
	dumpOnFailure(tb, "centrifugo output", c.out)
	tb.Cleanup(func() {
		c.kill()
		c.http.CloseIdleConnections()
	})
	return c
}

func (c *Centrifugo) setPort(port int) {
	c.Port = port
	c.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	c.APIURL = c.URL + "/api"
	c.WSURL = "ws://127.0.0.1:" + strconv.Itoa(port) + "/connection/websocket"
}

// centrifugoConfig is the production config (centrifugo.ServerConfig) on
// loopback for any origin, plus what tests want: the memory engine, quiet
// logs, recovery of a full history, no usage stats, a short shutdown, and
// opts.Extra.
func centrifugoConfig(c *Centrifugo, opts CentrifugoOptions) map[string]any {
	historySize := opts.HistorySize
	if historySize <= 0 {
		historySize = 10000
	}
	logLevel := opts.LogLevel
	if logLevel == "" {
		logLevel = "warn"
	}
	cfg := centrifugo.ServerConfig{
		Address:        "127.0.0.1",
		Port:           c.Port,
		APIKey:         c.APIKey,
		HMACKey:        c.HMACKey,
		AllowedOrigins: []string{"*"},
		HistorySize:    historySize,
		HistoryTTL:     "300s",
		Namespaces:     opts.Namespaces,
	}.Map()
	mergeConfig(cfg, map[string]any{
		"log":    map[string]any{"level": logLevel},
		"engine": map[string]any{"type": "memory"},
		// Recover up to a full history after a reconnect (default 300).
		"client":      map[string]any{"recovery_max_publication_limit": historySize},
		"usage_stats": map[string]any{"disabled": true},
		"shutdown":    map[string]any{"timeout": "5s"},
	})
	mergeConfig(cfg, opts.Extra)
	return cfg
}

// mergeConfig merges src into dst: objects key by key, anything else
// replaces.
func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				dv = maps.Clone(dv)
				mergeConfig(dv, sv)
				dst[k] = dv
				continue
			}
		}
		dst[k] = v
	}
}

func randomHex(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("stacktest: random secret: %v", err)
	}
	return hex.EncodeToString(b)
}

var errAddrInUse = errors.New("address already in use")

// start runs the binary and waits until it is ready. c.mu must not be held.
func (c *Centrifugo) start() error {
	c.mu.Lock()
	if c.proc != nil {
		c.mu.Unlock()
		return errors.New("centrifugo is already running")
	}
	fmt.Fprintf(c.out, "--- starting centrifugo on port %d\n", c.Port)
	run := newTailBuffer(64 << 10) // this run's output alone
	p, err := child.Start(c.bin, []string{"--config", c.ConfigPath}, child.Options{
		Dir:    filepath.Dir(c.ConfigPath),
		Output: io.MultiWriter(c.out, run),
		// Centrifugo reads CENTRIFUGO_* as config overrides, and tests set
		// some of them (e.g. CENTRIFUGO_API_KEY) for the parts under test.
		ScrubEnv: []string{"CENTRIFUGO_"},
	})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.proc = p
	c.mu.Unlock()

	err = p.WaitReady(context.Background(), readyTimeout, c.ready)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, child.ErrExited):
		c.mu.Lock()
		c.proc = nil
		c.mu.Unlock()
		if strings.Contains(run.String(), "address already in use") {
			return fmt.Errorf("centrifugo on port %d: %w", c.Port, errAddrInUse)
		}
		return fmt.Errorf("centrifugo exited before it was ready: %v", p.Err())
	default:
		c.kill()
		return fmt.Errorf("centrifugo on port %d: %w", c.Port, err)
	}
}

// ready reports whether /health and the HTTP API answer.
func (c *Centrifugo) ready(ctx context.Context) error {
	if err := child.HealthOK(c.http, c.URL+"/health")(ctx); err != nil {
		return err
	}
	var info json.RawMessage
	return c.callContext(ctx, "info", struct{}{}, &info)
}

// apiError is an error object of Centrifugo's HTTP API.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("centrifugo API error %d: %s", e.Code, e.Message)
}

// call POSTs params to APIURL/method and decodes the "result" into result.
func (c *Centrifugo) call(method string, params, result any) error {
	return c.callContext(context.Background(), method, params, result)
}

func (c *Centrifugo) callContext(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.APIURL+"/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.APIKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", method, resp.Status, bytes.TrimSpace(data))
	}
	var reply struct {
		Error  *apiError       `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return fmt.Errorf("%s: %w: %s", method, err, data)
	}
	if reply.Error != nil {
		return reply.Error
	}
	if result == nil || len(reply.Result) == 0 {
		return nil
	}
	return json.Unmarshal(reply.Result, result)
}

// Publish publishes data (raw JSON) to channel through the HTTP API and
// returns the publication's offset in the channel history. It fails the
// test on any error.
func (c *Centrifugo) Publish(tb testing.TB, channel string, data json.RawMessage) uint64 {
	tb.Helper()
	var res struct {
		Offset uint64 `json:"offset"`
	}
	params := map[string]any{"channel": channel, "data": data}
	if err := c.call("publish", params, &res); err != nil {
		tb.Fatalf("stacktest: publish to %q: %v", channel, err)
	}
	return res.Offset
}

// Stop sends SIGTERM and waits until the process is gone (after 15s it
// is killed). Connected clients see a disconnect and start reconnecting.
func (c *Centrifugo) Stop(tb testing.TB) {
	tb.Helper()
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		tb.Fatalf("stacktest: centrifugo is not running")
	}
	fmt.Fprintf(c.out, "--- stopping centrifugo (SIGTERM)\n")
	if !p.Stop(stopTimeout) {
		tb.Errorf("stacktest: centrifugo did not exit within %v of SIGTERM; killed it", stopTimeout)
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (c *Centrifugo) Kill(tb testing.TB) {
	tb.Helper()
	if !c.kill() {
		tb.Fatalf("stacktest: centrifugo is not running")
	}
}

// kill kills the running process, if any, and reports whether there was
// one.
func (c *Centrifugo) kill() bool {
	c.mu.Lock()
	p := c.proc
	c.proc = nil
	c.mu.Unlock()
	if p == nil {
		return false
	}
	fmt.Fprintf(c.out, "--- killing centrifugo\n")
	p.Kill()
	return true
}

// Start starts Centrifugo again after Stop or Kill, on the same port with
// the same config and secrets, and waits until it is ready. With the
// memory engine the history is gone, so clients reconnect without
// recovering what was published before.
func (c *Centrifugo) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
}

// pid returns the process id of the running process, or 0.
func (c *Centrifugo) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid()
}

// ConnToken returns an HS256 connection token {sub, exp, iat} for user,
// signed with HMACKey (as raw bytes) and valid for an hour.
func (c *Centrifugo) ConnToken(tb testing.TB, user string) string {
	tb.Helper()
	now := time.Now()
	return c.sign(tb, jwt.MapClaims{
		"sub": user,
		"iat": now.Unix(),
		"exp": now.Add(tokenTTL).Unix(),
	})
}

// SubToken returns an HS256 subscription token {sub, channel, exp, iat}
// for user and channel, signed with HMACKey and valid for an hour.
func (c *Centrifugo) SubToken(tb testing.TB, user, channel string) string {
	tb.Helper()
	now := time.Now()
	return c.sign(tb, jwt.MapClaims{
		"sub":     user,
		"channel": channel,
		"iat":     now.Unix(),
		"exp":     now.Add(tokenTTL).Unix(),
	})
}

func (c *Centrifugo) sign(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(c.HMACKey))
	if err != nil {
		tb.Fatalf("stacktest: sign token: %v", err)
	}
	return s
}
