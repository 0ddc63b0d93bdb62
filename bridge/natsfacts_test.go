package bridge

// The NATS behaviours the partitioned intake is built on, each checked
// against the in-process nats-server of the module's version: if an
// upgrade changes one of them, these tests say which.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/kvview"
)

func testLayout(n int) layout {
	return layout{stream: "INSTANT", subject: "instant.publish", group: "instant-bridge", n: n}
}

func factsJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := stacktest.NATS(t)
	js, err := jetstream.New(stacktest.Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// A stream subject transform with partition() stores each channel's
// envelopes under the partition PartitionOf computes, leaves the bare
// subject as it is, and a consumer filtering one partition with AckAll
// gets exactly that partition's envelopes in order. A work-queue stream
// refuses AckAll consumers (explicit acks only).
func TestFactPartitionTransform(t *testing.T) {
	const n = 4
	js := factsJS(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, testLayout(n).streamConfig())
	if err != nil {
		t.Fatal(err)
	}
	channels := []string{"public", "$users", "$staff", "ns:$chan", "a", "b", "$group1", "c-d_e"}
	for i := range 3 {
		for _, ch := range channels {
			if _, err := js.Publish(ctx, "instant.publish."+ch, fmt.Appendf(nil, "%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := js.Publish(ctx, "instant.publish", []byte(`{"channel":"public"}`)); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= uint64(3*len(channels)); seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ch := channels[(seq-1)%uint64(len(channels))]
		if want := fmt.Sprintf("INSTANT.%d.%s", PartitionOf(ch, n), ch); m.Subject != want {
			t.Errorf("seq %d: stored as %s, want %s", seq, m.Subject, want)
		}
	}
	last, err := stream.GetMsg(ctx, uint64(3*len(channels)+1))
	if err != nil || last.Subject != "instant.publish" {
		t.Fatalf("bare form stored as %v (%v), want instant.publish", last, err)
	}

	for p := range n {
		cons, err := stream.CreateConsumer(ctx, testLayout(n).consumerConfig(p, 1, time.Minute, 100))
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		var want []string
		for i := range 3 {
			for _, ch := range channels {
				if PartitionOf(ch, n) == p {
					want = append(want, fmt.Sprintf("%s=%d", ch, i))
				}
			}
		}
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m := range batch.Messages() {
			got = append(got, fmt.Sprintf("%s=%s", strings.TrimPrefix(testLayout(n).publishSubject(m.Subject()), "instant.publish."), m.Data()))
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition %d: got %v, want %v", p, got, want)
		}
	}
	ackAll := testLayout(n).consumerConfig(0, 2, time.Minute, 100)
	ackAll.AckPolicy = jetstream.AckAllPolicy
	if _, err := stream.CreateConsumer(ctx, ackAll); err == nil {
		t.Error("the work-queue stream accepted an AckAll consumer")
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("after acking the last message of each partition the stream holds %d messages, want 1 (the bare one)", info.State.Msgs)
	}
	bare, err := stream.CreateConsumer(ctx, testLayout(n).consumerConfig(n, 1, time.Minute, 100))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := bare.Next(jetstream.FetchMaxWait(time.Second)); err != nil || m.Subject() != "instant.publish" {
		t.Errorf("bare partition: got %v, %v", m, err)
	}
}

// Deleting a partition's consumer on a work-queue stream keeps what it had
// delivered but not acked; a new consumer on the same filter starts at the
// first of them (the ack floor), ahead of newer messages. Pulls on the
// deleted consumer fail.
func TestFactNewConsumerResumesAtAckFloor(t *testing.T) {
	js := factsJS(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, testLayout(1).streamConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "instant.publish.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	old, err := stream.CreateConsumer(ctx, testLayout(1).consumerConfig(0, 1, time.Minute, 100))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := old.FetchNoWait(6)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		if i <= 2 {
			if err := m.DoubleAck(ctx); err != nil { // acks 0, 1 and 2
				t.Fatal(err)
			}
		}
		i++
	}
	if i != 6 {
		t.Fatalf("fetched %d, want 6", i)
	}
	cfg := testLayout(1).consumerConfig(0, 2, time.Minute, 100)
	if _, err := stream.CreateConsumer(ctx, cfg); err == nil {
		t.Fatal("a second consumer on the same partition was created, want the work-queue stream to refuse it")
	}
	if err := stream.DeleteConsumer(ctx, old.CachedInfo().Name); err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateConsumer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch, err = cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
	}
	if fmt.Sprint(got) != "[3 4 5 6 7 8 9]" {
		t.Errorf("new consumer got %v, want [3 4 5 6 7 8 9]", got)
	}
	if _, err := old.FetchNoWait(1); err == nil {
		// The fetch itself may succeed; its batch must then carry an error.
		b, _ := old.FetchNoWait(1)
		for range b.Messages() {
			t.Error("the deleted consumer delivered a message")
		}
	}
}

// A KV bucket whose MaxAge is the lease TTL gives leases: Create succeeds
// only while the key is absent, Update only with the latest revision, and
// a key nobody renews disappears after about the TTL, after which Create
// succeeds again and the old holder's Update fails.
func TestFactKVLeases(t *testing.T) {
	const ttl = 2 * time.Second
	js := factsJS(t)
	ctx := t.Context()
	kv, err := kvview.Open(ctx, js, leaseBucketSpec("leases", ttl, 1))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "partitions.1", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "partitions.1", []byte("b")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Errorf("second Create: got %v, want ErrKeyExists", err)
	}
	rev2, err := kv.Update(ctx, "partitions.1", []byte("a"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "partitions.1", []byte("a"), rev); err == nil {
		t.Error("Update with a stale revision succeeded")
	}
	renewed := time.Now()
	var expired time.Duration
	for {
		if _, err := kv.Get(ctx, "partitions.1"); errors.Is(err, jetstream.ErrKeyNotFound) {
			expired = time.Since(renewed)
			break
		}
		if time.Since(renewed) > 10*ttl {
			t.Fatalf("key still there %s after its last write, TTL %s", time.Since(renewed), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("key gone %s after its last write (TTL %s)", expired, ttl)
	if expired < ttl-100*time.Millisecond {
		t.Errorf("key gone after %s, before its TTL %s", expired, ttl)
	}
	if _, err := kv.Update(ctx, "partitions.1", []byte("a"), rev2); err == nil {
		t.Error("the old holder renewed an expired lease")
	}
	rev3, err := kv.Create(ctx, "partitions.1", []byte("b"))
	if err != nil {
		t.Fatalf("Create after expiry: %v", err)
	}
	if rev3 <= rev2 {
		t.Errorf("new lease revision %d not above the old %d", rev3, rev2)
	}
	// Deleting with the holder's revision releases at once.
	if err := kv.Delete(ctx, "partitions.1", jetstream.LastRevision(rev3)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "partitions.1", []byte("c")); err != nil {
		t.Errorf("Create after a release: %v", err)
	}
}

// An existing stream without the partition transform can be updated to
// have it; messages stored before keep their subjects.
func TestFactAddTransformToStream(t *testing.T) {
	js := factsJS(t)
	ctx := t.Context()
	cfg := testLayout(4).streamConfig()
	cfg.SubjectTransform = nil
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "instant.publish.a", nil); err != nil {
		t.Fatal(err)
	}
	s, err := js.UpdateStream(ctx, testLayout(4).streamConfig())
	if err != nil {
		t.Fatalf("adding the transform: %v", err)
	}
	if _, err := js.Publish(ctx, "instant.publish.a", nil); err != nil {
		t.Fatal(err)
	}
	for seq, want := range map[uint64]string{1: "instant.publish.a", 2: fmt.Sprintf("INSTANT.%d.a", PartitionOf("a", 4))} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || m.Subject != want {
			t.Errorf("seq %d: %v %v, want %s", seq, m, err, want)
		}
	}
}
