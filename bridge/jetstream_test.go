package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
)

// TestPartitionCountChangeRefused: a worker asking for another partition
// count than the stream's does not start, and says why.
func TestPartitionCountChangeRefused(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	relay := centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})
	b, err := bridge.New(stacktest.Connect(t, s.natsURL), s.view, relay, bridge.Config{Partitions: 8}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if !errors.Is(err, bridge.ErrPartitionsChanged) {
		t.Fatalf("Run with 8 partitions on a stream of 16: got %v, want ErrPartitionsChanged", err)
	}
	t.Log(err)
}

// TestUpgradeFromSharedConsumer starts a worker on a stream made before
// partitions, with envelopes waiting on the old shared consumer: the
// stream gets the partition transform, the old consumer goes, and every
// envelope, old and new, is relayed once, in order, acked one by one (the
// stream keeps its work-queue retention).
func TestUpgradeFromSharedConsumer(t *testing.T) {
	const n = 100
	s := newStack(t)
	stream, err := s.js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "INSTANT", Subjects: []string{"instant.publish", "instant.publish.>"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateConsumer(t.Context(), jetstream.ConsumerConfig{Durable: "instant-bridge", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := range n / 2 {
		if _, err := s.js.Publish(t.Context(), "instant.publish.public", fmt.Appendf(nil, `{"data":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	sub := s.cent.Subscribe(t, "alice", "public")
	s.startBridge(t, bridge.Config{})
	if _, err := stream.Consumer(t.Context(), "instant-bridge"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the old shared consumer: got %v, want it deleted", err)
	}
	stacktest.WaitFor(t, 30*time.Second, "half the envelopes relayed", func() bool { return len(sub.History(t, "public")) >= n/2 })
	for i := n / 2; i < n; i++ {
		publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
	}
	stacktest.WaitFor(t, 30*time.Second, "every envelope relayed", func() bool { return len(sub.History(t, "public")) >= n })
	stacktest.AssertSequence(t, sub.History(t, "public"), n)
	// The stream keeps its work-queue retention; what was relayed leaves it.
	stacktest.WaitFor(t, 30*time.Second, "the work-queue stream empty", func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.State.Msgs == 0 && info.Config.Retention == jetstream.WorkQueuePolicy
	})
}

// TestAckedEnvelopesPurged: what a worker relayed leaves the stream (its
// partitions' runners purge what they acked) though the stream has
// limits retention, and the backlog is what waits; after a clean stop,
// the next worker relays only what came since, once each, in order.
func TestAckedEnvelopesPurged(t *testing.T) {
	const n = 300
	s := newStack(t)
	stream, err := s.js.Stream(t.Context(), "INSTANT")
	if err == nil {
		t.Fatalf("stream INSTANT before the first worker: %v", stream.CachedInfo())
	}
	sub := s.cent.Subscribe(t, "alice", "public")
	w := s.startBridge(t, bridge.Config{BatchSize: 10})
	if stream, err = s.js.Stream(t.Context(), "INSTANT"); err != nil {
		t.Fatal(err)
	}
	if r := stream.CachedInfo().Config.Retention; r != jetstream.LimitsPolicy {
		t.Fatalf("the new stream's retention is %v, want limits", r)
	}
	for i := range n {
		publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
		publish(t, s.nc, "instant.publish.$users", fmt.Sprintf(`{"data":%d}`, i), nil)
	}
	stacktest.WaitFor(t, 30*time.Second, "every envelope relayed", func() bool { return w.relayed() >= 2*n })
	stacktest.WaitFor(t, 30*time.Second, "the stream emptied by purges", func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	})
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	for i := n; i < n+50; i++ {
		publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
	}
	w2 := s.startBridge(t, bridge.Config{BatchSize: 10})
	stacktest.WaitFor(t, 30*time.Second, "the new envelopes relayed", func() bool { return len(sub.History(t, "public")) >= n+50 })
	stacktest.AssertSequence(t, sub.History(t, "public"), n+50)
	if got := w2.relayed(); got != 50 {
		t.Errorf("the second worker relayed %d, want the 50 published after the first stopped", got)
	}
}
