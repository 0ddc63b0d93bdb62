package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
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
	"github.com/instanthq/instant/registry"
)

// stack is a real NATS server, a real Centrifugo and a channel registry.
type stack struct {
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	cent    *stacktest.Centrifugo
	store   *registry.Store
	view    *registry.View
}

// defaultChannels are registered in every stack. "nope:$x" is registered
// but its namespace is unknown to Centrifugo, which refuses it.
var defaultChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "ns:$chan", Level: instant.LevelGroups, Active: true, Groups: []string{"group1"}},
	{Name: "$old", Level: instant.LevelUsers, Active: false},
	{Name: "nope:$x", Level: instant.LevelUsers, Active: true},
}

func newStack(t *testing.T) *stack {
	t.Helper()
	srv := stacktest.NATS(t)
	s := &stack{natsURL: srv.ClientURL()}
	s.cent = stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{Namespaces: []string{"ns"}})
	s.nc = stacktest.Connect(t, s.natsURL)
	var err error
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	if s.store, err = registry.Open(t.Context(), s.js, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.store.Import(t.Context(), defaultChannels, false); err != nil {
		t.Fatal(err)
	}
	if s.view, err = s.store.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// worker is a bridge running in this process.
type worker struct {
	relayed func() int
	stop    func() error
}

// startBridge runs a bridge on its own NATS connection until the test ends
// or stop is called.
func (s *stack) startBridge(t *testing.T, cfg bridge.Config) *worker {
	t.Helper()
	nc := stacktest.Connect(t, s.natsURL)
	relay := &countingRelay{Relay: centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})}
	b, err := bridge.New(nc, s.view, relay, cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &worker{relayed: relay.count, stop: runBridge(t, b, nc)}
}

// runBridge runs b until the test ends or stop is called (which returns
// what Run returned), and returns once b answers on nc.
func runBridge(t *testing.T, b *bridge.Bridge, nc *nats.Conn) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	stacktest.WaitBridge(t, nc)
	return stop
}

// countingRelay counts publications Centrifugo accepted through it.
type countingRelay struct {
	bridge.Relay
	mu sync.Mutex
	n  int
}

func (r *countingRelay) Publish(ctx context.Context, pubs []centrifugo.Publish) ([]centrifugo.Result, error) {
	res, err := r.Relay.Publish(ctx, pubs)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range res {
		if x.Err == nil {
			r.n++
		}
	}
	return res, err
}

func (r *countingRelay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func publish(t *testing.T, nc *nats.Conn, subject, body string, header nats.Header) {
	t.Helper()
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Data: []byte(body), Header: header}); err != nil {
		t.Fatal(err)
	}
}

// withoutID returns publication data with its "id" removed, and the id.
func withoutID(t *testing.T, data []byte) (string, string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("publication %s is not a JSON object: %v", data, err)
	}
	id, _ := m["id"].(string)
	if id == "" {
		t.Fatalf("publication %s has no id", data)
	}
	delete(m, "id")
	out, _ := json.Marshal(m)
	return string(out), id
}

var modes = []bridge.Mode{bridge.ModeJetStream, bridge.ModeCore}

func TestRelayExactPublication(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			s := newStack(t)
			s.startBridge(t, bridge.Config{Mode: mode})
			sub := s.cent.Subscribe(t, "alice", "public", "$users")

			publish(t, s.nc, "instant.publish.public", "Message for everyone", nil)
			got, id := withoutID(t, sub.Next(t, 10*time.Second).Data)
			if want := `{"channel":"public","message":"Message for everyone","site":"Site"}`; got != want {
				t.Errorf("plain text: got %s, want %s (id %s)", got, want, id)
			}

			full := `{"channel":"$users","message":"hello","data":{"n":1,"list":["a"]},"event_class":"important","bucket":"notifications","site":"shop"}`
			publish(t, s.nc, "instant.publish", full, nats.Header{nats.MsgIdHdr: []string{"order-42"}})
			r := sub.Next(t, 10*time.Second)
			want := `{"id":"` + instant.PublicationID("$users", "order-42") + `","channel":"$users","site":"shop","message":"hello","data":{"n":1,"list":["a"]},"event_class":"important","bucket":"notifications"}`
			if r.Channel != "$users" || string(r.Data) != want {
				t.Errorf("full envelope: got %s on %s, want %s on $users", r.Data, r.Channel, want)
			}
		})
	}
}

func TestRelayStringEncoding(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{Encoding: instant.EncodingString})
	sub := s.cent.Subscribe(t, "alice", "public")
	publish(t, s.nc, "instant.publish.public", "hi", nats.Header{nats.MsgIdHdr: []string{"m1"}})
	got := string(sub.Next(t, 10*time.Second).Data)
	if want := `"{\"id\":\"` + instant.PublicationID("public", "m1") + `\",\"channel\":\"public\",\"site\":\"Site\",\"message\":\"hi\"}"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestNATSCLI(t *testing.T) {
	natsCLI := stacktest.Binary(t, "nats")
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	sub := s.cent.Subscribe(t, "alice", "public")

	out, err := exec.Command(natsCLI, "--server", s.natsURL, "pub", "instant.publish.public", "from the CLI").CombinedOutput()
	if err != nil {
		t.Fatalf("nats pub: %v\n%s", err, out)
	}
	got, _ := withoutID(t, sub.Next(t, 10*time.Second).Data)
	if want := `{"channel":"public","message":"from the CLI","site":"Site"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}

	out, err = exec.Command(natsCLI, "--server", s.natsURL, "req", "--raw", "instant.request.public", "hi").CombinedOutput()
	if err != nil {
		t.Fatalf("nats req: %v\n%s", err, out)
	}
	var reply instant.Reply
	if err := json.Unmarshal(out, &reply); err != nil || !reply.OK || reply.Channel != "public" || reply.ID == "" || reply.Offset == 0 {
		t.Errorf("nats req printed %q, want an ok reply with id, channel and offset", out)
	}
	sub.Next(t, 10*time.Second)

	out, err = exec.Command(natsCLI, "--server", s.natsURL, "micro", "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "instant") {
		t.Errorf("nats micro ls: %v\n%s", err, out)
	}
}

func TestRejections(t *testing.T) {
	big := `{"message":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name    string
		channel string // subject suffix
		body    string
		code    instant.Code
	}{
		{"bad envelope", "public", `{"mesage":"typo"}`, instant.CodeBadEnvelope},
		{"too large", "public", big, instant.CodeTooLarge},
		{"unknown channel", "nowhere", "hi", instant.CodeUnknownChannel},
		{"inactive channel", "$old", "hi", instant.CodeInactiveChannel},
		{"level mismatch", "$staff", `{"message":"m","level":"public"}`, instant.CodeLevelMismatch},
		{"centrifugo rejected", "nope:$x", "hi", instant.CodeCentrifugoRejected},
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			s := newStack(t)
			s.startBridge(t, bridge.Config{Mode: mode, MaxPayload: 100})
			sub := s.cent.Subscribe(t, "alice", "public", "$staff")
			dead, err := s.nc.SubscribeSync("instant.dead")
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for _, prefix := range []string{"instant.publish", "instant.request"} {
						subject := prefix + "." + tt.channel
						if prefix == "instant.request" {
							msg, err := s.nc.Request(subject, []byte(tt.body), 10*time.Second)
							if err != nil {
								t.Fatalf("request %s: %v", subject, err)
							}
							var r instant.Reply
							if err := json.Unmarshal(msg.Data, &r); err != nil || r.OK || r.Error == nil || r.Error.Code != tt.code || r.Error.Message == "" {
								t.Errorf("reply %s, want ok=false with code %s and a message", msg.Data, tt.code)
							}
						} else {
							publish(t, s.nc, subject, tt.body, nil)
						}
						m, err := dead.NextMsg(10 * time.Second)
						if err != nil {
							t.Fatalf("no dead letter for %s: %v", subject, err)
						}
						if got := m.Header.Get(instant.HeaderError); got != string(tt.code) {
							t.Errorf("%s: Instant-Error = %q, want %q", subject, got, tt.code)
						}
						if m.Header.Get(instant.HeaderErrorMessage) == "" {
							t.Errorf("%s: Instant-Error-Message is empty", subject)
						}
						if got := m.Header.Get(instant.HeaderSubject); got != subject {
							t.Errorf("Instant-Subject = %q, want %q", got, subject)
						}
						if string(m.Data) != tt.body {
							t.Errorf("dead letter body %q, want the original %q", m.Data, tt.body)
						}
						// The bridge keeps relaying good envelopes.
						publish(t, s.nc, "instant.publish.public", "still alive", nil)
						if r := sub.Next(t, 10*time.Second); r.Channel != "public" {
							t.Errorf("after a rejection got a publication on %s, want public", r.Channel)
						}
					}
				})
			}
			sub.Quiet(t, 300*time.Millisecond)
		})
	}
}

func TestRegistryChangesApplyLive(t *testing.T) {
	s := newStack(t)
	s.startBridge(t, bridge.Config{})
	dead, err := s.nc.SubscribeSync("instant.dead")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := instant.NewChannel("late", instant.LevelUsers, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Put(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, 30*time.Second, "the view has $late", func() bool { _, ok := s.view.Lookup("$late"); return ok })
	sub := s.cent.Subscribe(t, "alice", "$late")
	publish(t, s.nc, "instant.publish.$late", "welcome", nil)
	if r := sub.Next(t, 10*time.Second); r.Channel != "$late" {
		t.Fatalf("got %s, want $late", r.Channel)
	}

	ch.Active = false
	if err := s.store.Put(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, 30*time.Second, "the view has $late inactive", func() bool { c, _ := s.view.Lookup("$late"); return !c.Active })
	publish(t, s.nc, "instant.publish.$late", "too late", nil)
	m, err := dead.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(instant.HeaderError); got != string(instant.CodeInactiveChannel) {
		t.Errorf("got %s, want inactive_channel", got)
	}
	sub.Quiet(t, 300*time.Millisecond)
}

// TestCentrifugoDownNothingLost publishes while Centrifugo is stopped; after
// it comes back every envelope arrives, once, in order.
func TestCentrifugoDownNothingLost(t *testing.T) {
	const n = 1000
	s := newStack(t)
	s.startBridge(t, bridge.Config{RetryMax: 500 * time.Millisecond})
	s.cent.Stop(t)
	for i := range n {
		publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	s.cent.Start(t)
	sub := s.cent.Subscribe(t, "alice", "public")
	stacktest.WaitFor(t, 30*time.Second, "every envelope relayed", func() bool { return len(sub.History(t, "public")) >= n })
	stacktest.AssertSequence(t, sub.History(t, "public"), n)
}

// TestTwoWorkers runs two bridges side by side: every envelope is relayed
// once. In core mode both share the load; in JetStream mode one channel's
// envelopes are relayed by one worker at a time, in order (the spread over
// workers is tested with several channels in cmd/instant).
func TestTwoWorkers(t *testing.T) {
	const n = 2000
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			s := newStack(t)
			w1 := s.startBridge(t, bridge.Config{Mode: mode, BatchSize: 20})
			w2 := s.startBridge(t, bridge.Config{Mode: mode, BatchSize: 20})
			sub := s.cent.Subscribe(t, "alice", "public")
			for i := range n {
				publish(t, s.nc, "instant.publish.public", fmt.Sprintf(`{"data":%d}`, i), nil)
			}
			got := sub.Collect(t, n, 30*time.Second)
			seen := map[int]bool{}
			for _, r := range got {
				var p struct{ Data int }
				if err := json.Unmarshal(r.Data, &p); err != nil {
					t.Fatal(err)
				}
				if seen[p.Data] {
					t.Errorf("envelope %d relayed twice", p.Data)
				}
				seen[p.Data] = true
			}
			sub.Quiet(t, 300*time.Millisecond)
			a, b := w1.relayed(), w2.relayed()
			// A partition handed over mid-burst is resent from its last ack;
			// Centrifugo drops the repeats by idempotency key.
			if a+b < n || mode == bridge.ModeCore && (a+b != n || a == 0 || b == 0) {
				t.Errorf("workers relayed %d and %d, want %d in all (core mode: exactly, both > 0)", a, b, n)
			}
			if mode == bridge.ModeJetStream {
				stacktest.AssertSequence(t, sub.History(t, "public"), n)
			}
		})
	}
}
