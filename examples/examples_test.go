// Package examples_test runs every example producer against a real stack
// (NATS with JetStream, Centrifugo, the bridge) and checks what a
// websocket subscriber receives.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// Timeouts: commandTimeout stops an example that hangs, receiveTimeout
// bounds the wait for its publications.
const (
	commandTimeout = 2 * time.Minute
	receiveTimeout = 30 * time.Second
)

// example is one example producer.
type example struct {
	name string
	// command returns the command line that runs the example (the
	// channel and message arguments follow), building what it needs into
	// bin, which is first on the example's PATH; it skips the test when a
	// runtime is missing.
	command func(t *testing.T, root, bin string) []string
	// want is what a subscriber of channel receives, in any order: an ID
	// is the prefix the publication id must have ("" for any).
	want func(channel, message string) []instant.Publication
	// stdout lists what the example prints on success.
	stdout func(channel string) []string
}

var examples = []example{
	{
		name: "shell",
		command: func(t *testing.T, root, bin string) []string {
			goBuild(t, root, "./cmd/instant", filepath.Join(bin, "instant"))
			return []string{"sh", filepath.Join(root, "examples", "shell", "publish.sh")}
		},
		want: func(channel, message string) []instant.Publication {
			return []instant.Publication{
				{Channel: channel, Site: "Site", Message: message},
				{Channel: channel, Site: "Site", Data: json.RawMessage(`{"from":"shell"}`), EventClass: "info", Bucket: "examples"},
				{Channel: channel, Site: "Site", Message: message, EventClass: "important", Bucket: "examples"},
			}
		},
		stdout: func(channel string) []string {
			return []string{`"ok":true,"id":`, `"channel":"` + channel + `"`}
		},
	},
	{
		name: "go",
		command: func(t *testing.T, root, bin string) []string {
			out := filepath.Join(bin, "go-example")
			goBuild(t, root, "./examples/go", out)
			return []string{out}
		},
		want:   sdkPublications("go"),
		stdout: sdkStdout,
	},
	{
		name: "node",
		command: func(t *testing.T, root, _ string) []string {
			dir := filepath.Join(root, "examples", "node")
			npmCI(t, dir)
			return []string{"node", filepath.Join(dir, "publish.mjs")}
		},
		want:   sdkPublications("node"),
		stdout: sdkStdout,
	},
	{
		name: "python",
		command: func(t *testing.T, root, _ string) []string {
			need(t, "python3")
			return []string{"python3", filepath.Join(root, "examples", "python", "publish.py")}
		},
		want:   sdkPublications("python"),
		stdout: sdkStdout,
	},
}

// sdkPublications is what the Go, Node.js and Python examples publish:
// one envelope fire-and-forget with a message id, one on the request
// subject.
func sdkPublications(lang string) func(channel, message string) []instant.Publication {
	return func(channel, message string) []instant.Publication {
		return []instant.Publication{
			{ID: "(the publication id of the Nats-Msg-Id printed)", Channel: channel, Site: "Site", Message: message,
				Data: json.RawMessage(`{"from":"` + lang + `"}`), EventClass: "info", Bucket: "examples"},
			{Channel: channel, Site: "Site", Message: message, EventClass: "important"},
		}
	}
}

// printedMsgID finds the Nats-Msg-Id an SDK example prints.
var printedMsgID = regexp.MustCompile(`\(id ([^)]+)\)`)

func sdkStdout(channel string) []string {
	return []string{"stored in INSTANT as #", "relayed to " + channel + " as "}
}

// TestExamples runs each example on a channel of its own and checks what
// the subscriber gets, then runs it on an unregistered channel (refused)
// and against a NATS server that is not there: both fail with exit status
// 1 and say why.
func TestExamples(t *testing.T) {
	root := stacktest.RepoRoot(t)
	var channels []string
	for _, ex := range examples {
		channels = append(channels, ex.name)
	}
	s := newStack(t, channels)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			argv := ex.command(t, root, s.bin)
			message := "Hello from the " + ex.name + " example test"
			code, stdout, stderr := s.run(t, s.natsURL, argv, ex.name, message)
			if code != 0 {
				t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range ex.stdout(ex.name) {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout %q lacks %q", stdout, want)
				}
			}
			want := ex.want(ex.name, message)
			if m := printedMsgID.FindStringSubmatch(stdout); m != nil {
				for i := range want {
					if want[i].ID != "" {
						want[i].ID = instant.PublicationID(ex.name, m[1])
					}
				}
			}
			assertPublications(t, s.sub.Collect(t, len(want), receiveTimeout), want)

			code, stdout, stderr = s.run(t, s.natsURL, argv, "nowhere", message)
			if code != 1 || !strings.Contains(stdout+stderr, "unknown_channel") || !strings.Contains(lastLine(stderr), "refused") {
				t.Errorf("unregistered channel: exit status %d, want 1, unknown_channel and a last line saying refused\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}

			unreachable := fmt.Sprintf("nats://127.0.0.1:%d", stacktest.FreePort(t))
			code, stdout, stderr = s.run(t, unreachable, argv, ex.name, message)
			if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
				t.Errorf("NATS unreachable: exit status %d, want 1 with one line on stderr\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
		})
	}
	if !t.Failed() {
		s.sub.Quiet(t, time.Second) // nothing more than the examples published
	}
}

// stack is NATS with JetStream, Centrifugo, the channel registry and a
// bridge, all in this process but Centrifugo, and a subscriber.
type stack struct {
	natsURL string
	sub     *stacktest.Subscriber
	bin     string // a folder for built commands, first on the examples' PATH
}

// newStack registers each channel as public and subscribes to all of them.
func newStack(t *testing.T, channels []string) *stack {
	t.Helper()
	srv := stacktest.NATS(t)
	s := &stack{natsURL: srv.ClientURL(), bin: t.TempDir()}
	cent := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	nc := stacktest.Connect(t, s.natsURL)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.Open(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	var chs []instant.Channel
	for _, name := range channels {
		chs = append(chs, instant.Channel{Name: name, Level: instant.LevelPublic, Active: true})
	}
	if _, _, _, err := store.Import(t.Context(), chs, false); err != nil {
		t.Fatal(err)
	}
	view, err := store.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	startBridge(t, nc, view, cent)
	s.sub = cent.Subscribe(t, "alice", channels...)
	return s
}

// startBridge runs a bridge with the default settings until the test
// ends, and waits until its request service answers (by then the stream
// INSTANT exists).
func startBridge(t *testing.T, nc *nats.Conn, view *registry.View, cent *stacktest.Centrifugo) {
	t.Helper()
	relay := centrifugo.New(centrifugo.Config{URL: cent.APIURL, Key: cent.APIKey})
	b, err := bridge.New(nc, view, relay, bridge.Config{}, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge: %v", err)
		}
	})
	stacktest.WaitBridge(t, nc)
}

// run runs argv with the channel and message arguments, NATS_URL set to
// natsURL and PATH holding the built commands and bin/, and returns its
// exit status and output.
func (s *stack) run(t *testing.T, natsURL string, argv []string, channel, message string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], channel, message)...)
	cmd.Env = append(os.Environ(),
		"NATS_URL="+natsURL,
		"PATH="+s.bin+string(os.PathListSeparator)+filepath.Dir(stacktest.Binary(t, "nats"))+string(os.PathListSeparator)+os.Getenv("PATH"),
		"XDG_CONFIG_HOME="+t.TempDir(), // no nats CLI context of the user
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("%s %s %q with NATS_URL=%s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(argv[len(argv)-1]), channel, message, natsURL, err, &stdout, &stderr)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("running %v: %v", argv, err)
	}
	return 0, stdout.String(), stderr.String()
}

// assertPublications checks that got holds the publications of want, in
// any order (the bridge relays a stored envelope and a request on two
// paths).
func assertPublications(t *testing.T, got []stacktest.Received, want []instant.Publication) {
	t.Helper()
	left := append([]instant.Publication(nil), want...)
	for _, r := range got {
		p := decode(t, r)
		i := indexOf(left, p)
		if i < 0 {
			pending, _ := json.Marshal(left)
			t.Errorf("unexpected publication %s on %q; still waiting for %s", r.Data, r.Channel, pending)
			continue
		}
		if p.ID == "" || (left[i].ID != "" && p.ID != left[i].ID) {
			t.Errorf("publication %s: id %q, want %q (any when empty)", r.Data, p.ID, left[i].ID)
		}
		left = append(left[:i], left[i+1:]...)
	}
}

// decode reads the publication data, refusing keys instant.Publication
// lacks.
func decode(t *testing.T, r stacktest.Received) instant.Publication {
	t.Helper()
	var p instant.Publication
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("publication %s on %q: %v", r.Data, r.Channel, err)
	}
	if p.Channel != r.Channel {
		t.Errorf("publication %s arrived on %q", r.Data, r.Channel)
	}
	return p
}

// indexOf returns the index of the publication in ps equal to p but for
// the id, or -1.
func indexOf(ps []instant.Publication, p instant.Publication) int {
	for i, w := range ps {
		if w.Channel == p.Channel && w.Site == p.Site && w.Message == p.Message && w.EventClass == p.EventClass &&
			w.Bucket == p.Bucket && bytes.Equal(compact(w.Data), compact(p.Data)) {
			return i
		}
	}
	return -1
}

func compact(data json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return data
	}
	return b.Bytes()
}

// goBuild builds the main package pkg (relative to root) into the file
// out.
func goBuild(t *testing.T, root, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// npmCI installs the Node.js example's dependencies from its lockfile
// unless they are installed already.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	need(t, "node")
	need(t, "npm")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "nats", "package.json")); err == nil {
		return
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, b)
	}
}

// need skips the test when program is not on PATH.
func need(t *testing.T, program string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		t.Skipf("%s is not installed: it runs this example", program)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}
