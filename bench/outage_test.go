package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/instanthq/instant/internal/stacktest"
)

var (
	flagOutageMsgs = flag.Int("outage-msgs", 100000, "envelopes published during the Centrifugo outage of BenchmarkOutageRSS")
	flagOutage     = flag.Duration("outage", 30*time.Second, "how long Centrifugo is down in BenchmarkOutageRSS")
	flagInstantBin = flag.String("instant-bin", "", "the instant binary BenchmarkOutageRSS runs as the bridge (default: bin/instant)")
)

// rssEvery is how often BenchmarkOutageRSS samples the bridge's RSS.
const rssEvery = 100 * time.Millisecond

// BenchmarkOutageRSS runs `instant bridge` (JetStream mode, defaults) in
// its own process, stops Centrifugo for -outage while -outage-msgs
// envelopes are published, and reports the bridge's largest resident set
// size meanwhile (peak-rss-MB) and at the end of the outage (end-rss-MB).
// Then Centrifugo starts again; the run ends when it holds every envelope
// (drain-s: from its restart).
func BenchmarkOutageRSS(b *testing.B) {
	s := newStack(b, true)
	s.startCentrifugo(b, nil)
	bin := *flagInstantBin
	if bin == "" {
		bin = stacktest.Binary(b, "instant")
	}
	channels := make([]map[string]any, len(s.channels))
	for i, ch := range s.channels {
		channels[i] = map[string]any{"name": ch, "level": "public"}
	}
	chFile := filepath.Join(b.TempDir(), "channels.json")
	data, err := json.Marshal(channels)
	if err == nil {
		err = os.WriteFile(chFile, data, 0o600)
	}
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "bridge")
	cmd.Env = append(os.Environ(), "NATS_URL="+s.natsURL, "CENTRIFUGO_HOST=http://127.0.0.1",
		fmt.Sprintf("CENTRIFUGO_PORT=%d", s.cent.Port), "CENTRIFUGO_API_KEY="+s.cent.APIKey,
		"INSTANT_CHANNELS_FILE="+chFile, "INSTANT_METRICS_ADDR=", "INSTANT_LOG_LEVEL=error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	stacktest.WaitBridge(b, s.nc)

	n := *flagOutageMsgs
	var peak, end, drain []float64
	for range b.N {
		s.cent.Stop(b)
		down := time.Now()
		var mu sync.Mutex
		var peakRSS int64
		sampled := make(chan struct{})
		stopSampling := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(rssEvery)
			defer t.Stop()
			for {
				if v, err := rss(cmd.Process.Pid); err == nil {
					mu.Lock()
					peakRSS = max(peakRSS, v)
					mu.Unlock()
				}
				select {
				case <-t.C:
				case <-stopSampling:
					return
				}
			}
		}()
		s.preload(b, "instant.publish", 0, n, nil, func(_ string, seq int) []byte { return envelope(seq) })
		select {
		case <-time.After(time.Until(down.Add(*flagOutage))):
		case <-exited:
			b.Fatal("the bridge exited during the outage")
		}
		close(stopSampling)
		<-sampled
		last, err := rss(cmd.Process.Pid)
		if err != nil {
			b.Fatalf("the bridge's RSS: %v", err)
		}
		mu.Lock()
		peak = append(peak, float64(max(peakRSS, last))/(1<<20))
		mu.Unlock()
		end = append(end, float64(last)/(1<<20))
		s.cent.Start(b)
		up := time.Now()
		s.waitAccepted(b, uint64(n)) // the memory engine restarted empty
		drain = append(drain, time.Since(up).Seconds())
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(maxOf(peak), "peak-rss-MB")
	b.ReportMetric(maxOf(end), "end-rss-MB")
	b.ReportMetric(maxOf(drain), "drain-s")
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
