package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

// TestSetupWaitsForJetStream starts a worker on a node of a 3-node
// cluster whose two others are down, so JetStream has no leader: the
// worker does not give up but logs and retries, and once the other nodes
// are back it creates the streams and takes the partitions.
func TestSetupWaitsForJetStream(t *testing.T) {
	c := stacktest.StartNATSCluster(t)
	for _, n := range c.Nodes[1:] {
		n.Kill()
	}
	nc, err := nats.Connect(c.URL(t, "bridge", 0), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.CustomInboxPrefix("_INBOX_bridge"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	core, logs := observer.New(zap.InfoLevel)
	m := bridge.NewMetrics(nil)
	b, err := bridge.New(nc, registry.Static(defaultChannels), &countingRelay{}, bridge.Config{}, zap.New(core), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done := make(chan struct{})
	go func() { defer close(done); runErr = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	notReady := func() bool { return logs.FilterMessageSnippet("JetStream is not ready").Len() >= 2 }
	deadline := time.Now().Add(2 * time.Minute)
	for !notReady() {
		select {
		case <-done:
			t.Fatalf("the worker ended while JetStream had no leader: %v", runErr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no retry logged while JetStream had no leader")
		}
	}
	for _, e := range logs.FilterMessageSnippet("JetStream is not ready").All() {
		t.Logf("%s %v", e.Message, e.ContextMap())
	}
	for _, n := range c.Nodes[1:] {
		n.Start(t)
	}
	stacktest.WaitFor(t, 2*time.Minute, "the worker holding every partition", func() bool {
		select {
		case <-done:
			t.Fatalf("the worker ended: %v", runErr)
		default:
		}
		return testutil.ToFloat64(m.PartitionsOwned) == bridge.DefaultPartitions+1
	})
	cancel()
	<-done
	if runErr != nil {
		t.Errorf("Run: %v", runErr)
	}
}
