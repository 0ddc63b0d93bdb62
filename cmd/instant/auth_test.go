package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestAuthSettingsRefused: weak or shared keys and origins that can never
// match stop auth at start, naming the variable.
func TestAuthSettingsRefused(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	base := map[string]string{"CENTRIFUGO_API_KEY": "k", "NATS_URL": "nats://127.0.0.1:1", "CENTRIFUGO_HMAC_KEY": key}
	tests := []struct {
		name    string
		env     map[string]string
		mention string
	}{
		{"one-byte HMAC key", map[string]string{"CENTRIFUGO_HMAC_KEY": "a"}, "CENTRIFUGO_HMAC_KEY"},
		{"31-byte HMAC key", map[string]string{"CENTRIFUGO_HMAC_KEY": key[:31]}, "CENTRIFUGO_HMAC_KEY"},
		{"short identity key", map[string]string{"INSTANT_IDENTITY_KEY": "secret"}, "INSTANT_IDENTITY_KEY"},
		{"identity key equal to the HMAC key", map[string]string{"INSTANT_IDENTITY_KEY": key}, "INSTANT_IDENTITY_KEY"},
		{"wildcard origin", map[string]string{"INSTANT_ALLOWED_ORIGINS": "https://app.example.com,https://*.example.com"}, "INSTANT_ALLOWED_ORIGINS"},
		{"bad identity lifetime", map[string]string{"INSTANT_IDENTITY_MAX_TTL": "forever"}, "INSTANT_IDENTITY_MAX_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			for _, cmd := range []string{"auth", "serve"} {
				code, _, stderr := run(t, env, cmd)
				if code != 2 || !strings.Contains(stderr, tt.mention) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
					t.Errorf("%s: exit %d, stderr %q; want 2 and one line naming %s", cmd, code, stderr, tt.mention)
				}
			}
		})
	}
}

// TestHTTPTimeouts: a client sending its body a byte at a time, or
// holding a kept-alive connection idle, is cut off; every answer says
// nosniff.
func TestHTTPTimeouts(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	t.Cleanup(func() { cancel(); _ = g.Wait() })
	bodyErr := make(chan error, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
		fmt.Fprintln(w, "ok")
	})
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	short := httpTimeouts{ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond, Write: time.Second, Idle: 300 * time.Millisecond}
	if err := serveHTTP(gctx, g, addr, "TEST_ADDR", h, zaptest.NewLogger(t), short); err != nil {
		t.Fatal(err)
	}

	// closed reads c until the server closes it; the test's own deadline
	// only bounds a failing run.
	closed := func(c net.Conn) error {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return errors.New("still open after 30s")
		}
		return nil
	}

	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a byte every 50 ms, until the server hangs up
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		if err := closed(c); err != nil {
			t.Fatal(err)
		}
		if err := <-bodyErr; err == nil {
			t.Error("the handler read the whole slow body")
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Close {
			t.Errorf("answer: close %v, headers %v", resp.Close, resp.Header)
		}
		<-bodyErr
		if err := closed(c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAuthPorts: auth's /metrics is on INSTANT_AUTH_METRICS_ADDR, not on
// the public port, which keeps /healthz and /readyz; every answer says
// nosniff.
func TestAuthPorts(t *testing.T) {
	s := newStack(t)
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	s.env["INSTANT_AUTH_ADDR"] = addr
	s.env["INSTANT_AUTH_METRICS_ADDR"] = metricsAddr
	s.env["CENTRIFUGO_HMAC_KEY"] = s.cent.HMACKey
	cmd := exec.Command(instantBin, "auth")
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	stacktest.WaitFor(t, 20*time.Second, "auth ready", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, tt := range []struct {
		url    string
		status int
		holds  string
	}{
		{"http://" + addr + "/metrics", http.StatusNotFound, ""},
		{"http://" + addr + "/healthz", http.StatusOK, "ok"},
		{"http://" + addr + "/readyz", http.StatusOK, "ok"},
		{"http://" + addr + "/instant/static/instant.js", http.StatusOK, ""},
		{"http://" + addr + "/instant/login/", http.StatusMethodNotAllowed, ""},
		{"http://" + metricsAddr + "/metrics", http.StatusOK, "instant_auth_logins_total"},
		{"http://" + metricsAddr + "/healthz", http.StatusOK, "ok"},
	} {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.holds) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, nosniff %q; want %d holding %q", tt.url, resp.StatusCode, resp.Header.Get("X-Content-Type-Options"), tt.status, tt.holds)
		}
	}
}
