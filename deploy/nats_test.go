package deploy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/internal/stacktest"
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
	copyNATSConfig(t, "nats", dir, readFile(t, "nats/cluster.conf"))
	accounts := replaceEach(t, readFile(t, "nats/accounts.conf"), 1, "jetstream: enabled", "jetstrem: enabled")
	writeFile(t, filepath.Join(dir, "accounts.conf"), accounts)
	if out, err := exec.Command(bin, "-t", "-c", filepath.Join(dir, "nats-1.conf")).CombinedOutput(); err == nil {
		t.Errorf("nats-server -t passed a config with an unknown field:\n%s", out)
	}
}

// TestNATSClusterPermissions starts the three nodes from a copy of the
// deploy files with fresh secrets (secrets.sh; ports and store
// directories rewritten to loopback and temporary folders), runs the real
// instant bridge and auth with their restricted users, and proves what
// each user may and may not do. The "tls" variant turns on the TLS blocks
// of cluster.conf (clients and routes, client certificates verified)
// with a CA made here; every client gets NATS_CA, NATS_CERT and NATS_KEY,
// and bridge and auth reach Centrifugo's API over https (CENTRIFUGO_CA).
func TestNATSClusterPermissions(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testNATSCluster(t, nil) })
	t.Run("tls", func(t *testing.T) {
		files := stacktest.NewTLS(t)
		testNATSCluster(t, &files)
	})
}

func testNATSCluster(t *testing.T, tlsFiles *stacktest.TLSFiles) {
	deployDir := runSecrets(t)
	c := stacktest.StartNATSClusterWith(t, stacktest.NATSClusterOptions{Dir: filepath.Join(deployDir, "nats"), TLS: tlsFiles})
	instantBin := instantBinary(t)

	// The administrator creates the KV buckets, which bridge and auth may
	// only read: docker-compose.yaml's setup does it (channel "public"),
	// then one more channel and a user.
	runComposeScript(t, "setup", c.Env(t, "admin"), instantBin)
	runInstant(t, instantBin, c.Env(t, "admin"), "", "channels", "add", "orders", "--level", "public")
	runInstant(t, instantBin, c.Env(t, "admin"), "secret-password\n", "users", "add", "alice", "--password-stdin")
	// bob logs out below, which ends his sessions and his websocket;
	// alice's subscriber stays.
	runInstant(t, instantBin, c.Env(t, "admin"), "secret-password\n", "users", "add", "bob", "--password-stdin")

	cf := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	centrifugoEnv := []string{
		"CENTRIFUGO_HOST=http://127.0.0.1",
		"CENTRIFUGO_PORT=" + strconv.Itoa(cf.Port),
		"CENTRIFUGO_API_KEY=" + cf.APIKey,
	}
	if tlsFiles != nil {
		// Centrifugo's API over https, as with its internal_tls: a TLS
		// front with the test CA's certificate, trusted by bridge and auth
		// through CENTRIFUGO_CA only.
		port := startTLSProxy(t, *tlsFiles, cf.Port)
		centrifugoEnv = []string{
			"CENTRIFUGO_HOST=https://127.0.0.1",
			"CENTRIFUGO_PORT=" + strconv.Itoa(port),
			"CENTRIFUGO_API_KEY=" + cf.APIKey,
			"CENTRIFUGO_CA=" + tlsFiles.CA,
		}
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	bridgeEnv := loadCompose(t).Services["bridge"].Environment
	startProcess(t, "instant bridge", slices.Concat(c.Env(t, "bridge"), centrifugoEnv, []string{
		"INSTANT_METRICS_ADDR=" + metricsAddr,
		"INSTANT_REPLICAS=" + bridgeEnv["INSTANT_REPLICAS"],
	}), instantBin, "bridge")
	authAddr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	startProcess(t, "instant auth", slices.Concat(c.Env(t, "auth"), centrifugoEnv, []string{
		"INSTANT_AUTH_ADDR=" + authAddr,
		"INSTANT_AUTH_METRICS_ADDR=",
		"CENTRIFUGO_HMAC_KEY=" + cf.HMACKey,
	}), instantBin, "auth")
	waitHTTP(t, "http://"+metricsAddr+"/readyz")
	waitHTTP(t, "http://"+authAddr+"/readyz")
	sub := cf.Subscribe(t, "alice", "public", "orders")

	t.Run("streams and buckets at three replicas", func(t *testing.T) {
		// Created so by setup (INSTANT_REPLICAS of docker-compose.yaml)
		// and the bridge, with no step by hand.
		js := jetStreamAs(t, c, "admin")
		waitReplicated(t, js, "INSTANT", "INSTANT_DEAD", "KV_instant_bridge", "KV_instant_channels", "KV_instant_users")
		s, err := js.Stream(t.Context(), "INSTANT")
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.Discard != jetstream.DiscardNew || cfg.MaxBytes <= 0 || cfg.MaxAge <= 0 {
			t.Errorf("stream INSTANT: discard %v, max bytes %d, max age %v; want a bounded stream refusing new envelopes when full",
				cfg.Discard, cfg.MaxBytes, cfg.MaxAge)
		}
	})

	t.Run("auth: login, get_token, logout", func(t *testing.T) {
		cookies, csrf := wantLogin(t, authAddr, "bob")
		if got := authPost(t, authAddr, auth.PathGetToken, cookies, csrf); got != http.StatusOK {
			t.Fatalf("get_token after login: %d, want 200", got)
		}
		// Logout writes the session epoch into instant_users.
		if got := authPost(t, authAddr, auth.PathLogout, cookies, csrf); got != http.StatusOK {
			t.Fatalf("logout: %d, want 200", got)
		}
		// Auth follows the user store through a watch: the new epoch
		// reaches it a moment after the write.
		deadline := time.Now().Add(readyTimeout)
		for got := authPost(t, authAddr, auth.PathGetToken, cookies, csrf); got != http.StatusForbidden; got = authPost(t, authAddr, auth.PathGetToken, cookies, csrf) {
			if got != http.StatusOK || time.Now().After(deadline) {
				t.Fatalf("get_token with the session that logged out: %d, want 403", got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("producer", func(t *testing.T) {
		p := connectUser(t, c, "producer")
		publishJS(t, p.Conn, "instant.publish.public", `{"message":"from producer"}`)
		if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte("from producer")) || got.Channel != "public" {
			t.Errorf("subscriber got %s on %q, want the producer's message on public", got.Data, got.Channel)
		}
		wantRelayed(t, p.Conn, sub, "instant.request.public", "asking")
		// instant publish receives its acks and outcomes on
		// _INBOX_publish.
		wantPublished(t, instantBin, c.Env(t, "producer"), sub, "public", "stored in INSTANT", "published by the CLI")
		wantPublished(t, instantBin, c.Env(t, "producer"), sub, "public", `"ok":true`, "published and waited for", "--wait")

		p.refusedPublish(t, "instant.dead")
		p.refusedPublish(t, "$JS.API.STREAM.INFO.INSTANT")
		p.refusedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.INSTANT.instant-bridge")
		p.refusedPublish(t, "$KV.instant_users.alice")
		p.refusedSubscribe(t, "instant.publish.>")
		p.refusedSubscribe(t, "instant.dead")
	})

	t.Run("one-channel producer", func(t *testing.T) {
		o := connectUser(t, c, "orders")
		publishJS(t, o.Conn, "instant.publish.orders", `{"message":"order shipped"}`)
		if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte("order shipped")) || got.Channel != "orders" {
			t.Errorf("subscriber got %s on %q, want the order on orders", got.Data, got.Channel)
		}
		wantPublished(t, instantBin, c.Env(t, "orders"), sub, "orders", `"ok":true`, "order confirmed", "--wait")
		o.refusedPublish(t, "instant.publish.public")
		o.refusedPublish(t, "instant.publish")
		o.refusedPublish(t, "instant.request.public")
	})

	t.Run("bridge purges what it relayed", func(t *testing.T) {
		// Everything published above reached the subscriber; the bridge
		// purges it from INSTANT, which its user may do.
		stream, err := jetStreamAs(t, c, "admin").Stream(t.Context(), "INSTANT")
		if err != nil {
			t.Fatal(err)
		}
		stacktest.WaitFor(t, readyTimeout, "INSTANT emptied by the bridge's purges", func() bool {
			info, err := stream.Info(t.Context())
			return err == nil && info.State.Msgs == 0 && info.State.LastSeq > 0
		})
	})

	t.Run("bridge and auth stay in their lanes", func(t *testing.T) {
		b := connectUser(t, c, "bridge")
		b.refusedPublish(t, "$JS.API.STREAM.INFO.KV_instant_users")
		b.refusedPublish(t, "$JS.API.STREAM.DELETE.INSTANT")
		b.refusedPublish(t, "$KV.instant_users.alice")
		b.refusedPublish(t, "$KV.instant_channels.public")
		// Auth's replies carry user records with password hashes: the
		// bridge, in the same account, may read neither them nor any
		// inbox but its own.
		b.refusedSubscribe(t, "_INBOX_auth.>")
		b.refusedSubscribe(t, "_INBOX.>")
		b.refusedSubscribe(t, ">")
		a := connectUser(t, c, "auth")
		a.refusedPublish(t, "instant.publish.public")
		a.refusedPublish(t, "$JS.API.CONSUMER.MSG.NEXT.INSTANT.instant-bridge")
		a.refusedPublish(t, "$KV.instant_channels.public")
		a.refusedPublish(t, "$JS.API.STREAM.PURGE.KV_instant_users")
		a.refusedSubscribe(t, "_INBOX_bridge.>")
		a.refusedSubscribe(t, "_INBOX.>")
	})

	// The bridge and auth above ran with these inboxes only, so they
	// still work; a fresh reply through each proves it after the checks.
	t.Run("bridge and auth still answer", func(t *testing.T) {
		p := connectUser(t, c, "producer")
		wantRelayed(t, p.Conn, sub, "instant.request.orders", "still relaying")
		wantLogin(t, authAddr, "alice")
	})

	if tlsFiles == nil {
		t.Run("backup and restore", func(t *testing.T) {
			testBackupRestore(t, c, instantBin)
		})
	}
}

// startTLSProxy serves https on a free loopback port with the server
// certificate of files, forwarding to http://127.0.0.1:port, and returns
// its port.
func startTLSProxy(t *testing.T, files stacktest.TLSFiles, port int) int {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// wantLogin logs user in at the auth module on addr and returns the
// session cookies and the CSRF token.
func wantLogin(t *testing.T, addr, user string) ([]*http.Cookie, string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+auth.PathLogin, "application/json",
		strings.NewReader(`{"username":"`+user+`","password":"secret-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s (%v), want 200 OK", resp.Status, err)
	}
	return resp.Cookies(), body.CSRF
}

// authPost posts to path of the auth module on addr with the session's
// cookies and CSRF token and returns the status.
func authPost(t *testing.T, addr, path string, cookies []*http.Cookie, csrf string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(auth.CSRFHeader, csrf)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{Timeout: readyTimeout}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wantPublished runs `instant publish CHANNEL TEXT [flags]` with env and
// wants exit 0, output holding want, and the message at sub.
func wantPublished(t *testing.T, bin string, env []string, sub *stacktest.Subscriber, channel, want, text string, flags ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"publish", channel, text}, flags...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("instant publish %s %q %v: %v, %s; want %s", channel, text, flags, err, out, want)
	}
	if got := sub.Next(t, readyTimeout); !bytes.Contains(got.Data, []byte(text)) || got.Channel != channel {
		t.Errorf("subscriber got %s on %q, want %q on %s", got.Data, got.Channel, text, channel)
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

// connectUser connects to c as user, reporting the server's asynchronous
// errors.
func connectUser(t *testing.T, c *stacktest.NATSCluster, user string) *watchedConn {
	t.Helper()
	return connectAs(t, c.URL(t, user, 0), c.Options()...)
}

// jetStreamAs returns the JetStream API of a connection to c as user.
func jetStreamAs(t *testing.T, c *stacktest.NATSCluster, user string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(connectUser(t, c, user).Conn)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// copyNATSConfig writes the three node files and accounts.conf of the
// folder src and cluster (the content of cluster.conf) into dir.
func copyNATSConfig(t *testing.T, src, dir, cluster string) {
	t.Helper()
	for _, name := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf", "accounts.conf"} {
		writeFile(t, filepath.Join(dir, name), readFile(t, filepath.Join(src, name)))
	}
	writeFile(t, filepath.Join(dir, "cluster.conf"), cluster)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runSecrets runs secrets.sh into a new folder and returns it: the
// deploy files with fresh secrets, as an operator starts from.
func runSecrets(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "deploy")
	if out, err := exec.Command("/bin/sh", "secrets.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh: %v\n%s", err, out)
	}
	return dir
}

// runInstant runs an instant command with exactly env and stdin, failing
// the test unless it exits 0.
func runInstant(t *testing.T, bin string, env []string, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("instant %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitReplicated waits until each stream has three replicas, a leader
// and two current followers (about ten seconds here): before that a
// publication may go unacknowledged.
func waitReplicated(t *testing.T, js jetstream.JetStream, streams ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, name := range streams {
		// The bridge is ready before it created its streams.
		s, err := js.Stream(ctx, name)
		for errors.Is(err, jetstream.ErrStreamNotFound) {
			time.Sleep(100 * time.Millisecond)
			s, err = js.Stream(ctx, name)
		}
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
// docker-compose.yaml (entrypoint sh -c) with the service's environment,
// natsEnv in place of its NATS settings, the instant binary built for
// this run and bin/nats, failing the test unless it exits 0. It returns
// the script's output.
func runComposeScript(t *testing.T, service string, natsEnv []string, instantBin string) string {
	t.Helper()
	s := loadCompose(t).Services[service]
	if len(s.Command) != 1 {
		t.Fatalf("%s: command %q, want one shell script", service, s.Command)
	}
	// Compose turns $$ into $ before the shell sees it.
	script := strings.ReplaceAll(s.Command[0], "$$", "$")
	env := toolEnv(t, instantBin)
	for k, v := range s.Environment {
		if !strings.HasPrefix(k, "NATS_") {
			env = append(env, k+"="+v)
		}
	}
	return runScript(t, service+"'s script", append(env, natsEnv...), "-c", script)
}

// toolEnv returns PATH and HOME for a shell script: the instant binary
// built for this run and bin/nats first in the PATH, no nats CLI context
// of this machine.
func toolEnv(t *testing.T, instantBin string) []string {
	t.Helper()
	bin := t.TempDir()
	for name, target := range map[string]string{"instant": instantBin, "nats": stacktest.Binary(t, "nats")} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return []string{
		"PATH=" + bin + string(filepath.ListSeparator) + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
	}
}

// runScript runs /bin/sh with args and exactly env, failing the test
// unless it exits 0, and returns its output.
func runScript(t *testing.T, what string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
	return string(out)
}

// TestComposeSetupKeepsChannels runs the setup script of
// docker-compose.yaml twice: the first run adds the channel "public", the
// second keeps the operator's change to it.
func TestComposeSetupKeepsChannels(t *testing.T) {
	// One server: one replica, whatever docker-compose.yaml says.
	url := []string{"NATS_URL=" + stacktest.NATS(t).ClientURL(), "INSTANT_REPLICAS=1"}
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
func listChannels(t *testing.T, bin string, natsEnv []string) []struct {
	Name   string
	Active bool
	Groups []string
} {
	t.Helper()
	cmd := exec.Command(bin, "channels", "list", "--json")
	cmd.Env = natsEnv
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

func connectAs(t *testing.T, url string, opts ...nats.Option) *watchedConn {
	t.Helper()
	c := &watchedConn{errs: make(chan error, 16)}
	nc, err := nats.Connect(url, append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	}))...)
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

// testBackupRestore backs the KV buckets of cluster c up with
// nats/backup.sh, restores them with nats/restore.sh into a fresh NATS
// server, and wants the same channels and users there.
func testBackupRestore(t *testing.T, c *stacktest.NATSCluster, instantBin string) {
	dir := filepath.Join(t.TempDir(), "backup")
	tools := toolEnv(t, instantBin)
	runScript(t, "backup.sh", slices.Concat(tools, c.Env(t, "admin")), "nats/backup.sh", dir)

	fresh := []string{"NATS_URL=" + stacktest.NATS(t).ClientURL()}
	runScript(t, "restore.sh", slices.Concat(tools, fresh, []string{"INSTANT_REPLICAS=1"}), "nats/restore.sh", dir)

	for _, what := range []string{"channels", "users"} {
		before, after := listJSON(t, instantBin, c.Env(t, "admin"), what), listJSON(t, instantBin, fresh, what)
		if !bytes.Equal(before, after) || !bytes.Contains(after, []byte(`"alice"`)) && what == "users" ||
			!bytes.Contains(after, []byte(`"orders"`)) && what == "channels" {
			t.Errorf("%s after the restore:\n%s\nwant as before:\n%s", what, after, before)
		}
	}
}

// listJSON returns the output of `instant WHAT list --json` with env.
func listJSON(t *testing.T, bin string, env []string, what string) []byte {
	t.Helper()
	cmd := exec.Command(bin, what, "list", "--json")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("instant %s list: %v", what, err)
	}
	return out
}
