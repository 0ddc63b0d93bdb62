package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
)

// alicePassword is the password of the user store's one user, alice
// (not staff, no groups).
const alicePassword = "chaos-password"

// readyTimeout bounds every wait for a started process to answer.
const readyTimeout = 90 * time.Second

// maxPayload is the bridge's INSTANT_MAX_PAYLOAD here: small, so that a
// too_large envelope costs little.
const maxPayload = 4096

// stack is the production-shaped cluster.
type stack struct {
	nats  *stacktest.NATSCluster
	redis *stacktest.Redis
	cents []*stacktest.Centrifugo
	// ws[i] and api[i] are the load balancers in front of the Centrifugo
	// nodes that prefer node i: clients' websockets and the HTTP API of
	// the workers and auth.
	ws, api []*stacktest.Balancer
	workers []*worker
	auth    *stacktest.Proc
	authURL string // http://127.0.0.1:PORT of instant auth
	admin   *nats.Conn
	js      jetstream.JetStream
}

// worker is one `instant bridge`.
type worker struct {
	*stacktest.Proc
	metrics string // host:port of its /metrics
}

func TestMain(m *testing.M) {
	code := m.Run()
	stacktest.RemoveBuilds()
	os.Exit(code)
}

// startStack brings the cluster up with channels registered and every
// stream and bucket at three replicas.
func startStack(t *testing.T, channels []instant.Channel, historySize int) *stack {
	t.Helper()
	bin := stacktest.InstantBinary(t)
	s := &stack{}
	s.nats = stacktest.StartNATSCluster(t)
	s.admin = stacktest.Connect(t, s.nats.URL(t, "admin", 0))
	js, err := jetstream.New(s.admin)
	if err != nil {
		t.Fatal(err)
	}
	s.js = js
	// The first JetStream requests after the cluster formed may go
	// unanswered: wait until one is.
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream of the cluster not answering within %v: %v", readyTimeout, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	// What the operator's first `instant channels import` and `instant
	// users add` do, then the buckets at three replicas.
	reg, err := registry.Open(ctx, js, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := reg.Import(ctx, channels, false); err != nil {
		t.Fatal(err)
	}
	us, err := users.Open(ctx, js, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := us.Add(ctx, instant.User{Identity: instant.Identity{Username: "alice"}}, alicePassword); err != nil {
		t.Fatal(err)
	}

	s.redis = stacktest.StartRedis(t)
	apiKey, hmacKey := randomKey(t), randomKey(t)
	for i := range 2 {
		s.cents = append(s.cents, startCentrifugo(t, i, s.redis.Addr(), apiKey, hmacKey, historySize))
	}
	for i := range s.cents {
		var backends []string
		for j := range s.cents {
			backends = append(backends, "127.0.0.1:"+strconv.Itoa(s.cents[(i+j)%len(s.cents)].Port))
		}
		s.ws = append(s.ws, stacktest.StartBalancer(t, backends...))
		s.api = append(s.api, stacktest.StartBalancer(t, backends...))
	}
	for i := range 3 {
		s.workers = append(s.workers, s.newWorker(t, bin, i))
	}
	for _, w := range s.workers {
		w.Start(t)
	}
	for _, w := range s.workers {
		waitHTTP(t, "http://"+w.metrics+"/readyz")
	}
	authAddr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	s.auth = stacktest.StartProc(t, "instant auth", []string{
		"NATS_URL=" + s.nats.URL(t, "auth", 2),
		"INSTANT_AUTH_ADDR=" + authAddr,
		"INSTANT_AUTH_METRICS_ADDR=",
		"CENTRIFUGO_HOST=http://127.0.0.1",
		"CENTRIFUGO_PORT=" + strconv.Itoa(s.api[0].Port),
		"CENTRIFUGO_API_KEY=" + apiKey,
		"CENTRIFUGO_HMAC_KEY=" + hmacKey,
		"INSTANT_REPLICAS=3",
		// The browser page connects as an anonymous visitor: public
		// channels only.
		"INSTANT_ANONYMOUS=true",
	}, bin, "auth")
	waitHTTP(t, "http://"+authAddr+"/readyz")
	s.authURL = "http://" + authAddr

	// Streams the bridge or the admin created with one replica are
	// raised to three, as deploy/nats/cluster.conf tells the operator.
	for _, name := range []string{"INSTANT", "INSTANT_DEAD", "KV_instant_channels", "KV_instant_users", "KV_instant_bridge"} {
		s.replicate(t, name)
	}
	return s
}

func (s *stack) newWorker(t *testing.T, bin string, i int) *worker {
	t.Helper()
	w := &worker{metrics: "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))}
	// Through a load balancer that prefers one node, as a service in
	// front of the Centrifugo nodes does.
	w.Proc = stacktest.NewProc(t, fmt.Sprintf("bridge-%d", i+1), []string{
		"NATS_URL=" + s.nats.URL(t, "bridge", i),
		"CENTRIFUGO_HOST=http://127.0.0.1",
		"CENTRIFUGO_PORT=" + strconv.Itoa(s.api[i%len(s.api)].Port),
		"CENTRIFUGO_API_KEY=" + s.cents[0].APIKey,
		"INSTANT_METRICS_ADDR=" + w.metrics,
		"INSTANT_MAX_PAYLOAD=" + strconv.Itoa(maxPayload),
		"INSTANT_LOG_LEVEL=info",
		"INSTANT_REPLICAS=3",
	}, bin, "bridge")
	return w
}

// replicate sets stream name to three replicas, if it has fewer, and
// waits until its leader has two current followers.
func (s *stack) replicate(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.Replicas < 3 {
		cfg.Replicas = 3
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("stream %s to 3 replicas: %v", name, err)
		}
	}
	for {
		info, err := st.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == 2 &&
			info.Cluster.Replicas[0].Current && info.Cluster.Replicas[1].Current {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %s not replicated within %v (%v)", name, readyTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leader returns the node leading stream name.
func (s *stack) leader(t *testing.T, name string) *stacktest.NATSNode {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err := s.js.Stream(ctx, name)
		cancel()
		if err == nil {
			if c := st.CachedInfo().Cluster; c != nil {
				for _, n := range s.nats.Nodes {
					if n.Name == c.Leader {
						return n
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader of stream %s within %v (%v)", name, readyTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startCentrifugo starts node i from deploy/centrifugo/config.yaml:
// loopback port, the shared keys, the local Redis, and a history long
// enough to check a whole run.
func startCentrifugo(t *testing.T, i int, redisAddr, apiKey, hmacKey string, historySize int) *stacktest.Centrifugo {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "deploy", "centrifugo", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("deploy/centrifugo/config.yaml: %v", err)
	}
	port := stacktest.FreePort(t)
	section := func(path ...string) map[string]any {
		m := cfg
		for _, k := range path {
			next, ok := m[k].(map[string]any)
			if !ok {
				t.Fatalf("deploy/centrifugo/config.yaml: no section %s", strings.Join(path, "."))
			}
			m = next
		}
		return m
	}
	hs := section("http_server")
	hs["address"], hs["port"] = "127.0.0.1", port
	delete(hs, "internal_port") // API and health on the same loopback port
	section("http_api")["key"] = apiKey
	section("client", "token")["hmac_secret_key"] = hmacKey
	section("client")["allowed_origins"] = []any{"*"}
	section("engine", "redis")["address"] = []any{"redis://" + redisAddr}
	ch := section("channel", "without_namespace")
	// deploy keeps 1000 publications for 5 minutes; the checks read the
	// whole run back from the history.
	ch["history_size"], ch["history_ttl"] = historySize, "3600s"
	section("log")["level"] = "warn"
	section("shutdown")["timeout"] = "5s"
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("centrifugo-%d.json", i+1))
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return stacktest.StartCentrifugoWithConfig(t, path, port, apiKey, hmacKey)
}

func randomKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitHTTP polls url until it answers 200 OK.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := get(url)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v: %v", url, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// login logs user in at instant auth and returns the connection token and
// the channel tokens it gave.
func (s *stack) login(t *testing.T, user, password string) (string, []stacktest.ChannelToken) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(s.authURL+auth.PathLogin, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		WSToken  string `json:"ws_token"`
		Channels []struct {
			Name  string `json:"name"`
			Token string `json:"token"`
		} `json:"channels"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %s", user, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	tokens := make([]stacktest.ChannelToken, 0, len(out.Channels))
	for _, ch := range out.Channels {
		tokens = append(tokens, stacktest.ChannelToken{Channel: ch.Name, Token: ch.Token})
	}
	return out.WSToken, tokens
}

// relayed reads instant_bridge_relayed_total from the worker's /metrics.
func (w *worker) relayed() (float64, error) {
	return stacktest.Metric(w.metrics, "instant_bridge_relayed_total")
}
