package deploy_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/instanthq/instant/internal/stacktest"
)

const centrifugoConfig = "centrifugo/config.yaml"

func TestCentrifugoConfigPassesCheckconfig(t *testing.T) {
	bin := stacktest.Binary(t, "centrifugo")
	if out, err := exec.Command(bin, "checkconfig", "--strict", "--config", centrifugoConfig).CombinedOutput(); err != nil {
		t.Fatalf("checkconfig --strict: %v\n%s", err, out)
	}
	// A typo fails the same check, so the check means something.
	bad := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, bad, replaceEach(t, readFile(t, centrifugoConfig), 1, "  allowed_origins:", "  allowed_origin:"))
	if out, err := exec.Command(bin, "checkconfig", "--strict", "--config", bad).CombinedOutput(); err == nil {
		t.Errorf("checkconfig --strict passed a config with an unknown key:\n%s", out)
	}
}

// TestCentrifugoNodesShareRedis starts two Centrifugo nodes with the
// deploy config (listen address, port and secrets from stacktest, Redis
// on loopback) and shows that a publication sent to node A's API reaches
// a subscriber on node B and sits in the history node B serves.
func TestCentrifugoNodesShareRedis(t *testing.T) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian: apt-get install redis-server); the two-node test needs a real Redis")
	}
	redisAddr := startRedis(t, redisBin)

	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, centrifugoConfig)), &cfg); err != nil {
		t.Fatal(err)
	}
	// stacktest provides the listen address, port and secrets.
	delete(cfg, "http_server")
	delete(cfg, "http_api")
	delete(cfg["client"].(map[string]any), "token")
	cfg["engine"].(map[string]any)["redis"].(map[string]any)["address"] = []any{"redis://" + redisAddr}
	cfg["log"] = map[string]any{"level": "warn"}

	a := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{Extra: cfg})
	b := stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{Extra: cfg})
	sub := b.Subscribe(t, "alice", "public")

	offset := a.Publish(t, "public", json.RawMessage(`{"message":"via node A"}`))
	got := sub.Next(t, readyTimeout)
	if string(got.Data) != `{"message":"via node A"}` || got.Offset != offset {
		t.Errorf("node B delivered %s at offset %d, want node A's publication at offset %d", got.Data, got.Offset, offset)
	}
	if h := sub.History(t, "public"); len(h) != 1 || h[0].Offset != offset {
		t.Errorf("node B's history of public = %v, want the one publication at offset %d", h, offset)
	}
}

// startRedis starts a Redis server without persistence on a free
// loopback port and returns its address once it answers PING.
func startRedis(t *testing.T, bin string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	host, port, _ := net.SplitHostPort(addr)
	startProcess(t, "redis-server", nil, bin,
		"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	deadline := time.Now().Add(readyTimeout)
	for {
		err := ping(addr)
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis on %s not ready within %v: %v", addr, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping sends Redis PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return &net.AddrError{Err: "unexpected reply " + strconv.Quote(line), Addr: addr}
	}
	return nil
}
