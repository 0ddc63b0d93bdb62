package centrifugo

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCentrifugo runs the client against the real Centrifugo binary.
func TestCentrifugo(t *testing.T) {
	apiURL, key := startCentrifugo(t)
	c := New(Config{URL: apiURL, Key: key})
	ctx := t.Context()

	results, err := c.Publish(ctx, []Publish{
		{Channel: "news", Data: []byte(`{"n":1}`)},
		{Channel: "news", Data: []byte(`"two"`)},
		{Channel: "nope:x", Data: []byte(`{}`)},
	})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(results) != 3 {
		t.Fatalf("got %d results, want 3", len(results))
	}
	first, second := results[0], results[1]
	if first.Err != nil || second.Err != nil {
		t.Fatalf("got errors %v, %v, want nil", first.Err, second.Err)
	}
	if first.Offset == 0 || second.Offset <= first.Offset {
		t.Errorf("got offsets %d, %d, want increasing from 1", first.Offset, second.Offset)
	}
	if first.Epoch == "" || second.Epoch != first.Epoch {
		t.Errorf("got epochs %q, %q, want one non-empty epoch", first.Epoch, second.Epoch)
	}
	if e, ok := errors.AsType[*APIError](results[2].Err); !ok || e.Code != 102 || Temporary(e) {
		t.Errorf("third result: got %v, want a permanent *APIError with code 102", results[2].Err)
	}

	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := c.Unsubscribe(ctx, "news", "nobody"); err != nil {
		t.Errorf("Unsubscribe of an unknown user: %v", err)
	}
	if err := c.Disconnect(ctx, "nobody"); err != nil {
		t.Errorf("Disconnect of an unknown user: %v", err)
	}

	wrong := New(Config{URL: apiURL, Key: "wrong-" + key})
	if err := wrong.Ping(ctx); !errors.Is(err, ErrUnauthorized) || !Temporary(err) {
		t.Errorf("Ping with a wrong key: got %v, want ErrUnauthorized, temporary", err)
	}
	_, err = wrong.Publish(ctx, []Publish{{Channel: "news", Data: []byte(`{}`)}})
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), key) {
		t.Errorf("Publish with a wrong key: got %v, want ErrUnauthorized without the key", err)
	}
}

// startCentrifugo runs bin/centrifugo on a free loopback port with a fresh
// config and returns its API URL and key once the API answers. The
// process is killed at cleanup; its output is logged if the test failed.
func startCentrifugo(t *testing.T) (apiURL, key string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "bin", "centrifugo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/centrifugo missing: run make test")
	}
	port := freePort(t)
	key = "test-key-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	config := filepath.Join(t.TempDir(), "config.json")
	writeJSON(t, config, map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"http_api":    map[string]any{"key": key},
		"client":      map[string]any{"token": map[string]any{"hmac_secret_key": "test-hmac-secret"}},
		"channel": map[string]any{
			"without_namespace": map[string]any{"history_size": 100, "history_ttl": "60s"},
		},
		"log":         map[string]any{"level": "warn"},
		"usage_stats": map[string]any{"disabled": true},
	})

	var out bytes.Buffer
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = withoutCentrifugoEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start centrifugo: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed at cleanup
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("centrifugo output:\n%s", out.Bytes())
		}
	})

	apiURL = "http://127.0.0.1:" + strconv.Itoa(port) + "/api"
	waitReady(t, New(Config{URL: apiURL, Key: key, Timeout: time.Second}), exited)
	return apiURL, key
}

// waitReady polls c.Ping until it succeeds, the process exits, or 30s
// pass.
func waitReady(t *testing.T, c *Client, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Ping(t.Context())
		if err == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("centrifugo exited before it was ready (last ping: %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("centrifugo not ready within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// withoutCentrifugoEnv drops CENTRIFUGO_* variables, which Centrifugo
// reads as overrides of its config.
func withoutCentrifugoEnv(env []string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CENTRIFUGO_") {
			kept = append(kept, kv)
		}
	}
	return kept
}
