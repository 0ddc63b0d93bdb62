package producer_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/producer"
)

func TestEventMarshal(t *testing.T) {
	tests := []struct {
		name    string
		ev      producer.Event
		want    string
		wantErr error
	}{
		{name: "message", ev: producer.Event{Channel: "public", Message: "hi"},
			want: `{"channel":"public","message":"hi"}`},
		{name: "every field", ev: producer.Event{Channel: "$users", Message: "m", Data: map[string]int{"n": 1},
			EventClass: "important", Bucket: "b", Site: "s", Level: instant.LevelUsers},
			want: `{"channel":"$users","message":"m","data":{"n":1},"event_class":"important","bucket":"b","site":"s","level":"users"}`},
		{name: "raw data", ev: producer.Event{Channel: "public", Data: json.RawMessage(`[1, 2]`)},
			want: `{"channel":"public","data":[1,2]}`},
		{name: "no channel", ev: producer.Event{Message: "hi"}, wantErr: instant.ErrBadEnvelope},
		{name: "channel with a dot", ev: producer.Event{Channel: "a.b", Message: "hi"}, wantErr: instant.ErrBadEnvelope},
		{name: "neither message nor data", ev: producer.Event{Channel: "public"}, wantErr: instant.ErrBadEnvelope},
		{name: "null data", ev: producer.Event{Channel: "public", Data: json.RawMessage("null")}, wantErr: instant.ErrBadEnvelope},
		{name: "data JSON cannot hold", ev: producer.Event{Channel: "public", Data: func() {}}, wantErr: instant.ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.Marshal()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, subject := range []string{"instant.>", "a b", ".x", "x.", "a..b"} {
		if _, err := producer.New(nil, producer.Config{Subject: subject}); err == nil || !strings.Contains(err.Error(), "Subject") {
			t.Errorf("subject %q: error %v, want one naming Subject", subject, err)
		}
	}
	if _, err := producer.New(nil, producer.Config{Core: true, Timeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("negative timeout: error %v, want one naming Timeout", err)
	}
}

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
	if _, err := p.Publish(ctx, producer.Event{Channel: "public"}); !errors.Is(err, instant.ErrBadEnvelope) {
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
	want := instant.Accepted{ID: "m1", Channel: "public", Offset: 7, Epoch: "e"}
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
		temporary bool
	}{
		{"refused", `{"ok":false,"error":{"code":"unknown_channel","message":"not registered"}}`, instant.ErrUnknownChannel, false},
		{"unavailable", `{"ok":false,"error":{"code":"unavailable","message":"retry"}}`, nil, true},
		{"no bridge", "", nats.ErrNoResponders, false},
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
			var refused *instant.ReplyError
			if isReply := errors.As(err, &refused); isReply != (tt.reply != "") {
				t.Errorf("error %v: is a ReplyError %t", err, isReply)
			} else if isReply && refused.Temporary() != tt.temporary {
				t.Errorf("error %v: temporary %t, want %t", err, refused.Temporary(), tt.temporary)
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

// TestDependencies keeps the package light: producers import it, so it
// must pull in nothing but the standard library, nats.go (with what
// nats.go needs) and the domain package.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{.Module.Path}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowedModules := map[string]bool{
		"github.com/nats-io/nats.go":    true,
		"github.com/nats-io/nkeys":      true,
		"github.com/nats-io/nuid":       true,
		"github.com/klauspost/compress": true,
		"golang.org/x/crypto":           true,
		"golang.org/x/sys":              true,
	}
	ownPackages := map[string]bool{"github.com/instanthq/instant": true, "github.com/instanthq/instant/producer": true}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		pkg, module, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !allowedModules[module] && !ownPackages[pkg] {
			t.Errorf("producer depends on %s (module %s)", pkg, module)
		}
	}
}
