package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/instanthq/instant/internal/stacktest"
)

// browser is one headless Chromium page running the project's browser
// client (instant.js, served by instant auth) as an anonymous visitor:
// it subscribes to every public channel, reconnects and recovers by
// itself and drops duplicates by id before its handlers see them. The
// page keeps what its handlers saw until take reads it.
type browser struct {
	ctx     context.Context
	granted []string // the channels connect() was given
}

// browserMessage is one message a handler of the page saw.
type browserMessage struct {
	Channel string          `json:"channel"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// browserTimeout bounds every step on the page.
const browserTimeout = time.Minute

// openBrowser opens a page of authURL's origin, loads the client from
// it and connects it to the Centrifugo behind wsURL.
func openBrowser(t *testing.T, authURL, wsURL string) *browser {
	t.Helper()
	b := &browser{ctx: stacktest.Chromium(t)}
	// Any page of the origin: the client comes from /instant/static/ and
	// its token requests go to /instant/ of the same origin.
	if err := chromedp.Do(b.ctx, chromedp.Navigate(authURL+"/instant/static/instant.d.ts")); err != nil {
		t.Fatalf("browser: open %s: %v", authURL, err)
	}
	script := fmt.Sprintf(`(async () => {
		const { Instant } = await import("/instant/static/instant.js");
		window.got = [];
		window.states = [];
		window.unrecovered = [];
		const client = new Instant({ websocketURL: %q,
			centrifuge: { minReconnectDelay: 50, maxReconnectDelay: 1000 } });
		window.client = client;
		client.on((m) => got.push({ channel: m.channel, id: m.id ?? "", data: m.data ?? null }));
		client.onState((e) => states.push(e.state + " " + e.reason));
		client.onUnrecovered((e) => unrecovered.push(e.channel));
		const channels = await client.connect();
		return channels.map((c) => c.name);
	})()`, wsURL)
	granted, err := evaluate[[]string](b, script, chromedp.EvalAwaitPromise)
	if err != nil {
		t.Fatalf("browser: connect: %v", err)
	}
	b.granted = granted
	deadline := time.Now().Add(browserTimeout)
	for !b.subscribed() {
		if time.Now().After(deadline) {
			t.Fatalf("browser: not connected with every subscription within %v: %s", browserTimeout, b.describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b
}

func evaluate[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
}

// subscribed reports whether the client is connected with every granted
// channel subscribed, but for "nons:chaos", whose namespace Centrifugo
// does not know.
func (b *browser) subscribed() bool {
	ok, err := evaluate[bool](b, `client.state === "connected" && client.subs.size === client.channels.length &&
		[...client.subs.values()].every((s) => s.channel === "nons:chaos" || s.state === "subscribed")`)
	return err == nil && ok
}

// describe returns the client's state and its subscriptions' states.
func (b *browser) describe() string {
	s, err := evaluate[string](b, `client.state + " " + JSON.stringify(client.channels.map((c) => c.name)) + " " +
		JSON.stringify([...client.subs.values()].map((s) => s.channel + ":" + s.state)) + " " + JSON.stringify(states)`)
	if err != nil {
		return err.Error()
	}
	return s
}

// take returns what the page's handlers saw, in order, and its
// connection states and unrecovered channels.
func (b *browser) take() (msgs []browserMessage, states, unrecovered []string, err error) {
	if msgs, err = evaluate[[]browserMessage](b, `got`); err != nil {
		return nil, nil, nil, err
	}
	if states, err = evaluate[[]string](b, `states`); err != nil {
		return nil, nil, nil, err
	}
	unrecovered, err = evaluate[[]string](b, `unrecovered`)
	return msgs, states, unrecovered, err
}
