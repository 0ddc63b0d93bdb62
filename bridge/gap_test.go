package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
)

// TestGapResetsConsumer takes deliveries of a partition's consumer away
// from the worker that holds it, as a pull request answered on a server
// that then died does: the worker sees its consumer sequence jump, relays
// nothing past the gap, resets the consumer to its ack floor, and every
// envelope reaches Centrifugo once, in order, long before the ack wait
// would have brought the missing ones back.
func TestGapResetsConsumer(t *testing.T) {
	const n, batch = 100, 10
	s := newStack(t)
	sub := s.cent.Subscribe(t, "alice", "public")
	m := bridge.NewMetrics(nil)
	nc := stacktest.Connect(t, s.natsURL)
	relay := centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})
	b, err := bridge.New(nc, s.view, relay, bridge.Config{BatchSize: batch, AckWait: 10 * time.Minute}, zaptest.NewLogger(t), m)
	if err != nil {
		t.Fatal(err)
	}
	runBridge(t, b, nc)

	stream, err := s.js.Stream(t.Context(), "INSTANT")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("instant-bridge-p%d-", bridge.PartitionOf("public", bridge.DefaultPartitions))
	var cons jetstream.Consumer
	stacktest.WaitFor(t, 30*time.Second, "the partition's consumer pulled from", func() bool {
		for name := range stream.ListConsumers(t.Context()).Info() {
			if strings.HasPrefix(name.Name, prefix) && name.NumWaiting > 0 {
				cons, _ = stream.Consumer(t.Context(), name.Name)
			}
		}
		return cons != nil
	})
	// A pull request of the test's queues behind the worker's: it takes
	// some deliveries and never acks them.
	stolen := make(chan int, 1)
	go func() {
		got := 0
		if mb, err := cons.Fetch(3, jetstream.FetchMaxWait(30*time.Second)); err == nil {
			for range mb.Messages() {
				got++
			}
		}
		stolen <- got
	}()
	stacktest.WaitFor(t, 30*time.Second, "the test's pull request waiting", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumWaiting >= 2
	})
	for i := range n {
		publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
	}
	if got := <-stolen; got == 0 {
		t.Fatal("the test's pull request got no delivery: no gap was made")
	}
	stacktest.WaitFor(t, 60*time.Second, "every envelope relayed", func() bool { return len(sub.History(t, "public")) >= n })
	stacktest.AssertSequence(t, sub.History(t, "public"), n)
	if got := testutil.ToFloat64(m.Resets); got < 1 {
		t.Errorf("resets: got %v, want at least 1", got)
	}
}
