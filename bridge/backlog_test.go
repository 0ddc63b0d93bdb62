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
// the backlog and the fill level, and that it warns (small envelopes:
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
	go func() { defer close(done); WatchStream(wctx, js, "INSTANT", 10*time.Millisecond, m, zap.New(core)) }()
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
	cancel()
	<-done
}
