package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/instanthq/instant/centrifugo"
)

// BenchmarkPublishBatchEndpoint is baseline (b'), the ceiling of the
// bridge's own relay: as (b), pipeSize publishes per request, sequential,
// no NATS, but with centrifugo.Client, which posts to /api/batch with
// idempotency keys.
func BenchmarkPublishBatchEndpoint(b *testing.B) {
	s := newStack(b, false)
	s.startCentrifugo(b, nil)
	relay := centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})
	n, seq := *flagMsgs, 0
	var runs []run
	for range b.N {
		pubs := make([]centrifugo.Publish, 0, n)
		for i, d := range bodies(b, s, seq, seq+n) {
			pubs = append(pubs, centrifugo.Publish{Channel: s.channels[(seq+i)%len(s.channels)], Data: d, IdempotencyKey: strconv.Itoa(seq + i + 1)})
		}
		prof := profileWindow(b)
		c0, t0 := s.proc.sample(), time.Now()
		for i := 0; i < n; i += pipeSize {
			results, err := relay.Publish(context.Background(), pubs[i:min(n, i+pipeSize)])
			if err != nil {
				b.Fatalf("publish batch: %v", err)
			}
			for _, r := range results {
				if r.Err != nil {
					b.Fatalf("publish: %v", r.Err)
				}
			}
		}
		prof()
		runs = append(runs, run{msgs: n, wall: time.Since(t0), cpu: s.proc.sample().since(c0)})
		seq += n
	}
	s.checkOrder(b, seq)
	report(b, runs)
}
