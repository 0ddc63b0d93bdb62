package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/internal/stacktest"
)

// Users of nats/accounts.conf with their placeholder passwords.
const (
	natsAdmin    = "admin:change-me-admin"
	natsBridge   = "bridge:change-me-bridge"
	natsAuth     = "auth:change-me-auth"
	natsProducer = "producer:change-me-producer"
	natsOrders   = "orders:change-me-orders"
)

// errWait bounds the wait for a permissions violation reported by the
// server.
const errWait = 10 * time.Second

func TestNATSConfigsPassNATSServerCheck(t *testing.T) {
	bin := stacktest.Binary(t, "nats-server")
	for i := 1; i <= 3; i++ {
		file := filepath.Join("nats", fmt.Sprintf("nats-%d.conf", i))
		if out, err := exec.Command(bin, "-t", "-c", file).CombinedOutput(); err != nil {
			t.Errorf("nats-server -t -c %s: %v\n%s", file, err, out)
		}
	}

	// A typo in the accounts fails the same check, so the check means
	// something.
	dir := t.TempDir()
	copyNATSConfig(t, dir, readFile(t, "nats/cluster.conf"))
	accounts := replaceEach(t, readFile(t, "nats/accounts.conf"), 1, "jetstream: enabled", "jetstrem: enabled")
	writeFile(t, filepath.Join(dir, "accounts.conf"), accounts)
	if out, err := exec.Command(bin, "-t", "-c", filepath.Join(dir, "nats-1.conf")).CombinedOutput(); err == nil {
		t.Errorf("nats-server -t passed a config with an unknown field:\n%s", out)
	}
}

// TestNATSClusterPermissions starts the three nodes from the deploy files
// (ports and store directories rewritten to loopback and temporary
// folders), runs the real instant bridge and auth with their restricted
// users, and proves what each user may and may not do.
func TestNATSClusterPermissions(t *testing.T) {
	urls := startNATSCluster(t)
	instantBin := instantBinary(t)
	natsURL := func(userPass string) string {
		out := make([]string, len(urls))
		for i, u := range urls {
			out[i] = "nats://" + userPass + "@" + u
		}
		return strings.Join(out, ",")
	}

	// The administrator creates the KV buckets, which bridge and auth may
	// only read: docker-compose.yaml's setup does it (channel "public"),
	// then one more channel and a user.
	runComposeScript(t, "setup", natsURL(natsAdmin), instantBin)
	runInstant(t, instantBin, natsURL(natsAdmin), "", "channels", "add", "orders", "--level", "public")
	runInstant(t, instantBin, natsURL(natsAdmin), "secret-password\n", "users", "add", "alice", "--password-stdin")

	c := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	centrifugoEnv := []string{
		"CENTRIFUGO_HOST=http://127.0.0.1",
		"CENTRIFUGO_PORT=" + strconv.Itoa(c.Port),
		"CENTRIFUGO_API_KEY=" + c.APIKey,
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	startProcess(t, "instant bridge", append([]string{
		"NATS_URL=" + natsURL(natsBridge),
		"INSTANT_METRICS_ADDR=" + metricsAddr,
	}, centrifugoEnv...), instantBin, "bridge")
	authAddr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	startProcess(t, "instant auth", append([]string{
		"NATS_URL=" + natsURL(natsAuth),
		"INSTANT_AUTH_ADDR=" + authAddr,
		"INSTANT_AUTH_METRICS_ADDR=",
		"CENTRIFUGO_HMAC_KEY=" + c.HMACKey,
	}, centrifugoEnv...), instantBin, "auth")
	waitHTTP(t, "http://"+metricsAddr+"/readyz")
	waitHTTP(t, "http://"+authAddr+"/readyz")
	sub := c.Subscribe(t, "alice", "public", "orders")
	// docker-compose.yaml's replicas raises the streams to three replicas
	// once the bridge created its own, as nats/cluster.conf says.
	runComposeScript(t, "replicas", natsURL(natsAdmin), instantBin)
	waitReplicated(t, natsURL(natsAdmin), "INSTANT", "INSTANT_DEAD", "KV_instant_channels", "KV_instant_users")

	t.Run("auth reads the user store", func(t *testing.T) {
		wantLogin(t, authAddr)
	})

	t.Run("producer", func(t *testing.T) {
		p := connectAs(t, natsURL(natsProducer))
		publishJS(t, p.Conn, "instant.publish.public", `{"message":"from producer"}`)
		if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte("from producer")) || got.Channel != "public" {
			t.Errorf("subscriber got %s on %q, want the producer's message on public", got.Data, got.Channel)
		}
		wantRelayed(t, p.Conn, sub, "instant.request.public", "asking")

		p.refusedPublish(t, "instant.dead")
		p.refusedPublish(t, "$JS.API.STREAM.INFO.INSTANT")
		p.refusedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.INSTANT.instant-bridge")
		p.refusedSubscribe(t, "instant.publish.>")
		p.refusedSubscribe(t, "instant.dead")
	})

	t.Run("one-channel producer", func(t *testing.T) {
		o := connectAs(t, natsURL(natsOrders))
		publishJS(t, o.Conn, "instant.publish.orders", `{"message":"order shipped"}`)
		if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte("order shipped")) || got.Channel != "orders" {
			t.Errorf("subscriber got %s on %q, want the order on orders", got.Data, got.Channel)
		}
		o.refusedPublish(t, "instant.publish.public")
		o.refusedPublish(t, "instant.publish")
		o.refusedPublish(t, "instant.request.public")
	})

	t.Run("bridge and auth stay in their lanes", func(t *testing.T) {
		b := connectAs(t, natsURL(natsBridge))
		b.refusedPublish(t, "$JS.API.STREAM.INFO.KV_instant_users")
		b.refusedPublish(t, "$JS.API.STREAM.DELETE.INSTANT")
		// Auth's replies carry user records with password hashes: the
		// bridge, in the same account, may read neither them nor any
		// inbox but its own.
		b.refusedSubscribe(t, "_INBOX_auth.>")
		b.refusedSubscribe(t, "_INBOX.>")
		b.refusedSubscribe(t, ">")
		a := connectAs(t, natsURL(natsAuth))
		a.refusedPublish(t, "instant.publish.public")
		a.refusedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.INSTANT.instant-bridge")
		a.refusedSubscribe(t, "_INBOX_bridge.>")
		a.refusedSubscribe(t, "_INBOX.>")
	})

	// The bridge and auth above ran with these inboxes only, so they
	// still work; a fresh reply through each proves it after the checks.
	t.Run("bridge and auth still answer", func(t *testing.T) {
		p := connectAs(t, natsURL(natsProducer))
		wantRelayed(t, p.Conn, sub, "instant.request.orders", "still relaying")
		wantLogin(t, authAddr)
	})
}

// wantLogin logs alice in at the auth module on addr.
func wantLogin(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/instant/login/", "application/json",
		strings.NewReader(`{"username":"alice","password":"secret-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("login: %s, want 200 OK", resp.Status)
	}
}

// wantRelayed sends text on the request subject and wants an ok reply
// and the message at sub.
func wantRelayed(t *testing.T, nc *nats.Conn, sub *stacktest.Subscriber, subject, text string) {
	t.Helper()
	reply, err := nc.Request(subject, []byte(text), readyTimeout)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	var r struct{ OK bool }
	if err := json.Unmarshal(reply.Data, &r); err != nil || !r.OK {
		t.Errorf("request reply %s, want ok", reply.Data)
	}
	if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte(text)) {
		t.Errorf("subscriber got %s, want %q", got.Data, text)
	}
}

// startNATSCluster starts the three nodes of nats/ on loopback and
// returns their client addresses once JetStream answers on each.
func startNATSCluster(t *testing.T) []string {
	t.Helper()
	bin := stacktest.Binary(t, "nats-server")
	type ports struct{ client, route, http int }
	nodes := make([]ports, 3)
	for i := range nodes {
		nodes[i] = ports{stacktest.FreePort(t), stacktest.FreePort(t), stacktest.FreePort(t)}
	}
	cluster := readFile(t, "nats/cluster.conf")
	var urls []string
	for i, n := range nodes {
		dir := t.TempDir()
		conf := replaceEach(t, cluster, 1,
			"listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", n.client),
			"http: 0.0.0.0:8222", fmt.Sprintf("http: 127.0.0.1:%d", n.http),
			"listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", n.route),
			`store_dir: "/var/lib/nats/jetstream"`, fmt.Sprintf("store_dir: %q", filepath.Join(dir, "jetstream")),
		)
		for j, m := range nodes {
			conf = replaceEach(t, conf, 1, fmt.Sprintf("@nats-%d:6222", j+1), fmt.Sprintf("@127.0.0.1:%d", m.route))
		}
		copyNATSConfig(t, dir, conf)
		startProcess(t, fmt.Sprintf("nats-%d", i+1), nil, bin, "-c", filepath.Join(dir, fmt.Sprintf("nats-%d.conf", i+1)))
		urls = append(urls, fmt.Sprintf("127.0.0.1:%d", n.client))
	}
	for _, n := range nodes {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.http))
	}
	return urls
}

// copyNATSConfig writes the three node files and accounts.conf of nats/
// and cluster (the content of cluster.conf) into dir.
func copyNATSConfig(t *testing.T, dir, cluster string) {
	t.Helper()
	for _, name := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf", "accounts.conf"} {
		writeFile(t, filepath.Join(dir, name), readFile(t, filepath.Join("nats", name)))
	}
	writeFile(t, filepath.Join(dir, "cluster.conf"), cluster)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runInstant runs an instant command with NATS_URL and stdin, failing
// the test unless it exits 0.
func runInstant(t *testing.T, bin, natsURL, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"NATS_URL=" + natsURL}
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("instant %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitReplicated waits until each stream has a leader and two current
// followers (about ten seconds here): before that a publication may go
// unacknowledged.
func waitReplicated(t *testing.T, url string, streams ...string) {
	t.Helper()
	js, err := jetstream.New(stacktest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", name, r)
		}
		for !replicated(t, ctx, s) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// runComposeScript runs the shell script of a one-shot service of
// docker-compose.yaml (entrypoint sh -c) with NATS_URL, the instant
// binary built for this run and bin/nats, failing the test unless it
// exits 0. It returns the script's output.
func runComposeScript(t *testing.T, service, natsURL, instantBin string) string {
	t.Helper()
	s := loadCompose(t).Services[service]
	if len(s.Command) != 1 {
		t.Fatalf("%s: command %q, want one shell script", service, s.Command)
	}
	// Compose turns $$ into $ before the shell sees it.
	script := strings.ReplaceAll(s.Command[0], "$$", "$")
	bin := t.TempDir()
	for name, target := range map[string]string{"instant": instantBin, "nats": stacktest.Binary(t, "nats")} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = []string{
		"PATH=" + bin + string(filepath.ListSeparator) + os.Getenv("PATH"),
		"HOME=" + t.TempDir(), // no nats CLI context of this machine
		"NATS_URL=" + natsURL,
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s's script: %v\n%s", service, err, out)
	}
	return string(out)
}

// TestComposeSetupKeepsChannels runs the setup script of
// docker-compose.yaml twice: the first run adds the channel "public", the
// second keeps the operator's change to it.
func TestComposeSetupKeepsChannels(t *testing.T) {
	url := stacktest.NATS(t).ClientURL()
	instantBin := instantBinary(t)
	runComposeScript(t, "setup", url, instantBin)
	if got := listChannels(t, instantBin, url); len(got) != 1 || got[0].Name != "public" || !got[0].Active {
		t.Fatalf("after setup: channels %+v, want public, active", got)
	}
	runInstant(t, instantBin, url, "", "channels", "add", "public", "--level", "public", "--groups", "staff", "--inactive")
	runComposeScript(t, "setup", url, instantBin)
	if got := listChannels(t, instantBin, url); len(got) != 1 || got[0].Name != "public" || got[0].Active || !slices.Equal(got[0].Groups, []string{"staff"}) {
		t.Errorf("after the second setup: channels %+v, want public as the operator left it (inactive, groups staff)", got)
	}
}

// listChannels returns the output of `instant channels list --json`.
func listChannels(t *testing.T, bin, natsURL string) []struct {
	Name   string
	Active bool
	Groups []string
} {
	t.Helper()
	cmd := exec.Command(bin, "channels", "list", "--json")
	cmd.Env = []string{"NATS_URL=" + natsURL}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("instant channels list: %v", err)
	}
	var chs []struct {
		Name   string
		Active bool
		Groups []string
	}
	if err := json.Unmarshal(out, &chs); err != nil {
		t.Fatalf("instant channels list --json: %v\n%s", err, out)
	}
	return chs
}

// replicated reports whether s has a leader and two current followers.
func replicated(t *testing.T, ctx context.Context, s jetstream.Stream) bool {
	t.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", s.CachedInfo().Config.Name, err)
	}
	c := info.Cluster
	return c != nil && c.Leader != "" && len(c.Replicas) == 2 && c.Replicas[0].Current && c.Replicas[1].Current
}

// watchedConn is a NATS connection that reports the server's asynchronous
// errors (permissions violations) on errs.
type watchedConn struct {
	*nats.Conn
	errs chan error
}

func connectAs(t *testing.T, url string) *watchedConn {
	t.Helper()
	c := &watchedConn{errs: make(chan error, 16)}
	nc, err := nats.Connect(url, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// publishJS publishes body on subject and waits for JetStream's storage
// ack: the stream INSTANT captured it.
func publishJS(t *testing.T, nc *nats.Conn, subject, body string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, subject, []byte(body))
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	if ack.Stream != "INSTANT" {
		t.Errorf("publish to %s stored in stream %q, want INSTANT", subject, ack.Stream)
	}
}

// refusedPublish publishes on subject and fails the test unless the
// server reports a permissions violation for it.
func (c *watchedConn) refusedPublish(t *testing.T, subject string) {
	t.Helper()
	if err := c.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	c.wantViolation(t, fmt.Sprintf("publish to %q", subject))
}

// refusedSubscribe subscribes to subject and fails the test unless the
// server reports a permissions violation for it.
func (c *watchedConn) refusedSubscribe(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c.wantViolation(t, fmt.Sprintf("subscription to %q", subject))
}

// wantViolation waits for the permissions violation naming what.
func (c *watchedConn) wantViolation(t *testing.T, what string) {
	t.Helper()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(errWait)
	defer timer.Stop()
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(what)) {
				return
			}
			t.Logf("other error while waiting for the refusal of %s: %v", what, err)
		case <-timer.C:
			t.Fatalf("%s was not refused within %v", what, errWait)
		}
	}
}
