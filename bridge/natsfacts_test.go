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
// (the bridge's before batch acks) refuses AckAll consumers (explicit
// acks only) and removes each message once it is acked.
func TestFactPartitionTransform(t *testing.T) {
	const n = 4
	js := factsJS(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, workQueue(testLayout(n).streamConfig()))
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
		cons, err := stream.CreateConsumer(ctx, testLayout(n).consumerConfig(p, 1, time.Minute, 100, false, 0))
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
	ackAll := testLayout(n).consumerConfig(0, 2, time.Minute, 100, false, 0)
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
	bare, err := stream.CreateConsumer(ctx, testLayout(n).consumerConfig(n, 1, time.Minute, 100, false, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := bare.Next(jetstream.FetchMaxWait(time.Second)); err != nil || m.Subject() != "instant.publish" {
		t.Errorf("bare partition: got %v, %v", m, err)
	}
}

// workQueue is cfg with work-queue retention, as streams made before batch
// acks have it.
func workQueue(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.Retention = jetstream.WorkQueuePolicy
	return cfg
}

// Deleting a partition's consumer on a work-queue stream keeps what it had
// delivered but not acked; a new consumer on the same filter starts at the
// first of them (the ack floor), ahead of newer messages. Pulls on the
// deleted consumer fail.
func TestFactNewConsumerResumesAtAckFloor(t *testing.T) {
	js := factsJS(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, workQueue(testLayout(1).streamConfig()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, "instant.publish.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	old, err := stream.CreateConsumer(ctx, testLayout(1).consumerConfig(0, 1, time.Minute, 100, false, 0))
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
	cfg := testLayout(1).consumerConfig(0, 2, time.Minute, 100, false, 0)
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

// channelIn returns a channel name of partition p among n.
func channelIn(p, n int) string {
	for i := 0; ; i++ {
		if ch := fmt.Sprintf("c%d", i); PartitionOf(ch, n) == p {
			return ch
		}
	}
}

// On a limits stream (the bridge's since batch acks) a partition's
// consumer may ack all: acking one delivery acks every earlier one and
// moves the ack floor there, while the stream keeps the messages. A purge
// of the partition's subjects below a sequence removes them there and
// nowhere else, leaving the consumer's pending counts as they were and
// its floor at most raised to just below the partition's first message
// left. A consumer made after it, starting at the old floor plus one,
// gets exactly the unacked rest; one made at a sequence not yet stored
// waits for it; a fresh consumer's floor is its start minus one.
func TestFactLimitsAckAllPurge(t *testing.T) {
	const n = 4
	lay := testLayout(n)
	js := factsJS(t)
	ctx := t.Context()
	cfg := lay.streamConfig()
	cfg.Discard, cfg.MaxBytes = jetstream.DiscardNew, 1<<20
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	x, y := channelIn(0, n), channelIn(1, n)
	var xseq []uint64
	for i := range 10 {
		for _, ch := range []string{x, y} {
			ack, err := js.Publish(ctx, "instant.publish."+ch, fmt.Appendf(nil, "%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if ch == x {
				xseq = append(xseq, ack.Sequence)
			}
		}
	}
	if _, err := js.Publish(ctx, "instant.publish", []byte("bare")); err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		t.Helper()
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	old, err := stream.CreateConsumer(ctx, lay.consumerConfig(0, 1, time.Minute, 100, true, 0))
	if err != nil {
		t.Fatalf("an AckAll consumer on the limits stream: %v", err)
	}
	batch, err := old.FetchNoWait(6)
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 6 {
		t.Fatalf("fetched %d, want 6", len(got))
	}
	if err := got[3].DoubleAck(ctx); err != nil { // acks x=0 … x=3
		t.Fatal(err)
	}
	info, err := old.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != xseq[3] || info.NumAckPending != 2 || info.NumPending != 4 {
		t.Fatalf("after acking the 4th: ack floor %d, ack pending %d, pending %d; want %d, 2, 4",
			info.AckFloor.Stream, info.NumAckPending, info.NumPending, xseq[3])
	}
	if got := stored(); got != 21 {
		t.Fatalf("the stream holds %d after the ack, want all 21", got)
	}
	for _, f := range lay.filters(0) {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(f), jetstream.WithPurgeSequence(info.AckFloor.Stream+1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(); got != 17 {
		t.Fatalf("the stream holds %d after purging partition 0 below its ack floor, want 17", got)
	}
	if info, err = old.Info(ctx); err != nil {
		t.Fatal(err)
	}
	// The purge may move the floor up to just below the partition's
	// first message left.
	if info.AckFloor.Stream < xseq[3] || info.AckFloor.Stream >= xseq[4] || info.NumAckPending != 2 || info.NumPending != 4 {
		t.Fatalf("after the purge: ack floor %d, ack pending %d, pending %d; want %d to %d, 2, 4",
			info.AckFloor.Stream, info.NumAckPending, info.NumPending, xseq[3], xseq[4]-1)
	}

	// Takeover: the next consumer starts after the old one's floor.
	if err := stream.DeleteConsumer(ctx, info.Name); err != nil {
		t.Fatal(err)
	}
	next, err := stream.CreateConsumer(ctx, lay.consumerConfig(0, 2, time.Minute, 100, true, info.AckFloor.Stream+1))
	if err != nil {
		t.Fatal(err)
	}
	if ni, err := next.Info(ctx); err != nil || ni.AckFloor.Stream != info.AckFloor.Stream {
		t.Errorf("a fresh consumer's ack floor: %v (%v), want its start minus one, %d", ni.AckFloor.Stream, err, info.AckFloor.Stream)
	}
	batch, err = next.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	var last jetstream.Msg
	for m := range batch.Messages() {
		rest, last = append(rest, string(m.Data())), m
	}
	if fmt.Sprint(rest) != "[4 5 6 7 8 9]" {
		t.Errorf("the next consumer got %v, want [4 5 6 7 8 9]", rest)
	}
	if err := last.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range lay.filters(0) {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(f), jetstream.WithPurgeSequence(xseq[9]+1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(); got != 11 {
		t.Fatalf("the stream holds %d after purging all of partition 0, want 11 (partition 1 and the bare one)", got)
	}

	// The bare partition has two filters; each is purged.
	bare, err := stream.CreateConsumer(ctx, lay.consumerConfig(n, 1, time.Minute, 100, true, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bare.Next(jetstream.FetchMaxWait(time.Second))
	if err != nil || string(m.Data()) != "bare" {
		t.Fatalf("bare partition: got %v, %v", m, err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	meta, _ := m.Metadata()
	for _, f := range lay.filters(n) {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(f), jetstream.WithPurgeSequence(meta.Sequence.Stream+1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(); got != 10 {
		t.Fatalf("the stream holds %d after purging the bare partition, want 10 (partition 1)", got)
	}

	// A consumer starting past the last stored message waits for the next.
	last1, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctx, next.CachedInfo().Name); err != nil {
		t.Fatal(err)
	}
	waiting, err := stream.CreateConsumer(ctx, lay.consumerConfig(0, 3, time.Minute, 100, true, last1.State.LastSeq+1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "instant.publish."+x, []byte("10")); err != nil {
		t.Fatal(err)
	}
	if m, err := waiting.Next(jetstream.FetchMaxWait(time.Second)); err != nil || string(m.Data()) != "10" {
		t.Errorf("a consumer made past the end: got %v, %v; want the next message", m, err)
	}
}

// A stream's retention cannot change to or from work queue: a stream made
// by a version that acked each envelope keeps it.
func TestFactRetentionFixed(t *testing.T) {
	js := factsJS(t)
	ctx := t.Context()
	cfg := testLayout(4).streamConfig()
	cfg.Retention = jetstream.WorkQueuePolicy
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Retention = jetstream.LimitsPolicy
	_, err := js.UpdateStream(ctx, cfg)
	if err == nil {
		t.Fatal("a work-queue stream was changed to limits retention")
	}
	t.Log(err)
}

// On a work-queue stream with the partition transform, an acked message
// of a partition stays stored while the bare partition's consumer
// (filters instant.publish and instant.publish.>, which match the
// subject it was published on) exists: the server still counts that
// consumer's interest. Only a purge removes it; so runners purge what
// they acked on work-queue streams too.
func TestFactWorkQueueKeepsAckedPartitionMessages(t *testing.T) {
	lay := testLayout(1)
	js := factsJS(t)
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, workQueue(lay.streamConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateConsumer(ctx, lay.consumerConfig(1, 1, time.Minute, 10, false, 0)); err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateConsumer(ctx, lay.consumerConfig(0, 1, time.Minute, 10, false, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "instant.publish.x", nil); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("the acked message: %d stored, want 1 (still there)", info.State.Msgs)
	}
	meta, _ := m.Metadata()
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(lay.filters(0)[0]), jetstream.WithPurgeSequence(meta.Sequence.Stream+1)); err != nil {
		t.Fatal(err)
	}
	if info, err = stream.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("after a purge: %v stored (%v), want 0", info.State.Msgs, err)
	}
}
