package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
)

// TestFloodOfAmplifiableEnvelopes sends a bridge process 500 envelopes of
// 60 KB of '<' (each once re-encoded into 360 KB of \u003c) and 50 with
// a 120 KB Nats-Msg-Id (on the request subject: JetStream refuses headers
// over 64k itself). The bridge's memory stays bounded, Centrifugo's
// history (read through its API) holds every good envelope once and no
// larger than it came (bridge TestNoAmplification checks the bytes a
// subscriber gets), and the others are dead-lettered as too_large.
func TestFloodOfAmplifiableEnvelopes(t *testing.T) {
	const n, huge = 500, 50
	const maxBridgeRSS, maxCentrifugoRSS = 200 << 20, 400 << 20
	s := newStack(t)
	bridge := s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := s.nc.SubscribeSync("instant.dead")
	if err != nil {
		t.Fatal(err)
	}
	var bridgeRSS, centRSS int64
	sample := func() {
		bridgeRSS = max(bridgeRSS, stacktest.RSS(bridge.Process.Pid))
		centRSS = max(centRSS, stacktest.RSS(s.cent.PID()))
	}
	sample()
	t.Logf("before: bridge RSS %d MB, Centrifugo %d MB", bridgeRSS>>20, centRSS>>20)

	body := strings.Repeat("<", 60<<10)
	hugeID := strings.Repeat("i", 120<<10)
	for i := range n {
		if _, err := js.Publish(t.Context(), "instant.publish.public", []byte(fmt.Sprintf("%04d", i)+body)); err != nil {
			t.Fatal(err)
		}
		if i%(n/huge) == 0 {
			// JetStream itself refuses headers over 64k; a request does not.
			m := &nats.Msg{Subject: "instant.request.public", Data: []byte("huge id"), Header: nats.Header{nats.MsgIdHdr: {hugeID + fmt.Sprint(i)}}}
			resp, err := s.nc.RequestMsg(m, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var r instant.Reply
			if err := json.Unmarshal(resp.Data, &r); err != nil || r.Error == nil || r.Error.Code != instant.CodeTooLarge {
				t.Errorf("a 120 KB Nats-Msg-Id: reply %s, want too_large", resp.Data)
			}
		}
		if i%20 == 0 {
			sample()
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sample()
		if s.cent.HistoryTop(t, "public") >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history holds %d publications after 2 minutes, want %d", s.cent.HistoryTop(t, "public"), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sample()
	t.Logf("peak: bridge RSS %d MB, Centrifugo %d MB", bridgeRSS>>20, centRSS>>20)
	if bridgeRSS > maxBridgeRSS {
		t.Errorf("bridge RSS reached %d MB, want at most %d MB", bridgeRSS>>20, maxBridgeRSS>>20)
	}
	if centRSS > maxCentrifugoRSS {
		t.Errorf("Centrifugo RSS reached %d MB, want at most %d MB", centRSS>>20, maxCentrifugoRSS>>20)
	}

	hist := s.cent.History(t, "public", 2*n)
	if len(hist) != n {
		t.Errorf("history holds %d publications, want %d", len(hist), n)
	}
	ids, messages := map[string]bool{}, map[string]bool{}
	for _, r := range hist {
		var p instant.Publication
		if err := json.Unmarshal(r.Data, &p); err != nil {
			t.Fatalf("publication at offset %d: %v", r.Offset, err)
		}
		// The API's answer escapes '<' itself; what subscribers get is
		// checked by the bridge's TestNoAmplification.
		if len(p.Message) != len(body)+4 || !strings.HasSuffix(p.Message, body) {
			t.Errorf("publication at offset %d: message of %d bytes, want %d", r.Offset, len(p.Message), len(body)+4)
		}
		if ids[p.ID] || messages[p.Message] {
			t.Errorf("publication at offset %d (id %s, message %.4s…) is a duplicate", r.Offset, p.ID, p.Message)
		}
		ids[p.ID], messages[p.Message] = true, true
	}
	for range huge {
		m, err := dead.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		if code := m.Header.Get("Instant-Error"); code != string(instant.CodeTooLarge) {
			t.Errorf("dead letter with code %q, want too_large", code)
		}
	}
	// Stored, too: without the header JetStream would refuse.
	deadStream, err := js.Stream(t.Context(), "INSTANT_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	info, err := deadStream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != huge {
		t.Errorf("INSTANT_DEAD holds %d dead letters, want %d", info.State.Msgs, huge)
	}
}
