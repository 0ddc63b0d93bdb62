package centrifugo_test

import (
	"errors"
	"strings"
	"testing"

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
