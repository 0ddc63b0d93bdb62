package centrifugo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
)

const testKey = "test-api-key-0123456789"

// command is one command of a request to the fake server, as a legacy
// /api line ({"method","params"}) or a /api/batch command
// ({"publish":{…}}), normalized to the former.
type command struct {
	Method string `json:"method"`
	Params struct {
		Channel        string          `json:"channel"`
		User           string          `json:"user"`
		Data           json.RawMessage `json:"data"`
		IdempotencyKey string          `json:"idempotency_key"`
	} `json:"params"`
}

// fake is a Centrifugo API stand-in: reply answers each command with one
// JSON value. POST /api/batch takes {"commands":[{"publish":…}]} and
// answers {"replies":[…]}; POST /api takes and answers one JSON line per
// command. It counts requests and keeps the last one's commands, path and
// body size.
type fake struct {
	reply    func(i int, cmd command) string
	requests atomic.Int32
	auth     atomic.Value // string: the last Authorization header
	last     atomic.Value // []command
	path     atomic.Value // string
	sizes    sync.Mutex
	bodies   []int // body size of each request
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.auth.Store(r.Header.Get("Authorization"))
	f.path.Store(r.URL.Path)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.sizes.Lock()
	f.bodies = append(f.bodies, len(body))
	f.sizes.Unlock()
	var cmds []command
	switch r.URL.Path {
	case "/api/batch":
		var req struct {
			Commands []struct {
				Publish *json.RawMessage `json:"publish"`
			} `json:"commands"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, c := range req.Commands {
			var cmd command
			if c.Publish == nil || json.Unmarshal(*c.Publish, &cmd.Params) != nil {
				http.Error(w, "bad command", http.StatusBadRequest)
				return
			}
			cmd.Method = "publish"
			cmds = append(cmds, cmd)
		}
		f.last.Store(cmds)
		replies := make([]string, len(cmds))
		for i, cmd := range cmds {
			replies[i] = f.reply(i, cmd)
		}
		fmt.Fprintf(w, `{"replies":[%s]}`, strings.Join(replies, ","))
	case "/api":
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var cmd command
			if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			cmds = append(cmds, cmd)
		}
		f.last.Store(cmds)
		for i, cmd := range cmds {
			fmt.Fprintln(w, legacy(f.reply(i, cmd)))
		}
	default:
		http.NotFound(w, r)
	}
}

// legacy turns a batch reply ({"publish":R} or {"error":E}) into a line
// of the /api route ({"result":R} or {"error":E}).
func legacy(reply string) string {
	var r map[string]json.RawMessage
	if err := json.Unmarshal([]byte(reply), &r); err != nil {
		panic(err)
	}
	if e, ok := r["error"]; ok {
		return `{"error":` + string(e) + `}`
	}
	for _, v := range r {
		return `{"result":` + string(v) + `}`
	}
	return `{"result":{}}`
}

// serve starts h on loopback and returns a Client for it.
func serve(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(Config{URL: srv.URL + "/api", Key: testKey, Timeout: 2 * time.Second})
}

// publishReply answers publish commands with offsets 1, 2, … and an error
// for channels named "err:<code>".
func publishReply(i int, cmd command) string {
	var code int
	if _, err := fmt.Sscanf(cmd.Params.Channel, "err:%d", &code); err == nil {
		return fmt.Sprintf(`{"error":{"code":%d,"message":"refused"}}`, code)
	}
	return fmt.Sprintf(`{"publish":{"offset":%d,"epoch":"ep"}}`, i+1)
}

func TestPublishOneRequestPerBatch(t *testing.T) {
	f := &fake{reply: publishReply}
	c := serve(t, f)
	pubs := []Publish{
		{Channel: "a", Data: []byte(`{"n":1}`), IdempotencyKey: "k1"},
		{Channel: "b", Data: []byte(`"two"`)},
		{Channel: "a\"\\\n\u00e9", Data: []byte(` {"n": [3]} `), IdempotencyKey: "k\"3\t"},
	}
	results, err := c.Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Errorf("got %d HTTP requests, want 1", got)
	}
	if got := f.path.Load(); got != "/api/batch" {
		t.Errorf("got path %q, want /api/batch", got)
	}
	if got, want := f.auth.Load(), "apikey "+testKey; got != want {
		t.Errorf("got Authorization %q, want %q", got, want)
	}
	cmds := f.last.Load().([]command)
	if len(cmds) != len(pubs) {
		t.Fatalf("got %d commands, want %d", len(cmds), len(pubs))
	}
	for i, cmd := range cmds {
		p := pubs[i]
		if cmd.Method != "publish" || cmd.Params.Channel != p.Channel || string(cmd.Params.Data) != strings.TrimSpace(string(p.Data)) || cmd.Params.IdempotencyKey != p.IdempotencyKey {
			t.Errorf("command %d: got %s %q %s key %q, want publish %q %s key %q", i, cmd.Method, cmd.Params.Channel, cmd.Params.Data, cmd.Params.IdempotencyKey,
				p.Channel, p.Data, p.IdempotencyKey)
		}
	}
	for i, r := range results {
		if want := (Result{Offset: uint64(i + 1), Epoch: "ep"}); r != want {
			t.Errorf("result %d: got %+v, want %+v", i, r, want)
		}
	}
}

func TestPublishNothing(t *testing.T) {
	f := &fake{reply: publishReply}
	results, err := serve(t, f).Publish(t.Context(), nil)
	if results != nil || err != nil {
		t.Errorf("got (%v, %v), want (nil, nil)", results, err)
	}
	if got := f.requests.Load(); got != 0 {
		t.Errorf("got %d HTTP requests, want 0", got)
	}
}

func TestPublishCommandErrors(t *testing.T) {
	tests := []struct {
		code      int
		temporary bool
	}{
		{100, true},  // internal
		{111, true},  // too many requests
		{102, false}, // unknown channel
		{104, false}, // not found
		{107, false}, // bad request
		{108, false}, // not available
	}
	c := serve(t, &fake{reply: publishReply})
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			pubs := []Publish{
				{Channel: "ok", Data: []byte(`{}`)},
				{Channel: fmt.Sprintf("err:%d", tt.code), Data: []byte(`{}`)},
			}
			results, err := c.Publish(t.Context(), pubs)
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if results[0].Err != nil {
				t.Errorf("result 0: got error %v, want nil", results[0].Err)
			}
			apiErr, ok := errors.AsType[*APIError](results[1].Err)
			if !ok {
				t.Fatalf("result 1: got error %v, want an *APIError", results[1].Err)
			}
			if apiErr.Code != tt.code || apiErr.Message != "refused" {
				t.Errorf("got %+v, want code %d, message \"refused\"", apiErr, tt.code)
			}
			if got := Temporary(results[1].Err); got != tt.temporary {
				t.Errorf("Temporary(%v): got %v, want %v", results[1].Err, got, tt.temporary)
			}
		})
	}
}

// status replies with code and a body that echoes the Authorization header.
func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope: "+r.Header.Get("Authorization"), code)
	}
}

// body replies 200 with s.
func body(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, s) }
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name         string
		handler      http.Handler
		temporary    bool
		unauthorized bool
		malformed    bool
	}{
		{"401", status(http.StatusUnauthorized), true, true, false},
		{"500", status(http.StatusInternalServerError), true, false, false},
		{"503", status(http.StatusServiceUnavailable), true, false, false},
		{"429", status(http.StatusTooManyRequests), true, false, false},
		{"408", status(http.StatusRequestTimeout), true, false, false},
		{"400", status(http.StatusBadRequest), false, false, false},
		{"404", status(http.StatusNotFound), false, false, false},
		{"HTML", body("<html>hello</html>"), false, false, true},
		{"wrong type", body(`[1, 2]`), false, false, true},
		{"too few replies", body(`{"replies":[{"publish":{}}]}`), false, false, true},
		{"too many replies", body(`{"replies":[{},{},{}]}`), false, false, true},
		{"legacy lines", body(`{"result":{}}` + "\n" + `{"result":{}}`), false, false, true},
		{"empty", body(""), false, false, true},
	}
	pubs := []Publish{{Channel: "a", Data: []byte(`{}`)}, {Channel: "b", Data: []byte(`{}`)}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serve(t, tt.handler).Publish(t.Context(), pubs)
			checkError(t, err, tt.temporary)
			if got := errors.Is(err, ErrUnauthorized); got != tt.unauthorized {
				t.Errorf("errors.Is(%v, ErrUnauthorized): got %v, want %v", err, got, tt.unauthorized)
			}
			if got := errors.Is(err, gocent.ErrMalformedResponse); got != tt.malformed {
				t.Errorf("errors.Is(%v, ErrMalformedResponse): got %v, want %v", err, got, tt.malformed)
			}
			if _, got := errors.AsType[*StatusError](err); got == tt.malformed {
				t.Errorf("errors.AsType[*StatusError](%v): got %v, want %v", err, got, !tt.malformed)
			}
		})
	}
}

// checkError fails unless err is non-nil, keeps the API key out of its
// message and is as temporary as want.
func checkError(t *testing.T, err error, temporary bool) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the API key", err)
	}
	if got := Temporary(err); got != temporary {
		t.Errorf("Temporary(%v): got %v, want %v", err, got, temporary)
	}
}

func TestStatusErrorBody(t *testing.T) {
	_, err := serve(t, status(http.StatusBadGateway)).Publish(t.Context(), []Publish{{Channel: "a", Data: []byte(`{}`)}})
	se, ok := errors.AsType[*StatusError](err)
	if !ok {
		t.Fatalf("got %v, want a *StatusError", err)
	}
	if want := "nope: apikey [redacted]"; se.Status != http.StatusBadGateway || se.Body != want {
		t.Errorf("got %d %q, want 502 %q", se.Status, se.Body, want)
	}

	long := "x" + strings.Repeat("é", 200) // cut at maxBody, inside an "é"
	_, err = serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, long, http.StatusInternalServerError)
	})).Publish(t.Context(), []Publish{{Channel: "a", Data: []byte(`{}`)}})
	se, ok = errors.AsType[*StatusError](err)
	if !ok {
		t.Fatalf("got %v, want a *StatusError", err)
	}
	if want := long[:maxBody-1]; se.Body != want {
		t.Errorf("got body of %d bytes, want the first %d bytes", len(se.Body), len(want))
	}
}

func TestTransportErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/api"
	l.Close()

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) }) // runs first

	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name string
		cfg  Config
		ctx  context.Context
		is   error // matched by errors.Is, if not nil
	}{
		{"connection refused", Config{URL: closedURL}, t.Context(), nil},
		{"timeout", Config{URL: slow.URL, Timeout: 50 * time.Millisecond}, t.Context(), nil},
		{"canceled", Config{URL: slow.URL}, canceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Key = testKey
			_, err := New(tt.cfg).Publish(tt.ctx, []Publish{{Channel: "a", Data: []byte(`{}`)}})
			checkError(t, err, true)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func TestPublishBadPublications(t *testing.T) {
	f := &fake{reply: publishReply}
	pubs := []Publish{
		{Channel: "a", Data: []byte(`{"unterminated`)},
		{Channel: "b", Data: []byte(`{"n":1}`)},
		{Channel: "c", Data: []byte(`1},{"publish":{"channel":"x","data":2}}`)},
		{Channel: "bad\xff", Data: []byte(`{}`)},
		{Channel: "d", Data: []byte(`{}`), IdempotencyKey: "\xfe"},
		{Channel: "e", Data: nil},
		{Channel: "f", Data: []byte(`"ok"`)},
	}
	results, err := serve(t, f).Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	var sent []string
	for _, cmd := range f.last.Load().([]command) {
		sent = append(sent, cmd.Params.Channel)
	}
	if want := []string{"b", "f"}; !slices.Equal(sent, want) {
		t.Errorf("sent channels %q, want %q", sent, want)
	}
	for i, r := range results {
		wantBad := pubs[i].Channel != "b" && pubs[i].Channel != "f"
		if got := errors.Is(r.Err, ErrBadPublication); got != wantBad {
			t.Errorf("result %d (%q): got %v, want ErrBadPublication %v", i, pubs[i].Channel, r.Err, wantBad)
		}
		if wantBad {
			checkError(t, r.Err, false)
		}
	}
	if results[1].Offset != 1 || results[6].Offset != 2 {
		t.Errorf("got offsets %d, %d, want 1, 2", results[1].Offset, results[6].Offset)
	}

	f = &fake{reply: publishReply}
	results, err = serve(t, f).Publish(t.Context(), pubs[:1])
	if err != nil || !errors.Is(results[0].Err, ErrBadPublication) || f.requests.Load() != 0 {
		t.Errorf("only a bad publication: got (%v, %v) after %d requests, want ErrBadPublication and no request", results, err, f.requests.Load())
	}
}

func TestSingleCommands(t *testing.T) {
	f := &fake{reply: func(_ int, cmd command) string {
		if cmd.Params.User == "refused" {
			return `{"error":{"code":107,"message":"bad request"}}`
		}
		return `{"result":{}}`
	}}
	c := serve(t, f)
	tests := []struct {
		name    string
		call    func() error
		want    command
		wantErr bool
	}{
		{"unsubscribe", func() error { return c.Unsubscribe(t.Context(), "news", "u1") }, cmd("unsubscribe", "news", "u1"), false},
		{"disconnect", func() error { return c.Disconnect(t.Context(), "u1") }, cmd("disconnect", "", "u1"), false},
		{"ping", func() error { return c.Ping(t.Context()) }, cmd("info", "", ""), false},
		{"refused", func() error { return c.Disconnect(t.Context(), "refused") }, cmd("disconnect", "", "refused"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			cmds := f.last.Load().([]command)
			if len(cmds) != 1 || cmds[0].Method != tt.want.Method || cmds[0].Params.Channel != tt.want.Params.Channel || cmds[0].Params.User != tt.want.Params.User {
				t.Errorf("got commands %+v, want [%+v]", cmds, tt.want)
			}
			if !tt.wantErr {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			checkError(t, err, false)
			if e, ok := errors.AsType[*APIError](err); !ok || e.Code != 107 {
				t.Errorf("got %v, want an *APIError with code 107", err)
			}
		})
	}
}

func cmd(method, channel, user string) command {
	var c command
	c.Method, c.Params.Channel, c.Params.User = method, channel, user
	return c
}

func TestPingUnauthorized(t *testing.T) {
	err := serve(t, status(http.StatusUnauthorized)).Ping(t.Context())
	checkError(t, err, true)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("got %v, want ErrUnauthorized", err)
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&APIError{Code: 100}, true},
		{fmt.Errorf("wrapped: %w", &APIError{Code: 102}), false},
		{&StatusError{Status: 502}, true},
		{fmt.Errorf("wrapped: %w", &StatusError{Status: 403}), false},
		{fmt.Errorf("centrifugo: %w", gocent.ErrMalformedResponse), false},
		{context.DeadlineExceeded, true},
		{errors.New("connection reset"), true},
	}
	for _, tt := range tests {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("Temporary(%v): got %v, want %v", tt.err, got, tt.want)
		}
	}
}
