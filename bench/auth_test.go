package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
)

// BenchmarkGetToken loads `instant auth`, running as its own process, with
// get_token calls of a logged-in user who sees 20 channels: 8 concurrent
// clients for 3 seconds per run. It reports tokens/s and latency.
func BenchmarkGetToken(b *testing.B) {
	s := newStack(b, true)
	s.startCentrifugo(b, nil)
	ctx := context.Background()
	store, err := registry.Open(ctx, s.js, "")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		c, err := instant.NewChannel(fmt.Sprintf("team%d", i), instant.LevelGroups, []string{"team"})
		if err == nil {
			err = store.Put(ctx, c)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	us, err := users.Open(ctx, s.js, users.DefaultBucket)
	if err != nil {
		b.Fatal(err)
	}
	if err := us.Add(ctx, instant.User{Identity: instant.Identity{Username: "bench", Groups: []string{"team"}}}, "bench password"); err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(b))
	cmd := exec.Command(stacktest.Binary(b, "instant"), "auth")
	cmd.Env = append(os.Environ(), "NATS_URL="+s.natsURL, "CENTRIFUGO_HOST=http://127.0.0.1",
		fmt.Sprintf("CENTRIFUGO_PORT=%d", s.cent.Port), "CENTRIFUGO_API_KEY="+s.cent.APIKey,
		"CENTRIFUGO_HMAC_KEY="+s.cent.HMACKey, "INSTANT_AUTH_ADDR="+addr, "INSTANT_AUTH_METRICS_ADDR=", "INSTANT_LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	base := "http://" + addr + "/instant/"
	client, csrf := login(b, base)

	var runs []time.Duration
	var rates []float64
	for b.Loop() {
		lat, n, elapsed := loadGetToken(b, client, base, csrf, 8, 3*time.Second)
		rates = append(rates, float64(n)/elapsed.Seconds())
		runs = append(runs, lat...)
	}
	slices.Sort(runs)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(slices.Max(rates), "tokens/s") // answers per second, each with 21 tokens
	b.ReportMetric(float64(runs[len(runs)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(runs[len(runs)*99/100].Microseconds())/1000, "p99-ms")
}

// login logs the bench user in, waiting for the server to come up, and
// returns a client holding the session cookie and the CSRF token.
func login(b *testing.B, base string) (*http.Client, string) {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Post(base+"login/", "application/json", strings.NewReader(`{"username":"bench","password":"bench password"}`))
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		_, rest, _ := strings.Cut(string(body), `"csrf_token":"`)
		csrf, _, _ := strings.Cut(rest, `"`)
		return client, csrf
	}
	b.Fatal("instant auth did not answer within 30s")
	return nil, ""
}

// loadGetToken calls get_token from workers goroutines for d and returns
// every call's latency, the number of calls and the time taken.
func loadGetToken(b *testing.B, client *http.Client, base, csrf string, workers int, d time.Duration) ([]time.Duration, int, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				req, _ := http.NewRequest(http.MethodPost, base+"get_token/", strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-CSRFToken", csrf)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("get_token: %d", resp.StatusCode)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, len(lat), time.Since(start)
}
