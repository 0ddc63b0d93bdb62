package centrifugo_test

import (
	"testing"

	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
)

// TestStats asks the real Centrifugo binary for subscribers and history
// positions.
func TestStats(t *testing.T) {
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	c := centrifugo.New(centrifugo.Config{URL: cent.APIURL, Key: cent.APIKey})
	ctx := t.Context()
	if _, err := c.Publish(ctx, []centrifugo.Publish{{Channel: "news", Data: []byte(`{}`)}, {Channel: "news", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	subs, err := c.Subscribers(ctx)
	if err != nil || len(subs) != 0 {
		t.Errorf("Subscribers: got %v, %v, want none", subs, err)
	}
	pos, err := c.Positions(ctx, []string{"news", "quiet", "nope:x"})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := pos["news"]; !ok || p.Offset != 2 || p.Epoch == "" {
		t.Errorf("news: got %+v, want offset 2", pos)
	}
	if _, ok := pos["nope:x"]; ok {
		t.Errorf("a channel of an unknown namespace has a position: %+v", pos)
	}
}
