package bench

import (
	"context"
	"strconv"
	"testing"

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
	s.measure(b, false, func(from, to int, start func()) func() {
		n := to - from
		pubs := make([]centrifugo.Publish, 0, n)
		for i, d := range bodies(b, s, from, to) {
			pubs = append(pubs, centrifugo.Publish{Channel: s.channels[(from+i)%len(s.channels)], Data: d, IdempotencyKey: strconv.Itoa(from + i + 1)})
		}
		start()
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
		return nil
	})
}
