package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestPartitionConsumerStartsAfterAckFloor: a holder acked one batch (its
// last message, AckAll) and holds the next unacked, nothing purged yet.
// The next holder's consumer starts right after the ack floor: it resends
// only the unacked batch. A reset does the same with the holder's own
// consumer; without any old consumer the new one starts at the
// partition's first stored message.
func TestPartitionConsumerStartsAfterAckFloor(t *testing.T) {
	const batch = 10
	nc := stacktest.Connect(t, stacktest.NATS(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bridge{js: js, nc: nc, cfg: Config{BatchSize: batch}, log: zaptest.NewLogger(t)}
	if err := b.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stream, err := b.ensureJetStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !b.batchAcks {
		t.Fatal("a new stream: want batch acks")
	}
	lay := newLayout(b.cfg)
	p := PartitionOf("public", lay.n)
	for i := range 3 * batch {
		if _, err := js.Publish(ctx, "instant.publish.public", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// first fetches up to n messages of cons and returns their data.
	first := func(cons jetstream.Consumer, n int) (got []string, msgs []jetstream.Msg) {
		t.Helper()
		mb, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range mb.Messages() {
			got, msgs = append(got, string(m.Data())), append(msgs, m)
		}
		return got, msgs
	}
	cons, _, err := b.partitionConsumer(ctx, stream, lay, p, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	_, msgs := first(cons, 2*batch)
	if err := msgs[batch-1].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 3*batch {
		t.Fatalf("the stream holds %v (%v), want all %d (nothing purged)", info.State.Msgs, err, 3*batch)
	}

	cons, _, err = b.partitionConsumer(ctx, stream, lay, p, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	got, msgs := first(cons, 3*batch)
	if len(got) != 2*batch || got[0] != fmt.Sprint(batch) {
		t.Fatalf("the next holder got %v, want %d to %d", got, batch, 3*batch-1)
	}
	if _, err := stream.Consumer(ctx, lay.consumerPrefix(p)+"1"); err == nil {
		t.Error("the previous holder's consumer is still there")
	}
	if err := msgs[batch-1].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	cons, _, err = b.partitionConsumer(ctx, stream, lay, p, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := first(cons, 3*batch); len(got) != batch || got[0] != fmt.Sprint(2*batch) {
		t.Fatalf("after a reset: got %v, want %d to %d", got, 2*batch, 3*batch-1)
	}

	if err := stream.DeleteConsumer(ctx, lay.consumerPrefix(p)+"2"); err != nil {
		t.Fatal(err)
	}
	cons, _, err = b.partitionConsumer(ctx, stream, lay, p, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := first(cons, 3*batch); len(got) != 3*batch || got[0] != "0" {
		t.Fatalf("without an old consumer: got %v, want 0 to %d", got, 3*batch-1)
	}
}

// TestWorkQueueStreamKeepsPerMessageAcks: on a stream made by a version
// that acked each envelope (work-queue retention, which NATS cannot
// change in place), a worker acks each envelope as before, and says once
// how to move to batch acks.
func TestWorkQueueStreamKeepsPerMessageAcks(t *testing.T) {
	nc := stacktest.Connect(t, stacktest.NATS(t).ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	b := &Bridge{js: js, nc: nc, log: zap.New(core)}
	if err := b.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, workQueue(newLayout(b.cfg).streamConfig())); err != nil {
		t.Fatal(err)
	}
	stream, err := b.ensureJetStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.batchAcks {
		t.Error("batch acks on a work-queue stream")
	}
	if got := logs.FilterMessageSnippet("nats stream rm INSTANT").Len(); got != 1 {
		t.Errorf("%d warnings saying how to migrate, want 1", got)
	}
	cons, _, err := b.partitionConsumer(ctx, stream, newLayout(b.cfg), 0, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := cons.CachedInfo().Config; c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("consumer on a work-queue stream: ack %v, deliver %v; want explicit, all", c.AckPolicy, c.DeliverPolicy)
	}
}
