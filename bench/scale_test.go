package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/centrifugal/gocent/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

// BenchmarkScaleOut is the JetStream bridge with 1, 2 and 3 workers
// (in this process, default settings) on the -channels bench channels:
// once the workers have split the partitions, -msgs envelopes are
// published as fast as NATS takes them, and the clock runs until
// Centrifugo holds them all. On a machine with 2 cores expect flat or
// falling figures: the workers share the cores with NATS and Centrifugo.
func BenchmarkScaleOut(b *testing.B) {
	for _, workers := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchScaleOut(b, workers) })
	}
}

func benchScaleOut(b *testing.B, workers int) {
	s := newBenchStack(b, true, false)
	s.startCentrifugo(b, nil)
	var ms []*bridge.Metrics
	for range workers {
		ms = append(ms, s.startMeasuredBridge(b))
	}
	// Wait until the partitions are split: every worker holds some and
	// all are held.
	deadline := time.Now().Add(setupTimeout)
	for {
		sum, all := 0.0, true
		for _, m := range ms {
			v := testutil.ToFloat64(m.PartitionsOwned)
			sum += v
			all = all && v > 0
		}
		if all && sum == bridge.DefaultPartitions+1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the workers did not split the partitions within %v", setupTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.measure(b, true, func(from, to int, start func()) func() {
		start()
		for i := from; i < to; i++ {
			if err := s.nc.Publish("instant.publish."+s.channels[i%len(s.channels)], envelope(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.nc.Flush(); err != nil {
			b.Fatal(err)
		}
		return nil
	})
}

// BenchmarkTakeover measures how long a partition waits after its worker
// is SIGKILLed: two `instant bridge` processes (defaults) relay a steady
// flow on one channel; the flow pauses a moment so that nothing is in
// flight, the worker relaying that channel is killed, the flow resumes,
// and the clock runs until Centrifugo holds a next publication of the
// channel (relayed by the survivor). Five kills per iteration; it reports
// their median and largest (takeover-ms, takeover-max-ms). The bound with
// defaults is the lease TTL (5 s) plus up to two renewal intervals (1 s
// each) and the server's expiry sweep.
func BenchmarkTakeover(b *testing.B) {
	const kills = 5
	s := newStack(b, true)
	s.startCentrifugo(b, nil)
	bin := *flagInstantBin
	if bin == "" {
		bin = stacktest.Binary(b, "instant")
	}
	channels := make([]instant.Channel, len(s.channels))
	for i, name := range s.channels {
		channels[i] = instant.Channel{Name: name, Level: instant.LevelPublic, Active: true}
	}
	store, err := registry.Open(context.Background(), s.js, "")
	if err != nil {
		b.Fatal(err)
	}
	if _, _, _, err := store.Import(context.Background(), channels, false); err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "NATS_URL="+s.natsURL, "CENTRIFUGO_HOST=http://127.0.0.1",
		fmt.Sprintf("CENTRIFUGO_PORT=%d", s.cent.Port), "CENTRIFUGO_API_KEY="+s.cent.APIKey, "INSTANT_LOG_LEVEL=error")
	channel := s.channels[0]
	partition := strconv.Itoa(bridge.PartitionOf(channel, bridge.DefaultPartitions))

	var mu sync.Mutex // held while the flow pauses
	stopFlow := make(chan struct{})
	flowDone := make(chan struct{})
	go func() {
		defer close(flowDone)
		for seq := 0; ; seq++ {
			select {
			case <-stopFlow:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			_ = s.nc.Publish("instant.publish."+channel, envelope(seq))
			mu.Unlock()
		}
	}()
	defer func() { close(stopFlow); <-flowDone }()

	var times []time.Duration
	for range b.N {
		workers := []*benchWorker{startBenchWorker(b, bin, env), startBenchWorker(b, bin, env)}
		for range kills {
			owner := waitOwner(b, workers, partition)
			mu.Lock()
			time.Sleep(100 * time.Millisecond) // what was published is relayed
			before := s.topOffset(b, channel)
			t0 := time.Now()
			owner.kill()
			mu.Unlock()
			deadline := t0.Add(runTimeout)
			for s.topOffset(b, channel) == before {
				if time.Now().After(deadline) {
					b.Fatalf("no publication of %s within %v of the SIGKILL", channel, runTimeout)
				}
				time.Sleep(pollEvery)
			}
			times = append(times, time.Since(t0))
			workers = slices.DeleteFunc(workers, func(w *benchWorker) bool { return w == owner })
			workers = append(workers, startBenchWorker(b, bin, env))
		}
		for _, w := range workers {
			w.kill()
		}
	}
	slices.Sort(times)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1e3, "takeover-ms")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1e3, "takeover-max-ms")
}

// topOffset returns the top offset of channel's history.
func (s *stack) topOffset(b *testing.B, channel string) uint64 {
	b.Helper()
	h, err := s.api.History(context.Background(), channel, gocent.WithLimit(0))
	if err != nil {
		b.Fatalf("history of %s: %v", channel, err)
	}
	return h.Offset
}

// benchWorker is an `instant bridge` process with its metrics address.
type benchWorker struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
}

func startBenchWorker(b *testing.B, bin string, env []string) *benchWorker {
	b.Helper()
	w := &benchWorker{metrics: fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(b)), done: make(chan struct{})}
	w.cmd = exec.Command(bin, "bridge")
	w.cmd.Env = append(env, "INSTANT_METRICS_ADDR="+w.metrics)
	w.cmd.Stderr = os.Stderr
	stacktest.SetParentDeathSignal(w.cmd)
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	b.Cleanup(w.kill)
	return w
}

func (w *benchWorker) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

// scrape returns how many partitions w holds and whether partition is
// one of them, per its /metrics.
func (w *benchWorker) scrape(partition string) (owned float64, holds bool) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + w.metrics + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	want := fmt.Sprintf(`instant_bridge_partition_owned{partition=%q} 1`, partition)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "instant_bridge_partitions_owned "); ok {
			owned, _ = strconv.ParseFloat(v, 64)
		}
		holds = holds || line == want
	}
	return owned, holds
}

// waitOwner waits until the workers have split the partitions (each holds
// some, all are held) and returns the one holding partition.
func waitOwner(b *testing.B, workers []*benchWorker, partition string) *benchWorker {
	b.Helper()
	deadline := time.Now().Add(setupTimeout)
	for {
		var owners []*benchWorker
		sum, all := 0.0, true
		for _, w := range workers {
			owned, holds := w.scrape(partition)
			sum += owned
			all = all && owned > 0
			if holds {
				owners = append(owners, w)
			}
		}
		if all && sum == bridge.DefaultPartitions+1 && len(owners) == 1 {
			return owners[0]
		}
		if time.Now().After(deadline) {
			b.Fatalf("the workers did not split the partitions within %v", setupTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
