package bench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/internal/stacktest"
)

// Every throughput benchmark relays -msgs messages over -channels channels
// per iteration and reports msg/s, measured until Centrifugo holds them
// all (its channels' stream top offsets), plus the CPU time Centrifugo
// and this process spent per message. None has a websocket subscriber.

var flagConsumerPending = flag.String("consumer-max-ack-pending", "100,1000",
	"max_ack_pending values of Centrifugo's nats_jetstream consumer (100 is its default)")

// pipeSize is the batch of the batch-ingest baseline.
const pipeSize = 500

// bodies returns the publication data of seq from..to-1, made before the
// clock starts.
func bodies(b *testing.B, s *stack, from, to int) [][]byte {
	b.Helper()
	out := make([][]byte, 0, to-from)
	for seq := from; seq < to; seq++ {
		out = append(out, publication(b, s.channels[seq%len(s.channels)], seq))
	}
	return out
}

// BenchmarkPublishEach is baseline (a): one API publish per message,
// sequential, as django-instant publishes (gocent Publish).
func BenchmarkPublishEach(b *testing.B) {
	s := newStack(b, false)
	s.startCentrifugo(b, nil)
	s.measure(b, false, func(from, to int, start func()) func() {
		data := bodies(b, s, from, to)
		start()
		for i, d := range data {
			if _, err := s.api.Publish(context.Background(), s.channels[(from+i)%len(s.channels)], d); err != nil {
				b.Fatalf("publish: %v", err)
			}
		}
		return nil
	})
}

// BenchmarkPublishBatch is baseline (b), Centrifugo's batch-ingest
// ceiling: pipeSize publishes per API request (gocent Pipe), requests
// sequential, no NATS.
func BenchmarkPublishBatch(b *testing.B) {
	s := newStack(b, false)
	s.startCentrifugo(b, nil)
	s.measure(b, false, func(from, to int, start func()) func() {
		data := bodies(b, s, from, to)
		start()
		pipe := s.api.Pipe()
		for i, d := range data {
			if err := pipe.AddPublish(s.channels[(from+i)%len(s.channels)], d); err != nil {
				b.Fatal(err)
			}
			if (i+1)%pipeSize != 0 && i != len(data)-1 {
				continue
			}
			replies, err := s.api.SendPipe(context.Background(), pipe)
			if err != nil {
				b.Fatalf("publish batch: %v", err)
			}
			for _, r := range replies {
				if r.Error != nil {
					b.Fatalf("publish: %v", r.Error)
				}
			}
			pipe.Reset()
		}
		return nil
	})
}

// BenchmarkCentrifugoConsumer is baseline (c): Centrifugo's built-in
// nats_jetstream consumer drains -msgs publish commands from a JetStream
// stream. Centrifugo creates its consumer as configured (deliver all,
// max_ack_pending as given) on the empty stream; then it is suspended
// (SIGSTOP), the commands are stored, and the clock starts when it is
// resumed (SIGCONT). A consumer paused on the NATS side instead (pause or
// filter change) stalls for its 5s pull heartbeat after resuming.
func BenchmarkCentrifugoConsumer(b *testing.B) {
	for _, pending := range consumerPendings(b) {
		b.Run(fmt.Sprintf("max_ack_pending=%d", pending), func(b *testing.B) {
			benchConsumer(b, pending, false)
		})
	}
}

// consumerPendings returns the -consumer-max-ack-pending values.
func consumerPendings(b *testing.B) []int {
	b.Helper()
	var out []int
	for f := range strings.SplitSeq(*flagConsumerPending, ",") {
		pending, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || pending <= 0 {
			b.Fatalf("-consumer-max-ack-pending: %q is not a positive number", f)
		}
		out = append(out, pending)
	}
	return out
}

// BenchmarkRedisEngine is (c) and (e) with Centrifugo on its Redis engine
// (a redis-server of its own on loopback), as Centrifugo runs with
// several nodes: every publish waits for a Redis round trip.
func BenchmarkRedisEngine(b *testing.B) {
	for _, pending := range consumerPendings(b) {
		b.Run(fmt.Sprintf("consumer/max_ack_pending=%d", pending), func(b *testing.B) {
			benchConsumer(b, pending, true)
		})
	}
	b.Run("bridge-jetstream", func(b *testing.B) { benchJetStream(b, 0, true) })
}

// newBenchStack is newStack with Centrifugo's Redis engine when redis.
func newBenchStack(b *testing.B, withNATS, redis bool) *stack {
	b.Helper()
	s := newStack(b, withNATS)
	if redis {
		s.redis = stacktest.StartRedis(b, "--appendonly", "no", "--loglevel", "warning")
	}
	return s
}

func benchConsumer(b *testing.B, maxAckPending int, redis bool) {
	const stream, durable, prefix = "CENTRIFUGO", "centrifugo", "centrifugo.api"
	ctx := context.Background()
	s := newBenchStack(b, true, redis)
	if _, err := s.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
	}); err != nil {
		b.Fatal(err)
	}
	s.startCentrifugo(b, map[string]any{"consumers": []any{map[string]any{
		"name": "bench", "enabled": true, "type": "nats_jetstream",
		"nats_jetstream": map[string]any{
			"url": s.natsURL, "stream_name": stream, "durable_consumer_name": durable,
			"subjects": []string{prefix + ".>"}, "deliver_policy": "all",
			"max_ack_pending": maxAckPending,
		},
	}}})
	// Centrifugo consumes once it has a pull request waiting.
	deadline := time.Now().Add(setupTimeout)
	for {
		info, err := s.js.Consumer(ctx, stream, durable)
		var ci *jetstream.ConsumerInfo
		if err == nil {
			ci, err = info.Info(ctx)
		}
		if err == nil && ci.NumWaiting > 0 {
			if ci.Config.MaxAckPending != maxAckPending {
				b.Fatalf("Centrifugo's consumer has max_ack_pending %d, want %d", ci.Config.MaxAckPending, maxAckPending)
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("Centrifugo's consumer is not pulling: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With the method header the body is the publish request alone;
	// without it Centrifugo expects {"method","payload"}.
	header := nats.Header{"centrifugo-method": []string{"publish"}}
	body := func(ch string, seq int) []byte {
		return fmt.Appendf(nil, `{"channel":%q,"data":%s}`, ch, publication(b, ch, seq))
	}
	s.measure(b, true, func(from, to int, start func()) func() {
		if err := s.proc.suspend(); err != nil {
			b.Skip(err)
		}
		s.preload(b, prefix, from, to, header, body)
		start()
		if err := s.proc.resume(); err != nil {
			b.Fatal(err)
		}
		return nil
	})
}

// BenchmarkBridgeCore is (d) and the BatchSize sweep: the bridge in core
// mode; a publisher on another connection publishes -msgs envelopes as
// fast as it can; the clock runs from the first publish until Centrifugo
// holds them all.
func BenchmarkBridgeCore(b *testing.B) {
	for _, size := range batchSizes(b) {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) { benchCore(b, size) })
	}
}

func benchCore(b *testing.B, batchSize int) {
	s := newStack(b, true)
	s.startCentrifugo(b, nil)
	s.startBridge(b, bridge.Config{Mode: bridge.ModeCore, BatchSize: batchSize})
	stacktest.WaitBridge(b, s.nc)
	pub := stacktest.Connect(b, s.natsURL)
	s.measure(b, true, func(from, to int, start func()) func() {
		envs := make([][]byte, to-from)
		for i := range envs {
			envs[i] = envelope(from + i)
		}
		start()
		for i, env := range envs {
			if err := pub.Publish("instant.publish."+s.channels[(from+i)%len(s.channels)], env); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			b.Fatal(err)
		}
		return nil
	})
}

// BenchmarkBridgeJetStream is (e): -msgs envelopes wait in the INSTANT
// stream; the clock runs from the bridge's start (default config,
// JetStream mode) until Centrifugo holds them all (msg/s). The bridge's
// start (connections, streams, partition leases) is part of that time,
// while (c)'s consumer is already pulling when its clock starts: first-ms
// is the time until Centrifugo holds a first publication, steady-msg/s
// the rate from then on, which the report compares.
func BenchmarkBridgeJetStream(b *testing.B) { benchJetStream(b, 0, false) }

// benchJetStream runs (e) with BatchSize batchSize (0: the default), on
// Centrifugo's Redis engine when redis.
func benchJetStream(b *testing.B, batchSize int, redis bool) {
	s := newBenchStack(b, true, redis)
	s.startCentrifugo(b, nil)
	// A first start creates the streams and the partitions' consumers
	// with the bridge's own settings. It stops once it holds every
	// partition, so that it releases every lease (a lease it is still
	// taking when it stops stays until its TTL runs out, which would
	// hold that partition back in the measured run).
	m := bridge.NewMetrics(nil)
	stop := s.runBridge(b, bridge.Config{BatchSize: batchSize}, m)
	stacktest.WaitBridge(b, s.nc)
	deadline := time.Now().Add(setupTimeout)
	for testutil.ToFloat64(m.PartitionsOwned) != bridge.DefaultPartitions+1 {
		if time.Now().After(deadline) {
			b.Fatalf("the first bridge did not take every partition within %v", setupTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	s.measure(b, true, func(from, to int, start func()) func() {
		s.preload(b, "instant.publish", from, to, nil, func(_ string, seq int) []byte { return envelope(seq) })
		start()
		stop := s.startBridge(b, bridge.Config{BatchSize: batchSize})
		return func() {
			if err := stop(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLatency measures send → websocket arrival at a low rate
// (-latency-rate, -latency-msgs) at a centrifuge-go subscriber: a direct
// API publish (gocent Publish, as django-instant) against a NATS publish
// relayed by the bridge in each mode.
func BenchmarkLatency(b *testing.B) {
	n, rate := *flagLatencyMsgs, *flagLatencyRate
	if n <= warmup {
		b.Fatalf("-latency-msgs must exceed %d", warmup)
	}
	b.Run("direct", func(b *testing.B) {
		s := newStack(b, false)
		s.startCentrifugo(b, nil)
		data := bodies(b, s, 0, n)
		s.measureLatency(b, n, rate, func(seq int, ch string) error {
			_, err := s.api.Publish(context.Background(), ch, data[seq])
			return err
		})
	})
	for _, mode := range []bridge.Mode{bridge.ModeCore, bridge.ModeJetStream} {
		b.Run("bridge-"+string(mode), func(b *testing.B) {
			s := newStack(b, true)
			s.startCentrifugo(b, nil)
			s.startBridge(b, bridge.Config{Mode: mode})
			stacktest.WaitBridge(b, s.nc)
			pub := stacktest.Connect(b, s.natsURL)
			s.measureLatency(b, n, rate, func(seq int, ch string) error {
				return pub.Publish("instant.publish."+ch, envelope(seq))
			})
		})
	}
}
