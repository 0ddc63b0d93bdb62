package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
)

var flagExperiments = flag.Bool("experiments", false, "also run BenchmarkBridgeBatchEndpoint: the bridge with batchEndpointRelay instead of centrifugo.Client")

// batchEndpointRelay is a bridge.Relay that publishes through Centrifugo
// v6's POST /api/batch (one JSON document {"commands":[{"publish":…}]})
// with a body built by appending, instead of the line-per-command /api
// endpoint that gocent's Pipe uses. It exists to measure that choice; it
// is safe for concurrent use.
type batchEndpointRelay struct {
	url, key string
	hc       *http.Client
}

var _ bridge.Relay = (*batchEndpointRelay)(nil)

func newBatchEndpointRelay(s *stack) *batchEndpointRelay {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &batchEndpointRelay{
		url: s.cent.APIURL + "/batch", key: s.cent.APIKey,
		hc: &http.Client{Transport: tr, Timeout: centrifugo.DefaultTimeout},
	}
}

// batchReply is the part of Centrifugo's batch reply the relay reads.
type batchReply struct {
	Replies []struct {
		Error   *centrifugo.APIError `json:"error"`
		Publish *struct {
			Offset uint64 `json:"offset"`
			Epoch  string `json:"epoch"`
		} `json:"publish"`
	} `json:"replies"`
}

func (r *batchEndpointRelay) Publish(ctx context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error) {
	body := make([]byte, 0, 16+len(pubs)*(48+len(pubs[0].Data)))
	body = append(body, `{"commands":[`...)
	for i, p := range pubs {
		if i > 0 {
			body = append(body, ',')
		}
		ch, err := json.Marshal(p.Channel)
		if err != nil {
			return nil, err
		}
		body = append(body, `{"publish":{"channel":`...)
		body = append(body, ch...)
		body = append(body, `,"data":`...)
		body = append(body, p.Data...) // already JSON
		body = append(body, `}}`...)
	}
	body = append(body, `]}`...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", r.key)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, &centrifugo.StatusError{Status: resp.StatusCode, Body: string(b)}
	}
	var reply batchReply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return nil, fmt.Errorf("batch reply: %w", err)
	}
	if len(reply.Replies) != len(pubs) {
		return nil, fmt.Errorf("batch reply: %d replies to %d commands", len(reply.Replies), len(pubs))
	}
	results := make([]centrifugo.Result, len(pubs))
	for i, rp := range reply.Replies {
		switch {
		case rp.Error != nil:
			results[i].Err = rp.Error
		case rp.Publish != nil:
			results[i].Offset, results[i].Epoch = rp.Publish.Offset, rp.Publish.Epoch
		}
	}
	return results, nil
}

// BenchmarkPublishBatchEndpoint is baseline (b'): as (b), pipeSize
// publishes per request, sequential, but through POST /api/batch with
// batchEndpointRelay.
func BenchmarkPublishBatchEndpoint(b *testing.B) {
	s := newStack(b, false)
	s.startCentrifugo(b, nil)
	relay := newBatchEndpointRelay(s)
	n, seq := *flagMsgs, 0
	var runs []run
	for range b.N {
		pubs := make([]centrifugo.Publish, 0, n)
		for i, d := range bodies(b, s, seq, seq+n) {
			pubs = append(pubs, centrifugo.Publish{Channel: s.channels[(seq+i)%len(s.channels)], Data: d})
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

// BenchmarkBridgeBatchEndpoint (with -experiments) runs (d) and (e) with
// batchEndpointRelay in place of centrifugo.Client.
func BenchmarkBridgeBatchEndpoint(b *testing.B) {
	if !*flagExperiments {
		b.Skip("run with -experiments")
	}
	wrap := func(s *stack) func(bridge.Relay) bridge.Relay {
		return func(bridge.Relay) bridge.Relay { return newBatchEndpointRelay(s) }
	}
	b.Run("core", func(b *testing.B) { benchCore(b, bridge.DefaultBatchSize, wrap) })
	b.Run("jetstream", func(b *testing.B) { benchJetStream(b, 0, wrap) })
}
