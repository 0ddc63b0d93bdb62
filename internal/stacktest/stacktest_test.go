package stacktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const wait = 10 * time.Second

func TestRepoRootAndBinary(t *testing.T) {
	root := RepoRoot(t)
	if !strings.HasSuffix(Binary(t, "centrifugo"), "/bin/centrifugo") {
		t.Errorf("Binary(centrifugo) is not under bin/")
	}
	if got := Binary(t, "nats"); got != root+"/bin/nats" {
		t.Errorf("Binary(nats) = %q, want %q", got, root+"/bin/nats")
	}
}

func TestCentrifugoConfigPassesCheckconfig(t *testing.T) {
	c := StartCentrifugo(t, CentrifugoOptions{
		Namespaces: []string{"ns", "other"},
		Extra: map[string]any{
			"client": map[string]any{"history_max_publication_limit": 1000},
			// The shape a benchmark uses for Centrifugo's own consumer
			// (disabled here: nothing to consume from).
			"consumers": []any{map[string]any{
				"name":    "bench",
				"enabled": false,
				"type":    "nats_jetstream",
				"nats_jetstream": map[string]any{
					"url":                   "nats://127.0.0.1:4222",
					"stream_name":           "BENCH",
					"subjects":              []any{"bench.>"},
					"durable_consumer_name": "centrifugo",
					"publication_data_mode": map[string]any{"enabled": true, "channels_header": "Centrifugo-Channels"},
				},
			}},
		},
	})
	out, err := exec.Command(Binary(t, "centrifugo"), "checkconfig", "--strict", "--config", c.ConfigPath).CombinedOutput()
	if err != nil {
		t.Fatalf("checkconfig --strict: %v\n%s", err, out)
	}

	var cfg map[string]any
	data, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	client := cfg["client"].(map[string]any)
	if client["history_max_publication_limit"] != float64(1000) {
		t.Errorf("Extra not merged: client = %v", client)
	}
	if client["token"] == nil || client["allowed_origins"] == nil {
		t.Errorf("merging Extra dropped generated client keys: client = %v", client)
	}
	if len(cfg["channel"].(map[string]any)["namespaces"].([]any)) != 2 {
		t.Errorf("namespaces = %v, want ns and other", cfg["channel"])
	}

	// A broken config fails the same check, so the check means something.
	bad := t.TempDir() + "/bad.json"
	if err := os.WriteFile(bad, []byte(`{"channel":{"without_namespace":{"histroy_size":1}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(Binary(t, "centrifugo"), "checkconfig", "--strict", "--config", bad).CombinedOutput(); err == nil {
		t.Errorf("checkconfig --strict passed a config with an unknown key:\n%s", out)
	}
}

// TestStack runs the stack in a subtest so that its cleanups have run when
// the leak checks look at goroutines and the Centrifugo process.
func TestStack(t *testing.T) {
	baseline := goroutines()
	var pid int
	t.Run("stack", func(t *testing.T) {
		pid = testStack(t)
	})
	if pid == 0 {
		return
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("centrifugo pid %d still exists after cleanup (kill 0: %v)", pid, err)
	}
	deadline := time.Now().Add(wait)
	for goroutines() > baseline {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: got %d after cleanup, want at most %d (before)\n%s", goroutines(), baseline, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutines counts the goroutines except centrifuge-go's per-command
// timeout watchers: sendAsync starts one for every command and it only
// ends after the client's ReadTimeout (5s), reply or not.
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "centrifuge-go.(*Client).sendAsync") {
			count++
		}
	}
	return count
}

func testStack(t *testing.T) (lastPID int) {
	ns := NATS(t)
	nc := Connect(t, ns.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream not available: %v", err)
	}

	c := StartCentrifugo(t, CentrifugoOptions{Namespaces: []string{"ns"}})
	if want := fmt.Sprintf("http://127.0.0.1:%d", c.Port); c.URL != want || c.APIURL != want+"/api" ||
		c.WSURL != fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", c.Port) {
		t.Fatalf("URLs = %q %q %q for port %d", c.URL, c.APIURL, c.WSURL, c.Port)
	}
	alice := c.Subscribe(t, "alice", "public", "$users")

	// Live delivery of publications made through the plain HTTP API.
	postPublish(t, c, "public", `{"n":1,"text":"for everyone"}`)
	postPublish(t, c, "$users", `{"n":2,"text":"for users"}`)
	got := alice.Collect(t, 2, wait)
	want := []Received{
		{Channel: "public", Data: []byte(`{"n":1,"text":"for everyone"}`), Offset: 1},
		{Channel: "$users", Data: []byte(`{"n":2,"text":"for users"}`), Offset: 1},
	}
	assertReceived(t, got, want)
	alice.Quiet(t, 200*time.Millisecond)

	// History holds what was published, read independently of delivery.
	assertReceived(t, alice.History(t, "public"), want[:1])
	assertReceived(t, alice.History(t, "$users"), want[1:])

	t.Run("history pages past the per-call limit", func(t *testing.T) {
		bob := c.Subscribe(t, "bob", "ns:$many")
		const n = 700 // Centrifugo returns at most 300 per history call
		for i := 1; i <= n; i++ {
			c.Publish(t, "ns:$many", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)))
		}
		live := bob.Collect(t, n, wait)
		hist := bob.History(t, "ns:$many")
		if len(hist) != n {
			t.Fatalf("history: got %d publications, want %d", len(hist), n)
		}
		for i := range n {
			wantData := fmt.Sprintf(`{"i":%d}`, i+1)
			if string(hist[i].Data) != wantData || hist[i].Offset != uint64(i+1) {
				t.Fatalf("history[%d] = %s at offset %d, want %s at %d", i, hist[i].Data, hist[i].Offset, wantData, i+1)
			}
			if string(live[i].Data) != wantData {
				t.Fatalf("live[%d] = %s, want %s", i, live[i].Data, wantData)
			}
		}
	})

	t.Run("recovery after a reconnect", func(t *testing.T) {
		carol := c.Subscribe(t, "carol", "public")
		if err := carol.client.Disconnect(); err != nil {
			t.Fatal(err)
		}
		first := c.Publish(t, "public", json.RawMessage(`"missed 1"`))
		c.Publish(t, "public", json.RawMessage(`"missed 2"`))
		if err := carol.client.Connect(); err != nil {
			t.Fatal(err)
		}
		carol.WaitSubscribed(t, wait)
		assertReceived(t, carol.Collect(t, 2, wait), []Received{
			{Channel: "public", Data: []byte(`"missed 1"`), Offset: first},
			{Channel: "public", Data: []byte(`"missed 2"`), Offset: first + 1},
		})
		// alice was connected all along and got them live.
		alice.Collect(t, 2, wait)
	})

	t.Run("subscription permissions", func(t *testing.T) {
		forged := func(user, channel string) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": user, "channel": channel, "exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString([]byte("not the key"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		tests := []struct {
			name    string
			channel string
			token   string
			want    *SubscribeError // nil: accepted
		}{
			{"own token for public", "public", c.SubToken(t, "alice", "public"), nil},
			{"own token for namespaced private", "ns:$chan", c.SubToken(t, "alice", "ns:$chan"), nil},
			{"no token for public", "public", "", &SubscribeError{Code: 103}},
			{"no token for private", "$staff", "", &SubscribeError{Code: 103}},
			{"no token for namespaced private", "ns:$chan", "", &SubscribeError{Code: 103}},
			{"token signed with another key", "$staff", forged("alice", "$staff"), &SubscribeError{Code: 103}},
			{"token of another user", "$staff", c.SubToken(t, "bob", "$staff"), &SubscribeError{Code: 3500, Disconnect: true}},
			{"token for another channel", "$staff", c.SubToken(t, "alice", "$users"), &SubscribeError{Code: 3500, Disconnect: true}},
			{"unknown namespace", "nope:x", c.SubToken(t, "alice", "nope:x"), &SubscribeError{Code: 102}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := c.TrySubscribe(t, "alice", tt.channel, tt.token)
				if tt.want == nil {
					if err != nil {
						t.Fatalf("got %v, want accepted", err)
					}
					return
				}
				var se *SubscribeError
				if !errors.As(err, &se) {
					t.Fatalf("got %v, want refusal %d", err, tt.want.Code)
				}
				if se.Code != tt.want.Code || se.Disconnect != tt.want.Disconnect || se.Channel != tt.channel {
					t.Fatalf("got %+v, want code %d disconnect %t", se, tt.want.Code, tt.want.Disconnect)
				}
			})
		}
	})

	t.Run("server ends subscriptions", func(t *testing.T) {
		dave := c.Subscribe(t, "dave", "public", "$users")
		call(t, c, "unsubscribe", `{"user":"dave","channel":"$users"}`)
		dave.WaitUnsubscribed(t, "$users", wait)
		c.Publish(t, "public", json.RawMessage(`"still on public"`))
		c.Publish(t, "$users", json.RawMessage(`"not for dave any more"`))
		if r := dave.Next(t, wait); r.Channel != "public" {
			t.Fatalf("got a publication on %q, want public only", r.Channel)
		}
		dave.Quiet(t, 200*time.Millisecond)
		call(t, c, "disconnect", `{"user":"dave"}`)
		dave.WaitUnsubscribed(t, "public", wait)
		// alice saw both.
		alice.Collect(t, 2, wait)
	})

	// Restart on the same port: the client reconnects by itself; history
	// (memory engine) starts over.
	for _, restart := range []struct {
		name string
		stop func(testing.TB)
	}{
		{"stop", c.Stop},
		{"kill", c.Kill},
	} {
		pid, port := c.pid(), c.Port
		restart.stop(t)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s: centrifugo pid %d still exists (kill 0: %v)", restart.name, pid, err)
		}
		c.Start(t)
		if c.Port != port || c.pid() == pid || c.pid() == 0 {
			t.Fatalf("%s: after Start port %d pid %d, want port %d and a new pid", restart.name, c.Port, c.pid(), port)
		}
		alice.WaitSubscribed(t, wait)
		msg := json.RawMessage(fmt.Sprintf(`{"after":%q}`, restart.name))
		c.Publish(t, "public", msg)
		assertReceived(t, []Received{alice.Next(t, wait)}, []Received{{Channel: "public", Data: msg, Offset: 1}})
		assertReceived(t, alice.History(t, "public"), []Received{{Channel: "public", Data: msg, Offset: 1}})
	}
	alice.Quiet(t, 200*time.Millisecond)
	return c.pid()
}

// postPublish publishes through Centrifugo's v6 HTTP API with plain
// net/http, as any producer language would.
func postPublish(t *testing.T, c *Centrifugo, channel, data string) {
	t.Helper()
	body := fmt.Sprintf(`{"channel":%q,"data":%s}`, channel, data)
	req, err := http.NewRequest(http.MethodPost, c.APIURL+"/publish", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", c.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	reply, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(reply, []byte(`"result"`)) {
		t.Fatalf("publish to %q: %s %s", channel, resp.Status, reply)
	}
}

// call runs a server API method with a raw JSON body and fails on error.
func call(t *testing.T, c *Centrifugo, method, params string) {
	t.Helper()
	if err := c.call(method, json.RawMessage(params), nil); err != nil {
		t.Fatalf("%s %s: %v", method, params, err)
	}
}

func assertReceived(t *testing.T, got, want []Received) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d publications %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Channel != want[i].Channel || !bytes.Equal(got[i].Data, want[i].Data) || got[i].Offset != want[i].Offset {
			t.Errorf("publication %d: got %s %s @%d, want %s %s @%d", i,
				got[i].Channel, got[i].Data, got[i].Offset, want[i].Channel, want[i].Data, want[i].Offset)
		}
	}
}

func TestNATSWithStoreKeepsData(t *testing.T) {
	dir := t.TempDir()
	s := NATSWithStore(t, dir, -1)
	port := Port(t, s)

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "keep.it", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()
	s.WaitForShutdown()

	s2 := NATSWithStore(t, dir, port)
	if got := Port(t, s2); got != port {
		t.Fatalf("restarted on port %d, want %d", got, port)
	}
	nc2 := Connect(t, s2.ClientURL())
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js2.Stream(t.Context(), "KEEP")
	if err != nil {
		t.Fatalf("stream lost over restart: %v", err)
	}
	msg, err := stream.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatalf("message 1 lost over restart: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("message 1 after restart = %q, want hello", msg.Data)
	}
}

func TestStartOnBusyPortReportsAddrInUse(t *testing.T) {
	c := StartCentrifugo(t, CentrifugoOptions{})
	c.Stop(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := c.start(); !errors.Is(err, errAddrInUse) {
		t.Fatalf("start on a busy port: got %v, want %v", err, errAddrInUse)
	}
	if c.pid() != 0 {
		t.Fatalf("a failed start left pid %d", c.pid())
	}
	l.Close()
	c.Start(t)
}

// TestCentrifugoIsThePinnedRelease checks that bin/centrifugo is the
// version the Makefile pins, built as a release (a build without the
// version stamped says v0.0.0 and warns at every start).
func TestCentrifugoIsThePinnedRelease(t *testing.T) {
	makefile, err := os.ReadFile(RepoRoot(t) + "/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var pinned string
	for _, line := range strings.Split(string(makefile), "\n") {
		if v, ok := strings.CutPrefix(line, "CENTRIFUGO_VERSION := "); ok {
			pinned = strings.TrimSpace(v)
		}
	}
	if pinned == "" {
		t.Fatal("the Makefile pins no CENTRIFUGO_VERSION")
	}
	out, err := exec.Command(Binary(t, "centrifugo"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("centrifugo version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "Centrifugo "+pinned+" ") {
		t.Errorf("bin/centrifugo version says %q, want Centrifugo %s: run `make tools` (it rebuilds it)", strings.TrimSpace(string(out)), pinned)
	}
}
