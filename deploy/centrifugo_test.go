package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// deploy config (ports on loopback, Redis on loopback) and shows that a
// publication sent to node A's API, on its internal port as instant
// sends it, reaches a subscriber on node B and sits in the history node B
// serves; the client port serves no API.
func TestCentrifugoNodesShareRedis(t *testing.T) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian: apt-get install redis-server); the two-node test needs a real Redis")
	}
	settings := loadCentrifugoSettings(t)
	redisAddr := startRedis(t, redisBin, settings.Engine.Redis.Password)

	startNode := func(name string) *stacktest.Centrifugo {
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(readFile(t, centrifugoConfig)), &cfg); err != nil {
			t.Fatal(err)
		}
		server := cfg["http_server"].(map[string]any)
		for _, key := range []string{"port", "internal_port"} {
			if _, ok := server[key]; !ok {
				t.Fatalf("http_server.%s missing", key)
			}
		}
		clientPort, internalPort := stacktest.FreePort(t), stacktest.FreePort(t)
		server["address"] = "127.0.0.1"
		server["port"] = clientPort
		server["internal_address"] = "127.0.0.1"
		server["internal_port"] = strconv.Itoa(internalPort)
		cfg["engine"].(map[string]any)["redis"].(map[string]any)["address"] = []any{"redis://" + redisAddr}
		cfg["log"] = map[string]any{"level": "warn"}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, path, string(data))
		// Ready means /health and /api answer on the internal port.
		c := stacktest.StartCentrifugoWithConfig(t, path, internalPort, settings.HTTPAPI.Key, settings.Client.Token.HMACSecretKey)
		// Browsers connect to the client port.
		c.WSURL = "ws://127.0.0.1:" + strconv.Itoa(clientPort) + "/connection/websocket"
		resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(clientPort)+"/api/info", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("node %s client port: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("node %s: POST /api/info on the client port: %s, want 404 (the API only on the internal port)", name, resp.Status)
		}
		return c
	}
	a := startNode("A")
	b := startNode("B")
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

// centrifugoSettings is the part of centrifugo/config.yaml instant's
// settings must match.
type centrifugoSettings struct {
	HTTPServer struct {
		Port         string `yaml:"port"`
		InternalPort string `yaml:"internal_port"`
	} `yaml:"http_server"`
	HTTPAPI struct{ Key string } `yaml:"http_api"`
	Engine  struct {
		Redis struct{ Password string }
	}
	Client struct {
		Token struct {
			HMACSecretKey string `yaml:"hmac_secret_key"`
		}
	}
}

func loadCentrifugoSettings(t *testing.T) centrifugoSettings {
	t.Helper()
	var c centrifugoSettings
	if err := yaml.Unmarshal([]byte(readFile(t, centrifugoConfig)), &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPServer.InternalPort == "" || c.HTTPServer.InternalPort == c.HTTPServer.Port {
		t.Fatalf("http_server.internal_port %q: want a port of its own for the API, health and metrics (client port %q)",
			c.HTTPServer.InternalPort, c.HTTPServer.Port)
	}
	return c
}

// TestCentrifugoPortIsInternal checks that every deploy file pointing
// instant at Centrifugo uses the internal port, where the API is.
func TestCentrifugoPortIsInternal(t *testing.T) {
	want := loadCentrifugoSettings(t).HTTPServer.InternalPort
	got := map[string]string{}
	for _, u := range units {
		got["systemd/"+u.envFile] = parseEnvFile(t, filepath.Join("systemd", u.envFile))["CENTRIFUGO_PORT"]
	}
	for name, cm := range loadManifests(t).configMaps {
		got["kubernetes ConfigMap "+name] = cm.Data["CENTRIFUGO_PORT"]
	}
	for _, name := range []string{"bridge", "auth"} {
		got[composeFile+" "+name] = loadCompose(t).Services[name].Environment["CENTRIFUGO_PORT"]
	}
	for where, port := range got {
		if port != want {
			t.Errorf("%s: CENTRIFUGO_PORT = %q, want Centrifugo's internal port %s", where, port, want)
		}
	}
}

// startRedis starts a Redis server without persistence, requiring
// password, on a free loopback port and returns its address once it
// answers PING.
func startRedis(t *testing.T, bin, password string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	host, port, _ := net.SplitHostPort(addr)
	startProcess(t, "redis-server", nil, bin,
		"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--requirepass", password)
	deadline := time.Now().Add(readyTimeout)
	for {
		err := ping(addr, password)
		if err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis on %s not ready within %v: %v", addr, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping authenticates with password, sends Redis PING and expects +PONG.
func ping(addr, password string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("AUTH " + password + "\r\nPING\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		return &net.AddrError{Err: fmt.Sprintf("AUTH: %q %v", line, err), Addr: addr}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return &net.AddrError{Err: "unexpected reply " + strconv.Quote(line), Addr: addr}
	}
	return nil
}
