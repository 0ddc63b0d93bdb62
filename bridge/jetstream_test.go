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
// envelope, old and new, is relayed once, in order.
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
}
