package centrifugo_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"

	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
)

// TestCentrifugo runs the client against the real Centrifugo binary.
func TestCentrifugo(t *testing.T) {
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	apiURL, key := cent.APIURL, cent.APIKey
	c := centrifugo.New(centrifugo.Config{URL: apiURL, Key: key})
	ctx := t.Context()

	results, err := c.Publish(ctx, []centrifugo.Publish{
		{Channel: "news", Data: []byte(`{"n":1}`)},
		{Channel: "news", Data: []byte(`"two"`)},
		{Channel: "nope:x", Data: []byte(`{}`)},
	})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(results) != 3 {
		t.Fatalf("got %d results, want 3", len(results))
	}
	first, second := results[0], results[1]
	if first.Err != nil || second.Err != nil {
		t.Fatalf("got errors %v, %v, want nil", first.Err, second.Err)
	}
	if first.Offset == 0 || second.Offset <= first.Offset {
		t.Errorf("got offsets %d, %d, want increasing from 1", first.Offset, second.Offset)
	}
	if first.Epoch == "" || second.Epoch != first.Epoch {
		t.Errorf("got epochs %q, %q, want one non-empty epoch", first.Epoch, second.Epoch)
	}
	if e, ok := errors.AsType[*centrifugo.APIError](results[2].Err); !ok || e.Code != 102 || centrifugo.Temporary(e) {
		t.Errorf("third result: got %v, want a permanent *APIError with code 102", results[2].Err)
	}

	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := c.Unsubscribe(ctx, "news", "nobody"); err != nil {
		t.Errorf("Unsubscribe of an unknown user: %v", err)
	}
	if err := c.Disconnect(ctx, "nobody"); err != nil {
		t.Errorf("Disconnect of an unknown user: %v", err)
	}

	wrong := centrifugo.New(centrifugo.Config{URL: apiURL, Key: "wrong-" + key})
	if err := wrong.Ping(ctx); !errors.Is(err, centrifugo.ErrUnauthorized) || !centrifugo.Temporary(err) {
		t.Errorf("Ping with a wrong key: got %v, want ErrUnauthorized, temporary", err)
	}
	_, err = wrong.Publish(ctx, []centrifugo.Publish{{Channel: "news", Data: []byte(`{}`)}})
	if !errors.Is(err, centrifugo.ErrUnauthorized) || strings.Contains(err.Error(), key) {
		t.Errorf("Publish with a wrong key: got %v, want ErrUnauthorized without the key", err)
	}
}

// history returns the data of every publication in channel's history.
func history(t *testing.T, cent *stacktest.Centrifugo, channel string) []string {
	t.Helper()
	api := gocent.New(gocent.Config{Addr: cent.APIURL, Key: cent.APIKey})
	h, err := api.History(t.Context(), channel, gocent.WithLimit(gocent.NoLimit))
	if err != nil {
		t.Fatalf("history of %s: %v", channel, err)
	}
	out := make([]string, len(h.Publications))
	for i, p := range h.Publications {
		out[i] = string(p.Data)
	}
	return out
}

// keyedPubs returns n publications over channels hist:a, hist:b, hist:c,
// each with data {"n":i} and idempotency key "id-i".
func keyedPubs(n int) []centrifugo.Publish {
	pubs := make([]centrifugo.Publish, n)
	for i := range pubs {
		pubs[i] = centrifugo.Publish{
			Channel:        "hist:" + string(rune('a'+i%3)),
			Data:           fmt.Appendf(nil, `{"n":%d}`, i),
			IdempotencyKey: fmt.Sprintf("id-%d", i),
		}
	}
	return pubs
}

// checkHistoryOnce checks that Centrifugo's history holds each of pubs
// once, in order per channel.
func checkHistoryOnce(t *testing.T, cent *stacktest.Centrifugo, pubs []centrifugo.Publish) {
	t.Helper()
	want := map[string][]string{}
	for _, p := range pubs {
		want[p.Channel] = append(want[p.Channel], string(p.Data))
	}
	for ch, w := range want {
		if got := history(t, cent, ch); !slices.Equal(got, w) {
			t.Errorf("history of %s: got %q, want %q (each publication once, in order)", ch, got, w)
		}
	}
}

// TestCentrifugoIdempotentBatch sends the same batch twice, split over
// several requests: Centrifugo's history holds each publication once and
// the second answer repeats the first's offsets.
func TestCentrifugoIdempotentBatch(t *testing.T) {
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{Namespaces: []string{"hist"}})
	c := centrifugo.New(centrifugo.Config{URL: cent.APIURL, Key: cent.APIKey, MaxRequestBytes: 1000})
	pubs := keyedPubs(60) // about 70 bytes a command: several requests
	first, err := c.Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	again, err := c.Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	for i := range pubs {
		if first[i].Err != nil || first[i].Offset == 0 || again[i] != first[i] {
			t.Errorf("publication %d: got %+v, then %+v; want one offset twice", i, first[i], again[i])
		}
	}
	checkHistoryOnce(t, cent, pubs)
}

// TestCentrifugoTimeoutAfterApplied: a request whose answer is lost after
// Centrifugo applied it times out; sending it again adds nothing.
func TestCentrifugoTimeoutAfterApplied(t *testing.T) {
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{Namespaces: []string{"hist"}})
	target, err := url.Parse(cent.URL)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	applied := make(chan struct{}, 1)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(*http.Response) error {
		applied <- struct{}{} // Centrifugo answered: it applied the batch
		<-release             // hold the answer until the client gave up
		return errors.New("answer lost")
	}
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first

	pubs := keyedPubs(30)
	lossy := centrifugo.New(centrifugo.Config{URL: srv.URL + "/api", Key: cent.APIKey, Timeout: 300 * time.Millisecond})
	_, err = lossy.Publish(t.Context(), pubs)
	if err == nil || !centrifugo.Temporary(err) {
		t.Fatalf("Publish through the lossy proxy: got %v, want a temporary error", err)
	}
	select {
	case <-applied:
	case <-time.After(30 * time.Second):
		t.Fatal("Centrifugo did not answer the first request")
	}
	c := centrifugo.New(centrifugo.Config{URL: cent.APIURL, Key: cent.APIKey})
	results, err := c.Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("Publish again: %v", err)
	}
	for i, r := range results {
		if r.Err != nil || r.Offset != uint64(i/3+1) {
			t.Errorf("publication %d: got %+v, want offset %d from the first request", i, r, i/3+1)
		}
	}
	checkHistoryOnce(t, cent, pubs)
}

// TestCentrifugoMixedReplies: the per-command refusals the real
// Centrifugo gives map to their publications; data that is not JSON
// fails the whole request.
func TestCentrifugoMixedReplies(t *testing.T) {
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	c := centrifugo.New(centrifugo.Config{URL: cent.APIURL, Key: cent.APIKey})
	results, err := c.Publish(t.Context(), []centrifugo.Publish{
		{Channel: "news", Data: []byte(`{"n":1}`), IdempotencyKey: "a"},
		{Channel: "nope:x", Data: []byte(`{}`)},
		{Channel: "", Data: []byte(`{}`)},
		{Channel: "news", Data: []byte(`{"n":2}`), IdempotencyKey: "b"},
		{Channel: "news", Data: []byte(`{"n":3}`), IdempotencyKey: "a"}, // a repeated key
	})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, want := range []int{0, 102, 107, 0, 0} {
		r := results[i]
		if want == 0 {
			if r.Err != nil || r.Offset == 0 {
				t.Errorf("result %d: got %+v, want an offset", i, r)
			}
			continue
		}
		if e, ok := errors.AsType[*centrifugo.APIError](r.Err); !ok || e.Code != want || centrifugo.Temporary(r.Err) {
			t.Errorf("result %d: got %v, want a permanent *APIError %d", i, r.Err, want)
		}
	}
	if results[4].Offset != results[0].Offset {
		t.Errorf("a repeated key: got offset %d, want the first's %d", results[4].Offset, results[0].Offset)
	}
	if got := history(t, cent, "news"); !slices.Equal(got, []string{`{"n":1}`, `{"n":2}`}) {
		t.Errorf("history: got %q", got)
	}

	_, err = c.Publish(t.Context(), []centrifugo.Publish{{Channel: "news", Data: []byte(`{"n":}`)}, {Channel: "news", Data: []byte(`{}`)}})
	if se, ok := errors.AsType[*centrifugo.StatusError](err); !ok || se.Status != http.StatusBadRequest || centrifugo.Temporary(err) {
		t.Errorf("data that is not JSON: got %v, want a permanent *StatusError 400", err)
	}
}
