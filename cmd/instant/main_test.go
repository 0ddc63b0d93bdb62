package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

// instantBin is the command built once for the tests that run it as a
// separate process (signals, exit status).
var instantBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "instant-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	instantBin = filepath.Join(dir, "instant")
	if out, err := exec.Command("go", "build", "-o", instantBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building instant: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the command in this process with the given environment and
// returns its exit status, stdout and stderr.
func run(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	return runWithStdin(t, environ, "", args...)
}

// runWithStdin is run with stdin holding input.
func runWithStdin(t *testing.T, environ map[string]string, input string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{
		LookupEnv: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		Stdin:     strings.NewReader(input),
		Stdout:    &stdout,
		Stderr:    &stderr,
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code := exitCode(Run(ctx, args, env), &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageAndConfigErrors(t *testing.T) {
	base := map[string]string{"CENTRIFUGO_API_KEY": "k", "NATS_URL": "nats://127.0.0.1:1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		code    int
		mention string
	}{
		{"no command", base, nil, 2, "no command"},
		{"unknown command", base, []string{"frobnicate"}, 2, "frobnicate"},
		{"missing API key", map[string]string{}, []string{"bridge"}, 2, "CENTRIFUGO_API_KEY"},
		{"bad batch size", with("INSTANT_BATCH_SIZE", "lots"), []string{"bridge"}, 2, "INSTANT_BATCH_SIZE"},
		{"bad mode", with("INSTANT_MODE", "push"), []string{"bridge"}, 2, "INSTANT_MODE"},
		{"bad encoding", with("INSTANT_PAYLOAD_ENCODING", "xml"), []string{"bridge"}, 2, "INSTANT_PAYLOAD_ENCODING"},
		{"bad timeout", with("INSTANT_SHUTDOWN_TIMEOUT", "10"), []string{"bridge"}, 2, "INSTANT_SHUTDOWN_TIMEOUT"},
		{"bad subject", with("INSTANT_SUBJECT", "a.>"), []string{"bridge"}, 2, "INSTANT_SUBJECT"},
		{"bad host", with("CENTRIFUGO_HOST", "localhost"), []string{"bridge"}, 2, "CENTRIFUGO_HOST"},
		{"bad port", with("CENTRIFUGO_PORT", "-1"), []string{"bridge"}, 2, "CENTRIFUGO_PORT"},
		{"port out of range", with("CENTRIFUGO_PORT", "70000"), []string{"bridge"}, 2, "CENTRIFUGO_PORT"},
		{"too many replicas", with("INSTANT_REPLICAS", "6"), []string{"channels", "list"}, 2, "INSTANT_REPLICAS"},
		{"overlapping subjects", with("INSTANT_DEAD_SUBJECT", "instant.publish.dead"), []string{"auth"}, 2, "INSTANT_DEAD_SUBJECT"},
		{"two bad settings on one line", map[string]string{"NATS_URL": "nats://127.0.0.1:1", "INSTANT_REPLICAS": "6", "INSTANT_PARTITIONS": "5000"}, []string{"channels", "list"}, 2, "INSTANT_PARTITIONS"},
		{"missing channels file", with("INSTANT_CHANNELS_FILE", "/nonexistent.yaml"), []string{"bridge"}, 2, "INSTANT_CHANNELS_FILE"},
		{"NATS unreachable", base, []string{"bridge"}, 1, "NATS_URL"},
		{"unknown flag", base, []string{"publish", "public", "hi", "--colour"}, 2, "colour"},
		{"publish without message", base, []string{"publish", "public"}, 2, "MESSAGE"},
		{"publish bad data", base, []string{"publish", "public", "--data", "{"}, 2, "--data"},
		{"publish null data", base, []string{"publish", "public", "--data", "null"}, 2, "--data"},
		{"bad secure cookies", with("INSTANT_SECURE_COOKIES", "yes"), []string{"auth"}, 2, "INSTANT_SECURE_COOKIES"},
		{"bad log level", with("INSTANT_LOG_LEVEL", "loud"), []string{"channels", "list"}, 2, "INSTANT_LOG_LEVEL"},
		{"publish bad channel", base, []string{"publish", "a.b", "hi"}, 2, "channel"},
		{"channels add without level", base, []string{"channels", "add", "x"}, 2, "--level"},
		{"channels add bad level", base, []string{"channels", "add", "x", "--level", "root"}, 2, "level"},
		{"version", base, []string{"version"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.mention != "" && !strings.Contains(stderr, tt.mention) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.mention)
			}
			if tt.code != 0 && strings.Count(strings.TrimSpace(lastLine(stderr)), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// stack is NATS, Centrifugo and the settings to reach them.
type stack struct {
	env  map[string]string
	nc   *nats.Conn
	cent *stacktest.Centrifugo
}

func newStack(t *testing.T) *stack {
	t.Helper()
	srv := stacktest.NATS(t)
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	nc := stacktest.Connect(t, srv.ClientURL())
	s := &stack{nc: nc, cent: cent, env: map[string]string{
		"NATS_URL":             srv.ClientURL(),
		"CENTRIFUGO_HOST":      "http://127.0.0.1",
		"CENTRIFUGO_PORT":      fmt.Sprint(cent.Port),
		"CENTRIFUGO_API_KEY":   cent.APIKey,
		"INSTANT_METRICS_ADDR": "127.0.0.1:0",
		// Auth's metrics port; tests that look at it set a free one.
		"INSTANT_AUTH_METRICS_ADDR": "",
	}}
	for _, args := range [][]string{
		{"channels", "add", "public", "--level", "public"},
		{"channels", "add", "users", "--level", "users"},
	} {
		if code, out, errOut := run(t, s.env, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
		}
	}
	return s
}

// startBridge starts `instant bridge` as a separate process.
func (s *stack) startBridge(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(instantBin, "bridge")
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // also waits for the log copy; fails harmlessly if already waited
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs.String())
		}
	})
	return cmd
}

func (s *stack) publishN(t *testing.T, channel string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.nc.Publish("instant.publish."+channel, fmt.Appendf(nil, `{"data":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestChannelsCommands(t *testing.T) {
	s := newStack(t)
	file := filepath.Join(t.TempDir(), "channels.yaml")
	if err := os.WriteFile(file, []byte("- name: staff\n  level: staff\n- name: news\n  level: public\n  active: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"channels", "add", "group1", "--level", "groups", "--groups", "g1,g2"}, 0, "$group1"},
		{[]string{"channels", "import", file}, 0, "2 added"},
		{[]string{"channels", "list"}, 0, "$group1  groups  true    g1,g2"},
		{[]string{"channels", "rm", "$group1"}, 0, "removed"},
		{[]string{"channels", "rm", "$group1"}, 1, ""},
	}
	for _, st := range steps {
		code, out, errOut := run(t, s.env, st.args...)
		if code != st.code || !strings.Contains(out, st.out) {
			t.Errorf("%v: exit %d, output %q %q; want exit %d and %q", st.args, code, out, errOut, st.code, st.out)
		}
	}
	_, out, _ := run(t, s.env, "channels", "list", "--json")
	var list []struct {
		Name, Level string
		Active      bool
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json printed %q: %v", out, err)
	}
	want := "[{$staff staff true} {$users users true} {news public false} {public public true}]"
	if got := fmt.Sprint(list); got != want {
		t.Errorf("list --json: got %s, want %s", got, want)
	}
}

func TestPublishCommand(t *testing.T) {
	s := newStack(t)
	s.startBridge(t)
	sub := s.cent.Subscribe(t, "alice", "public")
	stacktest.WaitBridge(t, s.nc)

	code, out, errOut := run(t, s.env, "publish", "public", "hello", "--event-class", "important", "--data", `{"n":1}`)
	if code != 0 || !strings.Contains(out, "stored in INSTANT") {
		t.Fatalf("publish: exit %d, %q %q", code, out, errOut)
	}
	r := sub.Next(t, 10*time.Second)
	var p map[string]any
	if err := json.Unmarshal(r.Data, &p); err != nil || p["message"] != "hello" || p["event_class"] != "important" {
		t.Errorf("received %s", r.Data)
	}

	code, out, _ = run(t, s.env, "publish", "public", "waited", "--wait")
	if code != 0 || !strings.Contains(out, `"ok":true`) {
		t.Errorf("publish --wait: exit %d, %q", code, out)
	}
	sub.Next(t, 10*time.Second)

	code, out, errOut = run(t, s.env, "publish", "nowhere", "x", "--wait")
	if code != 1 || !strings.Contains(out, "unknown_channel") || !strings.Contains(errOut, "unknown_channel") {
		t.Errorf("publish --wait to an unknown channel: exit %d, %q %q", code, out, errOut)
	}
}

// TestBridgeKilledNothingLost kills the bridge (SIGKILL) in the middle of
// 3000 envelopes and starts another: Centrifugo's history ends with all
// of them, in order, each once (redelivered envelopes carry their id as
// Centrifugo's idempotency key).
func TestBridgeKilledNothingLost(t *testing.T) {
	const n = 3000
	s := newStack(t)
	sub := s.cent.Subscribe(t, "alice", "public")
	first := s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	s.publishN(t, "public", 0, n/2)
	sub.Collect(t, 100, 30*time.Second)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	s.publishN(t, "public", n/2, n)
	s.startBridge(t)
	assertAllRelayed(t, sub, n)
}

// TestBridgeSIGTERM stops the bridge during a burst: it exits 0, and every
// envelope gone from the stream (acked, then purged on stop) reached
// Centrifugo.
func TestBridgeSIGTERM(t *testing.T) {
	const n = 5000
	s := newStack(t)
	sub := s.cent.Subscribe(t, "alice", "public")
	bridge := s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	s.publishN(t, "public", 0, n)
	sub.Collect(t, 50, 30*time.Second)
	if err := bridge.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := bridge.Wait(); err != nil {
		t.Fatalf("bridge exit after SIGTERM: %v, want status 0", err)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), "INSTANT")
	if err != nil {
		t.Fatal(err)
	}
	// The stream stores core publications asynchronously: count what it
	// holds once it has stored all n, so that no envelope still queued
	// for storage counts as acked.
	var info *jetstream.StreamInfo
	stacktest.WaitFor(t, 30*time.Second, "the stream stores every envelope", func() bool {
		if info, err = stream.Info(t.Context()); err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq >= n
	})
	remaining := int(info.State.Msgs)
	relayed := stacktest.Distinct(t, sub.History(t, "public"))
	if acked := n - remaining; len(relayed) < acked {
		t.Errorf("%d envelopes acked but only %d reached Centrifugo", acked, len(relayed))
	}
	t.Logf("stopped with %d relayed, %d left in the stream", len(relayed), remaining)

	s.startBridge(t)
	assertAllRelayed(t, sub, n)
}

// assertAllRelayed waits until the history of "public" holds n distinct
// publications and checks that it holds 0…n-1 in order, each once: no
// duplicates in history, not only at the client.
func assertAllRelayed(t *testing.T, sub *stacktest.Subscriber, n int) {
	t.Helper()
	var all []stacktest.Received
	stacktest.WaitFor(t, 60*time.Second, "every envelope relayed", func() bool {
		all = sub.History(t, "public")
		return len(stacktest.Distinct(t, all)) >= n
	})
	stacktest.AssertSequence(t, all, n)
}

// get fetches url and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestBridgeMonitoring checks /healthz, /readyz and /metrics of a running
// `instant bridge`.
func TestBridgeMonitoring(t *testing.T) {
	s := newStack(t)
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	s.env["INSTANT_METRICS_ADDR"] = addr
	s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	fetch := func(path string) (int, string) { return get(t, "http://"+addr+path) }
	if code, _ := fetch("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", code)
	}
	if code, body := fetch("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s, want 200", code, body)
	}
	s.publishN(t, "public", 0, 3)
	s.publishN(t, "nowhere", 0, 2)
	stacktest.WaitFor(t, 10*time.Second, "the metrics count them", func() bool {
		_, body := fetch("/metrics")
		return strings.Contains(body, "instant_bridge_relayed_total 3") &&
			strings.Contains(body, `instant_bridge_rejected_total{code="unknown_channel"} 2`)
	})
	s.cent.Stop(t)
	if code, body := fetch("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "centrifugo") {
		t.Errorf("/readyz with Centrifugo stopped: %d %q, want 503 naming centrifugo", code, body)
	}
}

// TestServeAndUsers runs `instant serve` (bridge and auth in one process),
// adds a user with `instant users add --password-stdin`, logs in over HTTP
// and checks the channels and tokens the user gets.
func TestServeAndUsers(t *testing.T) {
	s := newStack(t)
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	s.env["INSTANT_AUTH_ADDR"] = addr
	s.env["CENTRIFUGO_HMAC_KEY"] = s.cent.HMACKey
	if code, _, errOut := runWithStdin(t, s.env, "short\n", "users", "add", "bob", "--password-stdin"); code != 2 || !strings.Contains(errOut, "password") {
		t.Errorf("users add with a short password: exit %d, %q; want 2 naming the password", code, errOut)
	}
	if code, out, errOut := runWithStdin(t, s.env, "correct horse\n", "users", "add", "bob", "--groups", "g1", "--password-stdin"); code != 0 {
		t.Fatalf("users add: exit %d %s %s", code, out, errOut)
	}
	if _, out, _ := run(t, s.env, "users", "list"); !strings.Contains(out, "bob") || strings.Contains(out, "horse") {
		t.Errorf("users list: %q", out)
	}
	if code, _, errOut := run(t, s.env, "users", "add", "eve"); code != 2 || !strings.Contains(errOut, "--password-stdin") {
		t.Errorf("users add without a terminal: exit %d %q", code, errOut)
	}
	cmd := exec.Command(instantBin, "serve")
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	stacktest.WaitBridge(t, s.nc)
	login := func(password string) *http.Response {
		t.Helper()
		var resp *http.Response
		stacktest.WaitFor(t, 10*time.Second, "a login answer", func() bool {
			r, err := http.Post("http://"+addr+"/instant/login/", "application/json",
				strings.NewReader(`{"username":"bob","password":"`+password+`"}`))
			if err != nil {
				return false
			}
			resp = r
			return true
		})
		return resp
	}
	if resp := login("wrong password"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login with a wrong password: %d, want 403", resp.StatusCode)
	}
	resp := login("correct horse")
	defer resp.Body.Close()
	var body struct {
		CSRF     string `json:"csrf_token"`
		WSToken  string `json:"ws_token"`
		Channels []struct{ Name, Level, Token string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	var names []string
	for _, c := range body.Channels {
		names = append(names, c.Name)
		if err := s.cent.TrySubscribe(t, "bob", c.Name, c.Token); err != nil {
			t.Errorf("subscribing to %s with the issued token: %v", c.Name, err)
		}
	}
	if got := strings.Join(names, ","); got != "$users,public" && got != "public,$users" {
		t.Errorf("bob sees %s, want public and $users", got)
	}
	if body.WSToken == "" || body.CSRF == "" {
		t.Errorf("login answer lacks ws_token or csrf_token: %+v", body)
	}
}

// TestHelp asks every command and subcommand for help: its usage on
// stdout, exit 0, nothing on stderr, and no connection attempted (NATS_URL
// points nowhere).
func TestHelp(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	tests := []struct {
		args []string
		want []string // on stdout
	}{
		{[]string{"publish", "--help"}, []string{"instant publish CHANNEL", "--event-class", "--wait"}},
		{[]string{"publish", "public", "-h"}, []string{"instant publish CHANNEL", "--data"}},
		{[]string{"init", "-h"}, []string{"instant init [DIR]", "--origins", "default 8000"}},
		{[]string{"dev", "--help"}, []string{"instant dev", "--nats-port", "--centrifugo"}},
		{[]string{"bridge", "--help"}, []string{"instant bridge"}},
		{[]string{"auth", "-h"}, []string{"instant auth"}},
		{[]string{"serve", "--help"}, []string{"instant serve"}},
		{[]string{"version", "--help"}, []string{"instant version"}},
		{[]string{"channels", "--help"}, []string{"instant channels add", "instant channels rm", "instant channels list", "instant channels import"}},
		{[]string{"channels", "-h"}, []string{"instant channels add", "instant channels import"}},
		{[]string{"channels", "add", "--help"}, []string{"instant channels add NAME", "--level", "--inactive"}},
		{[]string{"channels", "rm", "-h"}, []string{"instant channels rm NAME"}},
		{[]string{"channels", "list", "--help"}, []string{"instant channels list", "--json"}},
		{[]string{"channels", "import", "-h"}, []string{"instant channels import FILE", "--replace"}},
		{[]string{"users", "--help"}, []string{"instant users add", "instant users rm", "instant users list", "instant users passwd"}},
		{[]string{"users", "add", "-h"}, []string{"instant users add NAME", "--groups", "--password-stdin"}},
		{[]string{"users", "rm", "--help"}, []string{"instant users rm NAME"}},
		{[]string{"users", "list", "-h"}, []string{"instant users list", "--json"}},
		{[]string{"users", "passwd", "--help"}, []string{"instant users passwd NAME", "--password-stdin"}},
		{[]string{"help", "publish"}, []string{"instant publish CHANNEL", "--bucket"}},
		{[]string{"help", "channels", "add"}, []string{"instant channels add NAME", "--groups"}},
		{[]string{"help"}, []string{"instant publish", "instant channels add", "instant users passwd"}},
		{[]string{"--help"}, []string{"instant publish", "instant help"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, env, tt.args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit status %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout does not mention %q:\n%s", want, stdout)
				}
			}
			// Only the command asked about (and its subcommands).
			if len(tt.args) > 1 && tt.args[0] != "help" && strings.Contains(stdout, "instant bridge") != (tt.args[0] == "bridge") {
				t.Errorf("the help of %v shows other commands:\n%s", tt.args, stdout)
			}
		})
	}
	// Help of something that does not exist is still a usage error.
	for _, args := range [][]string{{"help", "frobnicate"}, {"channels", "frobnicate", "--help"}} {
		if code, _, stderr := run(t, env, args...); code != 2 || !strings.Contains(stderr, "frobnicate") {
			t.Errorf("%v: exit status %d, stderr %q; want 2 naming the command", args, code, stderr)
		}
	}
}

// TestVersion checks that `instant --version` is `instant version`, in the
// built binary too.
func TestVersion(t *testing.T) {
	_, want, _ := run(t, nil, "version")
	if !strings.HasPrefix(want, "instant ") {
		t.Fatalf("instant version printed %q", want)
	}
	for _, flag := range []string{"--version", "-version"} {
		if code, got, stderr := run(t, nil, flag); code != 0 || got != want {
			t.Errorf("instant %s: exit status %d, stdout %q, stderr %q; want 0 and %q", flag, code, got, stderr, want)
		}
	}
	out, err := exec.Command(instantBin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "instant ") {
		t.Errorf("%s --version: %v, %q", instantBin, err, out)
	}
}

// TestBridgePartitionCountMismatch: a worker asking for another partition
// count than the stream's exits 2 with one line saying what to do.
func TestBridgePartitionCountMismatch(t *testing.T) {
	s := newStack(t)
	s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	env := map[string]string{"INSTANT_PARTITIONS": "8"}
	for k, v := range s.env {
		env[k] = v
	}
	code, _, stderr := run(t, env, "bridge")
	if last := lastLine(stderr); code != 2 || !strings.HasPrefix(last, "instant: ") || !strings.Contains(last, "INSTANT_PARTITIONS") {
		t.Errorf("exit %d, stderr %q; want 2 and a last line naming INSTANT_PARTITIONS", code, stderr)
	}
}

// TestWaitsForJetStream starts `instant bridge` and `instant auth` on a
// 3-node cluster (deploy/nats) with two nodes down, so JetStream has no
// leader: neither exits, both log that they retry, and once the nodes are
// back the bridge opens the registry, creates its streams and joins the
// workers, and auth opens its buckets and serves; SIGTERM then stops each
// with status 0.
func TestWaitsForJetStream(t *testing.T) {
	c := stacktest.StartNATSCluster(t)
	env := map[string]string{}
	for _, kv := range c.Env(t, "admin") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	// The cluster just started may not have elected its JetStream
	// leader yet: the admin creates the buckets once it has (auth may
	// not create them).
	admin, err := nats.Connect(c.URL(t, "admin", 0), c.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, 2*time.Minute, "the registry bucket created", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := registry.Open(ctx, js, "")
		return err == nil
	})
	if code, out, errOut := run(t, env, "channels", "add", "public", "--level", "public"); code != 0 {
		t.Fatalf("channels add: exit %d: %s%s", code, out, errOut)
	}
	if code, out, errOut := runWithStdin(t, env, "correct horse\n", "users", "add", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("users add: exit %d: %s%s", code, out, errOut)
	}
	for _, n := range c.Nodes[1:] {
		n.Kill()
	}
	centrifugo := []string{"CENTRIFUGO_API_KEY=k", "CENTRIFUGO_HOST=http://127.0.0.1", "CENTRIFUGO_PORT=1"}
	procs := []*waiting{
		startWaiting(t, "bridge", "joining the workers", append(c.Env(t, "bridge"), append(centrifugo,
			"INSTANT_METRICS_ADDR=")...)),
		startWaiting(t, "auth", "INSTANT_AUTH_ADDR", append(c.Env(t, "auth"), append(centrifugo,
			"CENTRIFUGO_HMAC_KEY="+strings.Repeat("h", 32), "INSTANT_AUTH_ADDR=127.0.0.1:0", "INSTANT_AUTH_METRICS_ADDR=")...)),
	}
	for _, p := range procs {
		p.waitLog(t, "JetStream is not ready")
	}
	for _, n := range c.Nodes[1:] {
		n.Start(t)
	}
	for _, p := range procs {
		p.waitLog(t, p.ready)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("instant %s: exit after SIGTERM: %v, want status 0", p.name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("instant %s did not exit within a minute of SIGTERM", p.name)
		}
	}
}

// waiting is an instant command of TestWaitsForJetStream.
type waiting struct {
	name, ready string // ready: what it logs once it works
	cmd         *exec.Cmd
	logs        *stacktest.Buffer
	exited      chan error
}

func startWaiting(t *testing.T, name, ready string, env []string) *waiting {
	t.Helper()
	p := &waiting{name: name, ready: ready, cmd: exec.Command(instantBin, name), logs: &stacktest.Buffer{}, exited: make(chan error, 1)}
	p.cmd.Env = env
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("instant %s log:\n%s", name, p.logs.String())
		}
	})
	return p
}

// waitLog waits until p logged what, failing if it exits first.
func (p *waiting) waitLog(t *testing.T, what string) {
	t.Helper()
	stacktest.WaitFor(t, 2*time.Minute, "instant "+p.name+" logging "+what, func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("instant %s exited: %v", p.name, err)
		default:
		}
		return strings.Contains(p.logs.String(), what)
	})
}
