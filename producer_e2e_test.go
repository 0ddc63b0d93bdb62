package instant_test

// The producer module carries its own copy of the wire contract a
// producer sees, so that it requires nats.go only. These tests publish
// through it on a NATS server, and check that its copy agrees with
// package instant: what Event.Marshal refuses, ParseEnvelope refuses;
// what it sends, ParseEnvelope reads back; replies and codes match.

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/producer"
)

// newPublisher returns a publisher on a fresh in-process NATS server and a
// second connection to that server.
func newPublisher(t *testing.T, cfg producer.Config) (*producer.Publisher, *nats.Conn) {
	t.Helper()
	srv := stacktest.NATS(t)
	p, err := producer.New(stacktest.Connect(t, srv.ClientURL()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, stacktest.Connect(t, srv.ClientURL())
}

func TestPublishJetStream(t *testing.T) {
	p, nc := newPublisher(t, producer.Config{})
	ctx := t.Context()
	ev := producer.Event{Channel: "public", Message: "hi"}
	if _, err := p.Publish(ctx, ev); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("publish without a stream: error %v, want ErrNoStreamResponse", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INSTANT", Subjects: []string{"instant.publish", "instant.publish.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(ctx, ev, producer.WithMsgID("m1"))
	want := producer.Ack{Subject: "instant.publish.public", Stream: "INSTANT", Sequence: 1}
	if err != nil || ack != want {
		t.Fatalf("publish: %+v, %v; want %+v", ack, err, want)
	}
	if ack, err := p.Publish(ctx, ev, producer.WithMsgID("m1")); err != nil || !ack.Duplicate {
		t.Errorf("publish with the same message id: %+v, %v; want a duplicate", ack, err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != want.Subject || string(msg.Data) != `{"channel":"public","message":"hi"}` || msg.Header.Get(nats.MsgIdHdr) != "m1" {
		t.Errorf("stored %s %s %v", msg.Subject, msg.Data, msg.Header)
	}
	if _, err := p.Publish(ctx, producer.Event{Channel: "public"}); !errors.Is(err, producer.ErrBadEnvelope) {
		t.Errorf("publish of an envelope without message or data: error %v, want ErrBadEnvelope", err)
	}
}

func TestPublishCore(t *testing.T) {
	p, nc := newPublisher(t, producer.Config{Core: true, Subject: "app.events"})
	sub, err := nc.SubscribeSync("app.events.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(t.Context(), producer.Event{Channel: "$staff", Data: map[string]bool{"deployed": true}})
	if err != nil || ack != (producer.Ack{Subject: "app.events.$staff"}) {
		t.Fatalf("publish: %+v, %v", ack, err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != `{"channel":"$staff","data":{"deployed":true}}` {
		t.Errorf("received %s", msg.Data)
	}
}

// answer replies to every request on instant.request.> with reply, and
// sends each request it got on the returned channel.
func answer(t *testing.T, nc *nats.Conn, reply string) <-chan *nats.Msg {
	t.Helper()
	got := make(chan *nats.Msg, 10)
	sub, err := nc.Subscribe("instant.request.>", func(m *nats.Msg) {
		got <- m
		_ = m.Respond([]byte(reply))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRequest(t *testing.T) {
	p, nc := newPublisher(t, producer.Config{Core: true})
	ev := producer.Event{Channel: "public", Message: "hi"}
	got := answer(t, nc, `{"ok":true,"id":"m1","channel":"public","offset":7,"epoch":"e"}`)
	res, err := p.Request(t.Context(), ev, producer.WithMsgID("m1"))
	want := producer.Accepted{ID: "m1", Channel: "public", Offset: 7, Epoch: "e"}
	if err != nil || res != want {
		t.Fatalf("request: %+v, %v; want %+v", res, err, want)
	}
	m := <-got
	if m.Subject != "instant.request.public" || string(m.Data) != `{"channel":"public","message":"hi"}` || m.Header.Get(nats.MsgIdHdr) != "m1" {
		t.Errorf("the bridge got %s %s %v", m.Subject, m.Data, m.Header)
	}
}

func TestRequestRefusedOrUnanswered(t *testing.T) {
	ev := producer.Event{Channel: "public", Message: "hi"}
	tests := []struct {
		name      string
		reply     string // "" for no responder
		wantErr   error
		wantCode  producer.Code
		temporary bool
	}{
		{"refused", `{"ok":false,"error":{"code":"unknown_channel","message":"not registered"}}`, nil, producer.CodeUnknownChannel, false},
		{"unavailable", `{"ok":false,"error":{"code":"unavailable","message":"retry"}}`, nil, producer.CodeUnavailable, true},
		{"no bridge", "", nats.ErrNoResponders, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, nc := newPublisher(t, producer.Config{})
			if tt.reply != "" {
				answer(t, nc, tt.reply)
			}
			_, err := p.Request(t.Context(), ev)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			var refused *producer.ReplyError
			if isReply := errors.As(err, &refused); isReply != (tt.reply != "") {
				t.Errorf("error %v: is a ReplyError %t", err, isReply)
			} else if isReply && (refused.Code != tt.wantCode || refused.Temporary() != tt.temporary) {
				t.Errorf("error %v: code %s temporary %t, want %s %t", err, refused.Code, refused.Temporary(), tt.wantCode, tt.temporary)
			}
			if noAnswer := errors.Is(err, producer.ErrNoAnswer); noAnswer != (tt.reply == "") {
				t.Errorf("error %v: ErrNoAnswer %t", err, noAnswer)
			}
		})
	}
}

func TestRequestUnreadableReply(t *testing.T) {
	for _, reply := range []string{"pong", `{"ok":false}`} {
		t.Run(reply, func(t *testing.T) {
			p, nc := newPublisher(t, producer.Config{})
			answer(t, nc, reply)
			_, err := p.Request(t.Context(), producer.Event{Channel: "public", Message: "hi"})
			if err == nil || !strings.Contains(err.Error(), "unreadable answer on instant.request.public") {
				t.Errorf("error %v, want an unreadable answer", err)
			}
		})
	}
}

// TestProducerEnvelopesParse checks Event.Marshal against ParseEnvelope:
// both refuse the same events as bad envelopes, and what Marshal sends
// parses back to the same fields.
func TestProducerEnvelopesParse(t *testing.T) {
	long := strings.Repeat("é", 128) // 256 bytes
	var events []producer.Event
	for _, ch := range []string{"", "public", "$users", "ns:$chan", "a.b", "a*", "a>", "a b", "a\tb", "a\x00b", "\xff", long, long[:254] + "a"} {
		for _, msg := range []string{"", "hi", "\xffx"} {
			for _, data := range []any{nil, json.RawMessage("null"), map[string]int{"n": 1}, "", []int{}} {
				for _, level := range []string{"", "users", "groups", "admin", "Users"} {
					events = append(events, producer.Event{Channel: ch, Message: msg, Data: data, Level: level, EventClass: "c", Bucket: "b", Site: "s"})
				}
			}
		}
	}
	for _, ev := range events {
		body, perr := ev.Marshal()
		if perr != nil {
			if !errors.Is(perr, producer.ErrBadEnvelope) {
				t.Errorf("%+v: Marshal error %v, want ErrBadEnvelope", ev, perr)
			}
			// The bridge refuses the same event, sent as encoding/json would.
			raw, err := json.Marshal(ev)
			if err != nil {
				continue // Data JSON cannot hold
			}
			if env, err := instant.ParseEnvelope("", raw, instant.DefaultMaxPayload); err == nil && !strings.Contains(perr.Error(), "UTF-8") {
				t.Errorf("%+v: Marshal refuses (%v), ParseEnvelope takes it: %+v", ev, perr, env)
			}
			continue
		}
		env, err := instant.ParseEnvelope("", body, instant.DefaultMaxPayload)
		if err != nil {
			t.Errorf("%+v: Marshal sends %s, ParseEnvelope refuses it: %v", ev, body, err)
			continue
		}
		if env.Channel != ev.Channel || env.Message != ev.Message || string(env.Level) != ev.Level ||
			env.EventClass != ev.EventClass || env.Bucket != ev.Bucket || env.Site != ev.Site {
			t.Errorf("%+v: parsed back as %+v", ev, env)
		}
	}
}

// TestProducerReplyContract checks that the producer reads the bridge's
// replies: Accepted has the same fields, and every code the bridge sends
// is one of the producer's.
func TestProducerReplyContract(t *testing.T) {
	var _ = producer.Accepted(instant.Accepted{}) // same fields, or this does not compile
	codes := map[instant.Code]producer.Code{
		instant.CodeBadEnvelope:        producer.CodeBadEnvelope,
		instant.CodeTooLarge:           producer.CodeTooLarge,
		instant.CodeUnknownChannel:     producer.CodeUnknownChannel,
		instant.CodeInactiveChannel:    producer.CodeInactiveChannel,
		instant.CodeLevelMismatch:      producer.CodeLevelMismatch,
		instant.CodeCentrifugoRejected: producer.CodeCentrifugoRejected,
		instant.CodeRedeliveryLimit:    producer.CodeRedeliveryLimit,
		instant.CodeInternal:           producer.CodeInternal,
		instant.CodeUnavailable:        producer.CodeUnavailable,
	}
	for ic, pc := range codes {
		if string(ic) != string(pc) {
			t.Errorf("instant code %q is %q in the producer", ic, pc)
		}
		re := &producer.ReplyError{Code: pc}
		if re.Temporary() != (&instant.ReplyError{Code: ic}).Temporary() {
			t.Errorf("code %q: Temporary differs", ic)
		}
	}
	for _, err := range []error{instant.ErrBadEnvelope, instant.ErrTooLarge, instant.ErrUnknownChannel, instant.ErrInactiveChannel,
		instant.ErrLevelMismatch, instant.ErrCentrifugoRejected, instant.ErrRedeliveryLimit, errors.New("other")} {
		if _, ok := codes[instant.CodeOf(err)]; !ok {
			t.Errorf("the bridge sends code %q, unknown to the producer", instant.CodeOf(err))
		}
	}
	p, nc := newPublisher(t, producer.Config{Core: true})
	for _, r := range []instant.Reply{
		{OK: true, Accepted: instant.Accepted{ID: "i", Channel: "public", Offset: 3, Epoch: "e"}},
		{Error: &instant.ReplyError{Code: instant.CodeLevelMismatch, Message: "m"}},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := nc.Subscribe("instant.request.>", func(m *nats.Msg) { _ = m.Respond(b) })
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		got, err := p.Request(t.Context(), producer.Event{Channel: "public", Message: "hi"})
		_ = sub.Unsubscribe()
		var refused *producer.ReplyError
		switch {
		case r.OK && (err != nil || got != producer.Accepted(r.Accepted)):
			t.Errorf("reply %s read as %+v, %v", b, got, err)
		case !r.OK && (!errors.As(err, &refused) || string(refused.Code) != string(r.Error.Code) || refused.Message != r.Error.Message):
			t.Errorf("reply %s read as %v", b, err)
		}
	}
}

// TestProducerDefaults checks that the zero producer.Config publishes on
// the bridge's default subjects.
func TestProducerDefaults(t *testing.T) {
	if producer.DefaultSubject != instant.DefaultSubject || producer.DefaultRequestSubject != instant.DefaultRequestSubject {
		t.Errorf("producer subjects %q, %q; want %q, %q", producer.DefaultSubject, producer.DefaultRequestSubject,
			instant.DefaultSubject, instant.DefaultRequestSubject)
	}
}
