package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

func TestQueue(t *testing.T) {
	q := newQueue(2)
	ctx := t.Context()
	a, b, c := &item{id: "a"}, &item{id: "b"}, &item{id: "c"}
	if err := q.put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := q.put(ctx, b); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if n := q.waitRoom(short); n != 0 {
		t.Fatalf("waitRoom on a full queue = %d, want 0 after blocking", n)
	}
	full, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := q.put(full, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put on a full queue: %v, want deadline exceeded", err)
	}
	if got := q.take(5); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("take = %v, want [a b]", got)
	}
	if n := q.waitRoom(ctx); n != 2 {
		t.Fatalf("waitRoom = %d, want 2", n)
	}
	done := make(chan []*item)
	go func() { done <- q.take(5) }()
	if err := q.put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := <-done; len(got) != 1 || got[0] != c {
		t.Fatalf("take = %v, want [c]", got)
	}
	q.close()
	if err := q.put(ctx, a); !errors.Is(err, errClosed) {
		t.Fatalf("put after close: %v, want errClosed", err)
	}
	if got := q.take(5); got != nil {
		t.Fatalf("take after close = %v, want nil", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // the start of the error: the setting it names; "" for none
	}{
		{"defaults", Config{}, ""},
		{"core", Config{Mode: ModeCore}, ""},
		{"bad mode", Config{Mode: "push"}, "INSTANT_MODE (Mode): "},
		{"wildcard subject", Config{Subject: "a.*"}, "INSTANT_SUBJECT (Subject): "},
		{"request under publish", Config{Subject: "a", RequestSubject: "a.req"}, "INSTANT_REQUEST_SUBJECT (RequestSubject): "},
		{"same dead subject", Config{DeadSubject: "instant.publish"}, "INSTANT_DEAD_SUBJECT (DeadSubject): "},
		{"bad encoding", Config{Encoding: "xml"}, "INSTANT_PAYLOAD_ENCODING (Encoding): "},
		{"negative batch", Config{BatchSize: -1}, "INSTANT_BATCH_SIZE (BatchSize): "},
		{"retry bounds", Config{RetryMin: time.Second, RetryMax: time.Millisecond}, "RetryMin: "},
		{"partitions", Config{Partitions: 64}, ""},
		{"negative partitions", Config{Partitions: -1}, "INSTANT_PARTITIONS (Partitions): "},
		{"too many partitions", Config{Partitions: 5000}, "INSTANT_PARTITIONS (Partitions): "},
		{"short lease", Config{LeaseTTL: time.Second}, "INSTANT_LEASE_TTL (LeaseTTL): "},
		{"worker id with a dot", Config{WorkerID: "a.b"}, "WorkerID: "},
		{"replicas", Config{Replicas: 5}, ""},
		{"too many replicas", Config{Replicas: 7}, "INSTANT_REPLICAS (Replicas): "},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
			}
			continue
		}
		_, ok := errors.AsType[*instant.SettingError](err)
		if err == nil || !ok || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want a *instant.SettingError starting %q", tt.name, err, tt.want)
		}
	}
	var c Config
	_ = c.Validate()
	if c.Subject != "instant.publish" || c.BatchSize != DefaultBatchSize || c.Group != "instant-bridge" || c.Encoding != instant.EncodingObject {
		t.Errorf("defaults not set: %+v", c)
	}
}

// fakeRelay fails according to script, then accepts everything.
type fakeRelay struct {
	mu     sync.Mutex
	script []error // per call: a whole-request error, or nil
	item   error   // per-publication error for every publication, when set
	calls  int
}

func (f *fakeRelay) Publish(_ context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.script) > 0 {
		err := f.script[0]
		f.script = f.script[1:]
		if err != nil {
			return nil, err
		}
	}
	res := make([]centrifugo.Result, len(pubs))
	for i := range res {
		res[i] = centrifugo.Result{Offset: uint64(i + 1), Epoch: "e", Err: f.item}
	}
	return res, nil
}

// runCore starts a core-mode bridge with relay against a real NATS server
// and returns a connection to it and the bridge's metrics.
func runCore(t *testing.T, relay Relay) (*nats.Conn, *Metrics) {
	t.Helper()
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	m := NewMetrics(nil)
	view := registry.Static([]instant.Channel{{Name: "public", Level: instant.LevelPublic, Active: true}})
	b, err := New(nc, view, relay, Config{Mode: ModeCore, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, zaptest.NewLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	stacktest.WaitBridge(t, nc)
	return nc, m
}

func request(t *testing.T, nc *nats.Conn) instant.Reply {
	t.Helper()
	msg, err := nc.Request("instant.request.public", []byte("hi"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r instant.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTransientFailuresAreRetried(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"HTTP 503", &centrifugo.StatusError{Status: 503}},
		{"wrong API key", &centrifugo.StatusError{Status: 401}},
		{"network", errors.New("connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &fakeRelay{script: []error{tt.err, tt.err, nil}}
			nc, m := runCore(t, relay)
			dead, err := nc.SubscribeSync("instant.dead")
			if err != nil {
				t.Fatal(err)
			}
			if r := request(t, nc); !r.OK {
				t.Fatalf("reply %+v, want ok after retries", r)
			}
			if got := testutil.ToFloat64(m.Retries); got != 2 {
				t.Errorf("retries = %v, want 2", got)
			}
			if msg, err := dead.NextMsg(50 * time.Millisecond); err == nil {
				t.Errorf("dead letter %v for a transient failure", msg.Header)
			}
		})
	}
}

func TestPermanentFailuresAreRejected(t *testing.T) {
	tests := []struct {
		name  string
		relay *fakeRelay
	}{
		{"HTTP 400", &fakeRelay{script: []error{&centrifugo.StatusError{Status: 400}}}},
		{"unknown channel", &fakeRelay{item: &centrifugo.APIError{Code: 102, Message: "unknown channel"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, m := runCore(t, tt.relay)
			r := request(t, nc)
			if r.OK || r.Error == nil || r.Error.Code != instant.CodeCentrifugoRejected {
				t.Fatalf("reply %+v, want centrifugo_rejected", r)
			}
			if got := testutil.ToFloat64(m.Rejected.WithLabelValues(string(instant.CodeCentrifugoRejected))); got != 1 {
				t.Errorf("rejected metric = %v, want 1", got)
			}
		})
	}
}

// TestRedeliveryLimit hands a message back twice (a worker stopped while
// Centrifugo failed); the next worker dead-letters it as redelivery_limit.
func TestRedeliveryLimit(t *testing.T) {
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	dead, err := nc.SubscribeSync("instant.dead")
	if err != nil {
		t.Fatal(err)
	}
	view := registry.Static([]instant.Channel{{Name: "public", Level: instant.LevelPublic, Active: true}})
	cfg := Config{MaxDeliver: 1, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond}
	run := func(relay Relay) (stop func()) {
		b, err := New(nc, view, relay, cfg, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- b.Run(ctx) }()
		stacktest.WaitBridge(t, nc)
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	failing := &fakeRelay{}
	for range 10000 {
		failing.script = append(failing.script, &centrifugo.StatusError{Status: 503})
	}
	stop := run(failing)
	if err := nc.Publish("instant.publish.public", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		failing.mu.Lock()
		calls := failing.calls
		failing.mu.Unlock()
		if calls > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never reached the relay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	stop = run(&fakeRelay{})
	defer stop()
	msg, err := dead.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(instant.HeaderError); got != string(instant.CodeRedeliveryLimit) {
		t.Errorf("Instant-Error = %q, want redelivery_limit", got)
	}
}
