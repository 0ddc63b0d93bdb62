package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestStreamLimitsAndWatch creates the streams as the bridge does, fills
// INSTANT to its byte limit and checks that a producer gets an error (the
// discard policy new: nothing stored is dropped), that WatchStream reports
// the backlog (unacked envelopes) and the fill level, and that it warns (small envelopes:
// the last one refused leaves less than 10% of the limit free).
func TestStreamLimitsAndWatch(t *testing.T) {
	nc := stacktest.Connect(t, stacktest.NATS(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	b := &Bridge{js: js, cfg: Config{StreamMaxBytes: 2048, StreamMaxAge: time.Hour}, log: zap.New(core)}
	if err := b.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := b.ensureJetStream(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "INSTANT")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Discard != jetstream.DiscardNew || c.MaxBytes != 2048 || c.MaxAge != time.Hour || c.Replicas != 1 {
		t.Errorf("stream INSTANT: discard %v, max bytes %d, max age %v, replicas %d; want new, 2048, 1h, 1", c.Discard, c.MaxBytes, c.MaxAge, c.Replicas)
	}
	body := []byte(`{"message":"` + strings.Repeat("x", 60) + `"}`)
	stored := 0
	for ; stored < 100; stored++ {
		if _, err := js.Publish(ctx, "instant.publish.public", body); err != nil {
			break
		}
	}
	if stored == 0 || stored == 100 {
		t.Fatalf("%d publications stored before an error, want some and then a refusal", stored)
	}

	m := NewMetrics(nil)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); WatchStream(wctx, js, b.cfg, 10*time.Millisecond, m, zap.New(core)) }()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.Backlog) != float64(stored) || logs.FilterMessageSnippet("nearly full").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("backlog %v (want %d), warnings %d", testutil.ToFloat64(m.Backlog), stored, logs.FilterMessageSnippet("nearly full").Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(m.StreamMaxBytes); got != 2048 {
		t.Errorf("stream_max_bytes %v, want 2048", got)
	}
	if got := testutil.ToFloat64(m.StreamBytes); got <= 0 || got > 2048 {
		t.Errorf("stream_bytes %v, want within (0, 2048]", got)
	}

	// Once the partition has a consumer, the backlog is what it has not
	// acked, though the stream still stores what it acked.
	lay := newLayout(b.cfg)
	cons, err := s.CreateConsumer(ctx, lay.consumerConfig(PartitionOf("public", lay.n), 1, time.Minute, 100, true, 0))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := cons.FetchNoWait(3)
	if err != nil {
		t.Fatal(err)
	}
	var last jetstream.Msg
	for msg := range mb.Messages() {
		last = msg
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	for testutil.ToFloat64(m.Backlog) != float64(stored-3) {
		if time.Now().After(deadline) {
			t.Fatalf("backlog %v after acking 3, want %d", testutil.ToFloat64(m.Backlog), stored-3)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info, err := s.Info(ctx); err != nil {
		t.Error(err)
	} else if info.State.Msgs != uint64(stored) {
		t.Errorf("the stream stores %d, want all %d: acking does not remove", info.State.Msgs, stored)
	}
	cancel()
	<-done
}
