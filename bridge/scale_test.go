package bridge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stacktest.RemoveBuilds()
	os.Exit(code)
}

// scaleStack is NATS, Centrifugo and instant bridge processes with a set
// of channels covering every partition, some published in the subject
// form and some in the bare form.
type scaleStack struct {
	nc      *nats.Conn
	cent    *stacktest.Centrifugo
	env     []string
	subject []string // channels published on instant.publish.<channel>
	bare    []string // channels published on instant.publish
	sent    map[string]int
	sub     *stacktest.Subscriber
	seen    map[string][]int // what the subscriber received, by channel
}

func newScaleStack(t *testing.T) *scaleStack {
	t.Helper()
	stacktest.InstantBinary(t) // built before the clock of any test runs
	srv := stacktest.NATS(t)
	s := &scaleStack{sent: map[string]int{}, seen: map[string][]int{}}
	s.cent = stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	s.nc = stacktest.Connect(t, srv.ClientURL())
	// Two subject-form channels per partition, two bare-form channels.
	per := map[int]int{}
	for i := 0; len(s.subject) < 2*bridge.DefaultPartitions; i++ {
		ch := fmt.Sprintf("s%d", i)
		if p := bridge.PartitionOf(ch, bridge.DefaultPartitions); per[p] < 2 {
			per[p]++
			s.subject = append(s.subject, ch)
		}
	}
	s.bare = []string{"b0", "b1"}
	var chs []instant.Channel
	for _, name := range s.all() {
		chs = append(chs, instant.Channel{Name: name, Level: instant.LevelPublic, Active: true})
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.Open(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := store.Import(t.Context(), chs, false); err != nil {
		t.Fatal(err)
	}
	s.env = []string{
		"NATS_URL=" + srv.ClientURL(),
		"CENTRIFUGO_API_KEY=" + s.cent.APIKey,
		"INSTANT_LOG_LEVEL=info",
		"PATH=" + os.Getenv("PATH"),
	}
	s.sub = s.cent.Subscribe(t, "alice", s.all()...)
	return s
}

func (s *scaleStack) all() []string { return append(append([]string(nil), s.subject...), s.bare...) }

// proc is one `instant bridge` process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	metrics string
	logs    *stacktest.Buffer
	exited  chan struct{} // closed when the process ended, after err is set
	err     error
	// requests counts the Centrifugo API requests the worker sent, when it
	// goes through a proxy (nil otherwise).
	requests *atomic.Int64
}

// startWorker starts `instant bridge`; with proxied, its Centrifugo
// requests go through a proxy that counts them.
func (s *scaleStack) startWorker(t *testing.T, name string, proxied bool) *proc {
	t.Helper()
	bin := stacktest.InstantBinary(t)
	w := &proc{name: name, logs: &stacktest.Buffer{}, exited: make(chan struct{})}
	target, _ := url.Parse(s.cent.URL)
	centURL := s.cent.URL
	if proxied {
		w.requests = &atomic.Int64{}
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.requests.Add(1)
			proxy.ServeHTTP(rw, r)
		}))
		t.Cleanup(srv.Close)
		centURL = srv.URL
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(centURL, "http://"), ":")
	w.metrics = fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	w.cmd = exec.Command(bin, "bridge")
	w.cmd.Env = append(append([]string(nil), s.env...),
		"CENTRIFUGO_HOST=http://"+host, "CENTRIFUGO_PORT="+port, "INSTANT_METRICS_ADDR="+w.metrics)
	w.cmd.Stderr = w.logs
	stacktest.SetParentDeathSignal(w.cmd)
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGCONT)
		_ = w.cmd.Process.Kill()
		<-w.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, w.logs.String())
		}
	})
	stacktest.WaitFor(t, 30*time.Second, name+" serves /metrics", func() bool { _, err := w.metric("instant_bridge_partitions_owned"); return err == nil })
	return w
}

// metric reads one unlabelled metric from the worker's /metrics.
func (w *proc) metric(name string) (float64, error) {
	v, err := stacktest.Metric(w.metrics, name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", w.name, err)
	}
	return v, nil
}

func (w *proc) mustMetric(t *testing.T, name string) float64 {
	t.Helper()
	v, err := w.metric(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (w *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// burst publishes n envelopes round-robin over every channel, the bare
// channels in the bare form, at about rate per second; at the envelope
// numbered at, it calls event.
func (s *scaleStack) burst(t *testing.T, n, rate, at int, event func()) {
	t.Helper()
	all := s.all()
	start := time.Now()
	for i := range n {
		if i == at && event != nil {
			event()
		}
		ch := all[i%len(all)]
		seq := s.sent[ch]
		s.sent[ch]++
		var err error
		if i%len(all) >= len(s.subject) {
			err = s.nc.Publish("instant.publish", fmt.Appendf(nil, `{"channel":%q,"data":%d}`, ch, seq))
		} else {
			err = s.nc.Publish("instant.publish."+ch, fmt.Appendf(nil, `{"data":%d}`, seq))
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if ahead := time.Duration(i+1)*time.Second/time.Duration(rate) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	if err := s.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// check waits until Centrifugo's history of every channel holds what was
// sent, then checks that it holds each envelope once, in order, and that
// the subscriber received the same.
func (s *scaleStack) check(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, ch := range s.all() {
		for {
			h := s.sub.History(t, ch)
			if len(h) >= s.sent[ch] {
				assertSequence(t, what+": history of "+ch, h, s.sent[ch])
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: history of %s holds %d of %d publications after 60s", what, ch, len(h), s.sent[ch])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	total := 0
	for _, ch := range s.all() {
		total += s.sent[ch] - len(s.seen[ch])
	}
	for _, r := range s.sub.Collect(t, total, 30*time.Second) {
		var p struct{ Data int }
		if err := json.Unmarshal(r.Data, &p); err != nil {
			t.Fatal(err)
		}
		s.seen[r.Channel] = append(s.seen[r.Channel], p.Data)
	}
	s.sub.Quiet(t, 300*time.Millisecond)
	for _, ch := range s.all() {
		for i, d := range s.seen[ch] {
			if d != i {
				t.Fatalf("%s: subscriber got %v on %s, want 0…%d once each, in order", what, s.seen[ch], ch, s.sent[ch]-1)
			}
		}
	}
}

// assertSequence checks that pubs carry the data 0…n-1, once each, in
// order.
func assertSequence(t *testing.T, what string, pubs []stacktest.Received, n int) {
	t.Helper()
	if len(pubs) != n {
		t.Fatalf("%s: %d publications, want %d (duplicates?)", what, len(pubs), n)
	}
	for i, r := range pubs {
		var p struct{ Data int }
		if err := json.Unmarshal(r.Data, &p); err != nil || p.Data != i {
			t.Fatalf("%s: publication %d holds %s: out of order, missing or repeated", what, i, r.Data)
		}
	}
}

// status runs `instant bridge status --json`.
func (s *scaleStack) status(t *testing.T) bridge.Status {
	t.Helper()
	bin := stacktest.InstantBinary(t)
	cmd := exec.Command(bin, "bridge", "status", "--json")
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("instant bridge status: %v", err)
	}
	var st bridge.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("instant bridge status printed %s: %v", out, err)
	}
	if st.Partitions != bridge.DefaultPartitions || len(st.Assignment) != bridge.DefaultPartitions+1 {
		t.Errorf("instant bridge status: %d partitions, %d assigned; want %d and %d", st.Partitions, len(st.Assignment), bridge.DefaultPartitions, bridge.DefaultPartitions+1)
	}
	return st
}

// relayed returns what each worker relayed since the counts in before.
func relayed(t *testing.T, before map[*proc]float64, ws ...*proc) map[*proc]float64 {
	t.Helper()
	now := map[*proc]float64{}
	for _, w := range ws {
		now[w] = w.mustMetric(t, "instant_bridge_relayed_total") - before[w]
	}
	return now
}

// TestScaleOut runs real `instant bridge` processes on 34 channels (2 per
// partition in the subject form, 2 in the bare form) through, in turn: 3
// workers sharing the load; one SIGKILLed mid-burst; a 4th added
// mid-burst; one SIGTERMed mid-burst; one SIGSTOPped mid-burst for longer
// than the takeover bound and then SIGCONTed. After each step every
// channel's history in Centrifugo and what a subscriber received are
// complete, in order and free of duplicates; the frozen worker sends
// nothing after it resumes (its leases ran out: fenced).
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several bridge processes")
	}
	s := newScaleStack(t)
	a := s.startWorker(t, "a", false)
	b := s.startWorker(t, "b", false)
	c := s.startWorker(t, "c", true)
	workers := []*proc{a, b, c}
	// Wait for the partitions to spread: every worker holds some, all are held.
	stacktest.WaitFor(t, 30*time.Second, "partitions spread over the workers", func() bool {
		sum := 0.0
		for _, w := range workers {
			v := w.mustMetric(t, "instant_bridge_partitions_owned")
			if v == 0 {
				return false
			}
			sum += v
		}
		return sum == bridge.DefaultPartitions+1
	})

	st := s.status(t)
	if len(st.Workers) != 3 {
		t.Errorf("instant bridge status lists %d workers, want 3: %+v", len(st.Workers), st.Workers)
	}
	for _, p := range st.Assignment {
		if p.Owner == "" {
			t.Errorf("instant bridge status: partition %s has no owner", p.Partition)
		}
	}

	t.Log("three workers")
	s.burst(t, 3400, 3000, -1, nil)
	s.check(t, "three workers")
	share := relayed(t, nil, workers...)
	for _, w := range workers {
		if share[w] == 0 {
			t.Errorf("worker %s relayed nothing of the first burst (%v)", w.name, share)
		}
	}
	t.Logf("shares: a %v, b %v, c %v", share[a], share[b], share[c])

	t.Log("SIGKILL")
	var killed time.Time
	s.burst(t, 1700, 1000, 850, func() { a.signal(t, syscall.SIGKILL); killed = time.Now() })
	s.check(t, "after a SIGKILL")
	t.Logf("all relayed %s after the SIGKILL", time.Since(killed).Round(time.Millisecond))

	t.Log("a fourth worker")
	var d *proc
	s.burst(t, 1700, 500, 300, func() { d = s.startWorker(t, "d", false) })
	s.check(t, "after a worker joined")
	if v := d.mustMetric(t, "instant_bridge_partitions_owned"); v == 0 {
		t.Errorf("the added worker holds no partition")
	}
	t.Logf("the added worker relayed %v", d.mustMetric(t, "instant_bridge_relayed_total"))

	t.Log("SIGTERM")
	s.burst(t, 1700, 1000, 850, func() { b.signal(t, syscall.SIGTERM) })
	select {
	case <-b.exited:
		if b.err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", b.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20s after SIGTERM")
	}
	s.check(t, "after a SIGTERM")

	t.Log("SIGSTOP")
	var stopped time.Time
	took := c.mustMetric(t, "instant_bridge_partition_takeovers_total")
	// It holds partitions the burst feeds while it freezes, so it has
	// pulled envelopes to send when it resumes: either its fence stops the
	// batch, or its pull fails on missed heartbeats first; it must send
	// nothing either way.
	if v := c.mustMetric(t, "instant_bridge_partitions_owned"); v == 0 {
		t.Fatal("the worker to freeze holds no partition: the step would prove nothing")
	}
	s.burst(t, 1700, 1000, 500, func() { c.signal(t, syscall.SIGSTOP); stopped = time.Now() })
	s.check(t, "while a worker is stopped")
	t.Logf("all relayed %s after the SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	before := c.requests.Load()
	c.signal(t, syscall.SIGCONT)
	// It rejoins and takes partitions again (handed over by d). What it
	// sends once it holds a partition again is its right; what counts is
	// what it sent before: requests are read before the takeover count, so
	// n holds only requests sent while it had taken nothing new.
	var n int64
	stacktest.WaitFor(t, 30*time.Second, "the resumed worker takes partitions again", func() bool {
		sent := c.requests.Load() - before
		v, err := c.metric("instant_bridge_partition_takeovers_total")
		if err == nil && v > took {
			return true
		}
		n = sent
		return false
	})
	if n != 0 {
		t.Errorf("the worker sent %d requests to Centrifugo after it resumed, want none (its leases ran out)", n)
	}
	resumed := relayed(t, nil, c)
	s.burst(t, 680, 2000, -1, nil)
	s.check(t, "after the stopped worker resumed")
	if n := relayed(t, resumed, c)[c]; n == 0 {
		t.Error("the resumed worker relayed nothing of the last burst")
	}
}
