package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

// scriptedRelay answers each call with the next row of per-publication
// errors (nil: accepted) and records what each call sent.
type scriptedRelay struct {
	mu    sync.Mutex
	rows  [][]error
	calls [][]string
	after func(call int) // called after each call, with its number from 1
}

func (r *scriptedRelay) Publish(_ context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sent []string
	for _, p := range pubs {
		sent = append(sent, string(p.Data))
	}
	r.calls = append(r.calls, sent)
	res := make([]centrifugo.Result, len(pubs))
	if len(r.rows) > 0 {
		for i, err := range r.rows[0] {
			res[i].Err = err
		}
		r.rows = r.rows[1:]
	}
	if r.after != nil {
		r.after(len(r.calls))
	}
	return res, nil
}

func newSendBridge(t *testing.T, relay Relay) *Bridge {
	t.Helper()
	nc := stacktest.Connect(t, stacktest.NATS(t).ClientURL())
	b, err := New(nc, registry.Static(nil), relay, Config{Mode: ModeCore, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond},
		zaptest.NewLogger(t), NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sendItems(n int) []*item {
	var items []*item
	for i := range n {
		items = append(items, &item{id: fmt.Sprint(i), pub: centrifugo.Publish{Channel: "c", Data: []byte(fmt.Sprint(i))}})
	}
	return items
}

// A transient failure of one publication resends it and every one after
// it, in order, so that a channel's order holds; what came before it is
// settled, a permanent refusal after it is settled on the resend.
func TestSendRetriesFromFirstTransientFailure(t *testing.T) {
	temp, perm := &centrifugo.APIError{Code: 100}, &centrifugo.APIError{Code: 102}
	relay := &scriptedRelay{rows: [][]error{{nil, temp, nil, perm}, {nil, nil, perm}}}
	b := newSendBridge(t, relay)
	if _, ok := b.send(t.Context(), sendItems(4), nil, nil); !ok {
		t.Fatal("send returned false without a lease")
	}
	if got := fmt.Sprint(relay.calls); got != "[[0 1 2 3] [1 2 3]]" {
		t.Errorf("requests %s, want [[0 1 2 3] [1 2 3]]", got)
	}
	if got := testutil.ToFloat64(b.metrics.Relayed); got != 3 {
		t.Errorf("relayed %v, want 3", got)
	}
	if got := testutil.ToFloat64(b.metrics.Rejected.WithLabelValues(string(instant.CodeCentrifugoRejected))); got != 1 {
		t.Errorf("rejected %v, want 1", got)
	}
}

// With a lease, send relays only while the lease covers the request, and
// each request's deadline is the lease's end.
func TestSendFenced(t *testing.T) {
	relay := &scriptedRelay{}
	b := newSendBridge(t, relay)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	b.now = clock.now
	l := newLease(0, 1, clock.now(), 5*time.Second)
	if _, ok := b.send(t.Context(), sendItems(2), nil, l); !ok || len(relay.calls) != 1 {
		t.Fatalf("with a fresh lease: ok %v after %d requests, want true after 1", ok, len(relay.calls))
	}
	clock.advance(4500 * time.Millisecond) // 0.5 s left: less than a request may need
	if _, ok := b.send(t.Context(), sendItems(2), nil, l); ok || len(relay.calls) != 1 {
		t.Fatalf("with 0.5 s of lease left: ok %v after %d requests, want false and no new request", ok, len(relay.calls))
	}
	l.renewed(2, clock.now(), 5*time.Second)
	l.lose()
	if _, ok := b.send(t.Context(), sendItems(2), nil, l); ok || len(relay.calls) != 1 {
		t.Fatalf("with a lost lease: ok %v after %d requests, want false and no new request", ok, len(relay.calls))
	}
}

// heldMsg is a JetStream message of a partition's batch: it records the
// naks; a batched message is never acked on its own.
type heldMsg struct {
	jetstream.Msg
	naks atomic.Int64
}

func (m *heldMsg) NakWithDelay(time.Duration) error { m.naks.Add(1); return nil }
func (m *heldMsg) InProgress() error                { return nil }

// A publication Centrifugo refuses for good whose dead letter cannot be
// stored (NATS down) is not settled: it is sent again until its dead
// letter is stored, never acked with its batch without one.
func TestSendKeepsRefusedWithoutDeadLetter(t *testing.T) {
	perm := &centrifugo.APIError{Code: 102}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	relay := &scriptedRelay{rows: [][]error{{nil, perm}, {perm}}, after: func(call int) {
		if call == 2 {
			cancel()
		}
	}}
	b := newSendBridge(t, relay)
	b.nc.Close() // every dead letter fails
	items := sendItems(2)
	msg := &heldMsg{}
	for _, it := range items {
		it.msg, it.batched = msg, true
	}
	b.send(ctx, items, nil, nil)
	if got := fmt.Sprint(relay.calls); got != "[[0 1] [1]]" {
		t.Errorf("requests %s, want [[0 1] [1]]: the refused one is sent again while its dead letter is not stored", got)
	}
	if got := testutil.ToFloat64(b.metrics.Relayed); got != 1 {
		t.Errorf("relayed %v, want 1", got)
	}
	if n := msg.naks.Load(); n != 1 {
		t.Errorf("%d naks when the context ended, want 1 (the refused one, not settled)", n)
	}
}
