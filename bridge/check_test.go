package bridge_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
)

// request sends body on subject with header and returns the bridge's reply.
func request(t *testing.T, nc *nats.Conn, subject, body string, header nats.Header) instant.Reply {
	t.Helper()
	m, err := nc.RequestMsg(&nats.Msg{Subject: subject, Data: []byte(body), Header: header}, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var r instant.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
	return r
}

func wantCode(t *testing.T, what string, r instant.Reply, code instant.Code) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != code {
		t.Errorf("%s: reply %+v, want code %s", what, r, code)
	}
}

// TestHostileEnvelopes sends envelopes that once got through: invalid
// UTF-8 inside data, duplicate and case-variant keys, a huge Nats-Msg-Id.
// Each is refused, and the subscriber stays connected and gets the next
// good one.
func TestHostileEnvelopes(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{Mode: bridge.ModeJetStream})
	sub := s.cent.Subscribe(t, "alice", "public", "$staff")
	tests := []struct {
		name, subject, body string
		header              nats.Header
		code                instant.Code
	}{
		{"invalid UTF-8 in data", "instant.request.public", "{\"data\":{\"x\":\"\xff\xfe\"}}", nil, instant.CodeBadEnvelope},
		{"invalid UTF-8 in message", "instant.request.public", "{\"message\":\"caf\xc3\"}", nil, instant.CodeBadEnvelope},
		{"duplicate channel", "instant.request", `{"channel":"public","channel":"$staff","message":"m"}`, nil, instant.CodeBadEnvelope},
		{"case-variant channel", "instant.request", `{"Channel":"$staff","channel":"public","message":"m"}`, nil, instant.CodeBadEnvelope},
		{"huge Nats-Msg-Id", "instant.request.public", `{"message":"m"}`,
			nats.Header{nats.MsgIdHdr: {strings.Repeat("i", 120<<10)}}, instant.CodeTooLarge},
		{"huge other header", "instant.request.public", `{"message":"m"}`,
			nats.Header{"X-Pad": {strings.Repeat("p", 70<<10)}}, instant.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.name, request(t, s.nc, tt.subject, tt.body, tt.header), tt.code)
			if r := request(t, s.nc, "instant.request.public", "next", nil); !r.OK {
				t.Fatalf("a good envelope after it: %+v", r)
			}
			if r := sub.Next(t, 10*time.Second); r.Channel != "public" || !strings.Contains(string(r.Data), `"message":"next"`) {
				t.Errorf("subscriber got %s on %s, want the next good message", r.Data, r.Channel)
			}
		})
	}
	sub.Quiet(t, 300*time.Millisecond)
}

// TestNoAmplification hands 60 KB of '<' to the relay as 60 KB, not as
// 360 KB of \u003c, and refuses what would exceed INSTANT_MAX_PAYLOAD once
// encoded.
func TestNoAmplification(t *testing.T) {
	for _, enc := range []instant.PayloadEncoding{instant.EncodingObject, instant.EncodingString} {
		t.Run(string(enc), func(t *testing.T) {
			s := newStack(t)
			rec := &recordingRelay{Relay: centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})}
			b, err := bridge.New(stacktest.Connect(t, s.natsURL), s.view, rec, bridge.Config{Encoding: enc}, zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			runBridge(t, b, s.nc)

			sub := s.cent.Subscribe(t, "alice", "public")
			lt := strings.Repeat("<", 60<<10)
			if r := request(t, s.nc, "instant.request.public", lt, nil); !r.OK {
				t.Fatalf("60 KB of '<': %+v", r)
			}
			if got := rec.last(); len(got) > len(lt)+200 {
				t.Errorf("60 KB of '<' handed to the relay as %d bytes", len(got))
			}
			if got := sub.Next(t, 10*time.Second).Data; len(got) > len(lt)+200 {
				t.Errorf("60 KB of '<' reached the subscriber as %d bytes", len(got))
			}
			// Quotes double in the string encoding: 40 KB of them encode to
			// 160 KB there, 80 KB as an object.
			quotes := strings.Repeat(`"`, 40<<10)
			wantCode(t, "40 KB of quotes", request(t, s.nc, "instant.request.public", quotes, nil), instant.CodeTooLarge)
			if r := request(t, s.nc, "instant.request.public", "after", nil); !r.OK {
				t.Fatalf("after: %+v", r)
			}
			sub.Next(t, 10*time.Second)
		})
	}
}

// recordingRelay keeps the data of the last publication sent through it.
type recordingRelay struct {
	bridge.Relay
	mu   sync.Mutex
	data []byte
}

func (r *recordingRelay) Publish(ctx context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error) {
	r.mu.Lock()
	if len(pubs) > 0 {
		r.data = pubs[len(pubs)-1].Data
	}
	r.mu.Unlock()
	return r.Relay.Publish(ctx, pubs)
}

func (r *recordingRelay) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.data
}

// TestPublicationIDsScopedByChannel: the same Nats-Msg-Id on two channels
// gives two ids, and no Nats-Msg-Id reproduces the automatic id of another
// channel's envelope.
func TestPublicationIDsScopedByChannel(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	sub := s.cent.Subscribe(t, "alice", "public", "$users")

	a := request(t, s.nc, "instant.request.public", "a", nats.Header{nats.MsgIdHdr: {"same"}})
	b := request(t, s.nc, "instant.request.$users", "b", nats.Header{nats.MsgIdHdr: {"same"}})
	if !a.OK || !b.OK || a.ID == b.ID {
		t.Errorf("the same Nats-Msg-Id on two channels: ids %q and %q, want two different ids", a.ID, b.ID)
	}
	sub.Collect(t, 2, 10*time.Second)

	// An automatic id (no Nats-Msg-Id) on $users, then an envelope on
	// public whose Nats-Msg-Id is every form that id could be predicted
	// in: the stream sequence, or the id itself.
	ack, err := s.js.Publish(t.Context(), "instant.publish.$users", []byte("automatic"))
	if err != nil {
		t.Fatal(err)
	}
	_, auto := withoutID(t, sub.Next(t, 10*time.Second).Data)
	for _, squat := range []string{jetstreamSeq(ack), auto} {
		if _, err := s.js.Publish(t.Context(), "instant.publish.public", []byte("squatter"), jetstream.WithMsgID(squat)); err != nil {
			t.Fatal(err)
		}
		_, id := withoutID(t, sub.Next(t, 10*time.Second).Data)
		if id == auto {
			t.Errorf("a producer on public with Nats-Msg-Id %q got the id %q of the $users envelope", squat, id)
		}
	}
}

func jetstreamSeq(ack *jetstream.PubAck) string {
	b, _ := json.Marshal(ack.Sequence)
	return string(b)
}

// TestJetStreamDuplicateWindowSpansChannels shows the limit the README
// states: JetStream's duplicate window is per stream, so within it a
// Nats-Msg-Id already used on one channel drops an envelope for another.
// Producers that do not trust each other must use ids others cannot guess.
func TestJetStreamDuplicateWindowSpansChannels(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	first, err := s.js.Publish(t.Context(), "instant.publish.public", []byte("first"), jetstream.WithMsgID("guessable-1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.js.Publish(t.Context(), "instant.publish.$staff", []byte("second"), jetstream.WithMsgID("guessable-1"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate {
		t.Errorf("duplicate flags %v, %v: JetStream's duplicate window no longer spans subjects; update the README", first.Duplicate, second.Duplicate)
	}
}

// TestDeadLetterHeadersCannotBeSpoofed: a producer's own Instant-* headers,
// in any letter case, do not reach the dead letter beside the real ones.
func TestDeadLetterHeadersCannotBeSpoofed(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	dead, err := s.nc.SubscribeSync("instant.dead")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, s.nc, "instant.publish.nowhere", "hi", nats.Header{
		"instant-error":         {"fake"},
		"INSTANT-ERROR-MESSAGE": {"fake"},
		"Instant-Subject":       {"fake"},
		"instant-other":         {"fake"},
		"X-Kept":                {"kept"},
	})
	m, err := dead.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			if v == "fake" {
				t.Errorf("dead letter kept the producer's %s: %s", k, v)
			}
		}
	}
	if m.Header.Get(instant.HeaderError) != string(instant.CodeUnknownChannel) || m.Header.Get(instant.HeaderSubject) != "instant.publish.nowhere" ||
		m.Header.Get("X-Kept") != "kept" {
		t.Errorf("dead letter headers %v", m.Header)
	}
}

// TestUnknownChannelHint: "users" is unknown but "$users" is registered.
func TestUnknownChannelHint(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	r := request(t, s.nc, "instant.request.users", "hi", nil)
	wantCode(t, "users", r, instant.CodeUnknownChannel)
	if r.Error == nil || !strings.Contains(r.Error.Message, "did you mean $users?") {
		t.Errorf("message %+v, want a hint at $users", r.Error)
	}
	r = request(t, s.nc, "instant.request.nowhere", "hi", nil)
	if r.Error == nil || strings.Contains(r.Error.Message, "did you mean") {
		t.Errorf("message %+v, want no hint", r.Error)
	}
}
