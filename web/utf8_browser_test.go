package web_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instanthq/instant"
)

// TestBrowserInvalidUTF8 sends an envelope with invalid UTF-8 inside its
// data. Relayed, it would make Chromium close the websocket of every
// subscriber of the channel, and again at each reconnect as history
// recovery brought it back. The bridge refuses it (bad_envelope); the page
// stays connected and shows the next good message.
func TestBrowserInvalidUTF8(t *testing.T) {
	s := startStack(t, 10*time.Minute, instant.EncodingObject)
	p := s.openPage()
	p.login("alice")
	p.waitState("connected")
	// Record every state the page shows from now on.
	eval[bool](p, `(() => {
		window.statesSeen = [];
		const el = document.getElementById("state-name");
		new MutationObserver(() => statesSeen.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
		return true;
	})()`)

	bad := []byte("{\"message\":\"bad bytes\",\"data\":{\"x\":\"\xff\xfe\"}}")
	resp, err := s.nc.RequestMsg(&nats.Msg{Subject: "instant.request.public", Data: bad}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply instant.Reply
	if err := json.Unmarshal(resp.Data, &reply); err != nil || reply.Error == nil || reply.Error.Code != instant.CodeBadEnvelope {
		t.Errorf("invalid UTF-8 in data: reply %s, want bad_envelope", resp.Data)
	}
	s.request("public", "after-bad-bytes", "after the bad bytes")
	p.waitShown("after the bad bytes")
	if got := eval[[]string](p, `statesSeen`); len(got) != 0 {
		t.Errorf("the page went through the states %q, want it to stay connected", got)
	}
	if n := p.count("bad bytes"); n != 0 {
		t.Errorf("the page shows the refused message %d times", n)
	}
}
