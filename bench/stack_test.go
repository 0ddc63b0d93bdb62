package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/centrifugal/gocent/v3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
)

var (
	flagMsgs        = flag.Int("msgs", 50000, "messages per throughput run")
	flagLatencyMsgs = flag.Int("latency-msgs", 1500, "messages per latency run")
	flagLatencyRate = flag.Int("latency-rate", 200, "messages per second of a latency run")
	flagBatchSizes  = flag.String("batch-sizes", "50,100,250,500,1000", "bridge BatchSize values swept in core mode (bridge.DefaultBatchSize is added)")
	flagChannels    = flag.Int("channels", 10, "channels the messages are spread over, round robin")
	flagProfileDir  = flag.String("window-profile", "", "directory: write there a CPU profile of this process (NATS server, bridge, load generator) over each measured throughput window; do not combine with -test.cpuprofile")
)

const (
	site         = "Site"
	pollEvery    = 5 * time.Millisecond // completion polling of Centrifugo, at least
	pollShare    = 200                  // and at most once per this share of a run's time so far
	runTimeout   = 2 * time.Minute      // one measured run
	setupTimeout = 30 * time.Second
	warmup       = 20 // latency samples dropped at the start of a run
)

// TestMain prints the settings ahead of the benchmark results, for the
// report.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Printf("# config: msgs=%d channels=%d latency-msgs=%d latency-rate=%d default-batch-size=%d gomaxprocs=%d outage=%v outage-msgs=%d\n",
			*flagMsgs, *flagChannels, *flagLatencyMsgs, *flagLatencyRate, bridge.DefaultBatchSize, runtime.GOMAXPROCS(0), *flagOutage, *flagOutageMsgs)
	}
	m.Run()
}

// channelNames returns the public channels bench0, bench1, ….
func channelNames() []string {
	names := make([]string, *flagChannels)
	for i := range names {
		names[i] = "bench" + strconv.Itoa(i)
	}
	return names
}

// envelope returns envelope number seq: about 150 bytes, as a producer
// would publish it. The seq in its data identifies it at the receiver.
func envelope(seq int) []byte {
	return fmt.Appendf(nil, `{"message":"order %d shipped","data":{"seq":%d,"status":"shipped","items":3,"total":"59.90","user":"alice"},"event_class":"order","bucket":"orders"}`,
		seq, seq)
}

// publication returns the publication data the bridge would send to
// Centrifugo for envelope seq on channel, so that the baselines publish
// the same bytes.
func publication(tb testing.TB, channel string, seq int) []byte {
	tb.Helper()
	env, err := instant.ParseEnvelope(channel, envelope(seq), instant.DefaultMaxPayload)
	if err != nil {
		tb.Fatalf("envelope %d: %v", seq, err)
	}
	data, err := env.Publication(nuid.Next(), site).Encode(instant.EncodingObject)
	if err != nil {
		tb.Fatalf("publication %d: %v", seq, err)
	}
	return data
}

// seqOf returns the seq of publication data.
func seqOf(data []byte) (int, bool) {
	var p struct {
		Data struct {
			Seq *int `json:"seq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Data.Seq == nil {
		return 0, false
	}
	return *p.Data.Seq, true
}

// stack is an optional in-process NATS server and a Centrifugo with the
// bench channels.
type stack struct {
	natsURL  string
	nc       *nats.Conn
	js       jetstream.JetStream
	cent     *stacktest.Centrifugo
	api      *gocent.Client
	channels []string
	proc     *procs
	redis    *stacktest.Redis // Centrifugo's Redis engine, nil for its memory engine
}

// newStack starts an in-process NATS server when withNATS. Start
// Centrifugo with startCentrifugo.
func newStack(b *testing.B, withNATS bool) *stack {
	b.Helper()
	s := &stack{channels: channelNames()}
	if withNATS {
		srv := stacktest.NATS(b)
		s.natsURL = srv.ClientURL()
		s.nc = stacktest.Connect(b, s.natsURL)
		var err error
		if s.js, err = jetstream.New(s.nc); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// startCentrifugo starts Centrifugo with extra merged into its config and
// a history that keeps every publication of b.N runs.
func (s *stack) startCentrifugo(b *testing.B, extra map[string]any) {
	b.Helper()
	history := max(10000, b.N*max(*flagMsgs, *flagLatencyMsgs)/len(s.channels)+1)
	if s.redis != nil {
		extra = maps.Clone(extra)
		if extra == nil {
			extra = map[string]any{}
		}
		extra["engine"] = map[string]any{"type": "redis", "redis": map[string]any{"address": []string{"redis://" + s.redis.Addr()}}}
	}
	s.cent = stacktest.StartCentrifugo(b, stacktest.CentrifugoOptions{Extra: extra, HistorySize: history})
	s.api = newGocent(s.cent)
	s.proc = newProcs()
	if s.redis != nil {
		s.proc.redis = s.redis.PID()
	}
}

// newGocent returns a gocent client with the same HTTP settings as
// centrifugo.New.
func newGocent(c *stacktest.Centrifugo) *gocent.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr, Timeout: centrifugo.DefaultTimeout}
	return gocent.New(gocent.Config{Addr: c.APIURL, Key: c.APIKey, HTTPClient: hc})
}

// accepted returns how many publications Centrifugo holds in the bench
// channels: the sum of their stream top offsets (one API request).
func (s *stack) accepted(ctx context.Context) (uint64, error) {
	pipe := s.api.Pipe()
	for _, ch := range s.channels {
		if err := pipe.AddHistory(ch); err != nil {
			return 0, err
		}
	}
	replies, err := s.api.SendPipe(ctx, pipe)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for i, r := range replies {
		if r.Error != nil {
			return 0, fmt.Errorf("history of %s: %v", s.channels[i], r.Error)
		}
		var h gocent.HistoryResult
		if err := json.Unmarshal(r.Result, &h); err != nil {
			return 0, fmt.Errorf("history of %s: %w", s.channels[i], err)
		}
		sum += h.Offset
	}
	return sum, nil
}

// waitAccepted polls Centrifugo until the bench channels hold target
// publications and returns when it saw them. It fails the benchmark on
// timeout or when there are more than target.
func (s *stack) waitAccepted(b *testing.B, target uint64) time.Time {
	b.Helper()
	p := s.waitAcceptedFrom(b, 0, target)
	return p.done
}

// progress is how a run went: when Centrifugo was first seen holding more
// than the run's first publication and how many it held then
// (firstCount), and when it held them all (done).
type progress struct {
	first, done time.Time
	firstCount  uint64
}

// waitAcceptedFrom is waitAccepted for a run that starts with from
// publications in Centrifugo.
func (s *stack) waitAcceptedFrom(b *testing.B, from, target uint64) progress {
	b.Helper()
	start := time.Now()
	deadline := start.Add(runTimeout)
	var p progress
	for {
		n, err := s.accepted(context.Background())
		now := time.Now()
		if p.first.IsZero() && n > from {
			p.first, p.firstCount = now, n-from
		}
		switch {
		case err != nil:
			b.Fatalf("polling Centrifugo: %v", err)
		case n == target:
			p.done = now
			return p
		case n > target:
			b.Fatalf("Centrifugo holds %d publications, want %d: some were relayed twice", n, target)
		case now.After(deadline):
			b.Fatalf("Centrifugo holds %d of %d publications after %v", n, target, runTimeout)
		}
		// Polling costs Centrifugo (and Redis) CPU: poll less often as
		// the run goes on, ending it at most 1/pollShare late.
		time.Sleep(max(pollEvery, time.Since(start)/pollShare))
	}
}

// checkOrder reads the whole history of every bench channel and checks
// that it holds want publications in all, each channel's in increasing
// seq order.
func (s *stack) checkOrder(b *testing.B, want int) {
	b.Helper()
	total := 0
	for _, ch := range s.channels {
		h, err := s.api.History(context.Background(), ch, gocent.WithLimit(gocent.NoLimit))
		if err != nil {
			b.Fatalf("history of %s: %v", ch, err)
		}
		last := -1
		for _, p := range h.Publications {
			seq, ok := seqOf(p.Data)
			if !ok {
				b.Fatalf("%s: publication without seq: %s", ch, p.Data)
			}
			if seq <= last {
				b.Fatalf("%s: seq %d after %d: out of order", ch, seq, last)
			}
			last = seq
		}
		total += len(h.Publications)
	}
	if total != want {
		b.Fatalf("the channels hold %d publications, want %d", total, want)
	}
}

// startBridge runs a bridge with cfg on its own NATS connection; stop
// ends it and waits for Run to return (also done at cleanup). The
// bridge logs nothing and records metrics nowhere.
func (s *stack) startBridge(b *testing.B, cfg bridge.Config) (stop func() error) {
	b.Helper()
	return s.runBridge(b, cfg, nil)
}

// startMeasuredBridge runs a bridge in JetStream mode with default
// settings until the benchmark ends and returns its metrics.
func (s *stack) startMeasuredBridge(b *testing.B) *bridge.Metrics {
	b.Helper()
	m := bridge.NewMetrics(nil)
	s.runBridge(b, bridge.Config{}, m)
	return m
}

// runBridge is startBridge with metrics m (nil: nowhere).
func (s *stack) runBridge(b *testing.B, cfg bridge.Config, m *bridge.Metrics) (stop func() error) {
	b.Helper()
	chs := make([]instant.Channel, len(s.channels))
	for i, name := range s.channels {
		chs[i] = instant.Channel{Name: name, Level: instant.LevelPublic, Active: true}
	}
	nc := stacktest.Connect(b, s.natsURL)
	relay := centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})
	br, err := bridge.New(nc, registry.Static(chs), relay, cfg, nil, m)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	b.Cleanup(func() {
		if err := stop(); err != nil {
			b.Errorf("bridge: %v", err)
		}
	})
	return stop
}

// preload stores envelopes seq from..to-1 in JetStream on subject
// prefix.<channel>, channels round robin, with header h, body made by
// body; it returns once JetStream stored them all. It publishes in
// windows of preloadWindow, so that a slow machine does not stall the
// asynchronous publisher.
func (s *stack) preload(b *testing.B, prefix string, from, to int, h nats.Header, body func(channel string, seq int) []byte) {
	b.Helper()
	const preloadWindow = 1000
	for lo := from; lo < to; lo += preloadWindow {
		acks := make([]jetstream.PubAckFuture, 0, preloadWindow)
		for seq := lo; seq < min(to, lo+preloadWindow); seq++ {
			ch := s.channels[seq%len(s.channels)]
			m := &nats.Msg{Subject: prefix + "." + ch, Data: body(ch, seq), Header: h}
			f, err := s.js.PublishMsgAsync(m)
			if err != nil {
				b.Fatalf("preload: %v", err)
			}
			acks = append(acks, f)
		}
		timeout := time.After(runTimeout)
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatalf("preload: %v", err)
			case <-timeout:
				b.Fatal("preload: JetStream did not acknowledge in time")
			}
		}
	}
}

// since returns the CPU time used between c0 and c.
func (c cpuSample) since(c0 cpuSample) cpuSample {
	if !c.ok || !c0.ok {
		return cpuSample{}
	}
	return cpuSample{centrifugo: c.centrifugo - c0.centrifugo, redis: c.redis - c0.redis, self: c.self - c0.self, ok: true}
}

// profileWindow starts a CPU profile of this process into
// -window-profile/<benchmark>.prof, when that flag is set, and returns
// the function that stops it.
func profileWindow(b *testing.B) (stop func()) {
	b.Helper()
	if *flagProfileDir == "" {
		return func() {}
	}
	name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name())
	f, err := os.Create(filepath.Join(*flagProfileDir, name+".prof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("window profile: %v", err)
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	})
}

// run is one measured run.
type run struct {
	msgs int
	wall time.Duration
	cpu  cpuSample
	// first is the time from the start until Centrifugo held a first
	// publication, and steady the run from then on: the messages and the
	// time after that first sight. Zero when not measured.
	first      time.Duration
	steadyMsgs int
	steadyWall time.Duration
}

// measured returns the run of msgs messages started at t0 that went as p.
func measured(msgs int, t0 time.Time, p progress, cpu cpuSample) run {
	return run{msgs: msgs, wall: p.done.Sub(t0), cpu: cpu, first: p.first.Sub(t0),
		steadyMsgs: msgs - int(p.firstCount), steadyWall: p.done.Sub(p.first)}
}

// measure runs the b.N iterations of a throughput benchmark, -msgs
// messages each, then checks the order of them all (checkOrder) and
// reports them. An iteration readies messages from..to-1 untimed, calls
// start, and sends them: the clock and the CPU samples (and the
// -window-profile) run from start until the iteration returns or, with
// accepted, until Centrifugo holds them all (see measured). The func the
// iteration returns, if not nil, runs once the clock has stopped.
func (s *stack) measure(b *testing.B, accepted bool, iteration func(from, to int, start func()) (after func())) {
	b.Helper()
	n, seq := *flagMsgs, 0
	var runs []run
	for range b.N {
		var (
			prof = func() {}
			c0   cpuSample
			t0   time.Time
		)
		start := func() { prof = profileWindow(b); c0, t0 = s.proc.sample(), time.Now() }
		after := iteration(seq, seq+n, start)
		r := run{msgs: n, wall: time.Since(t0)}
		if accepted {
			r = measured(n, t0, s.waitAcceptedFrom(b, uint64(seq), uint64(seq+n)), cpuSample{})
		}
		prof()
		r.cpu = s.proc.sample().since(c0)
		runs = append(runs, r)
		if after != nil {
			after()
		}
		seq += n
	}
	s.checkOrder(b, seq)
	report(b, runs)
}

// report reports runs as msg/s and as CPU time per message of Centrifugo
// and of this process.
func report(b *testing.B, runs []run) {
	b.Helper()
	var msgs int
	var wall, cent, redis, self, first, steadyWall time.Duration
	steadyMsgs := 0
	cpuOK := true
	for _, r := range runs {
		first += r.first
		steadyMsgs += r.steadyMsgs
		steadyWall += r.steadyWall
		msgs += r.msgs
		wall += r.wall
		cent += r.cpu.centrifugo
		redis += r.cpu.redis
		self += r.cpu.self
		cpuOK = cpuOK && r.cpu.ok
	}
	b.ReportMetric(0, "ns/op") // one op is a whole run
	b.ReportMetric(float64(msgs)/wall.Seconds(), "msg/s")
	if first > 0 {
		b.ReportMetric(float64(first.Microseconds())/1e3/float64(len(runs)), "first-ms")
	}
	if steadyWall > 0 && steadyMsgs > 0 {
		b.ReportMetric(float64(steadyMsgs)/steadyWall.Seconds(), "steady-msg/s")
	}
	if cpuOK {
		b.ReportMetric(float64(cent.Nanoseconds())/1e3/float64(msgs), "cent-cpu-us/msg")
		b.ReportMetric(float64(self.Nanoseconds())/1e3/float64(msgs), "proc-cpu-us/msg")
		if redis > 0 {
			b.ReportMetric(float64(redis.Nanoseconds())/1e3/float64(msgs), "redis-cpu-us/msg")
		}
	}
}

// latencySub is a websocket client subscribed to the bench channels that
// stamps the arrival of every publication by its seq.
type latencySub struct {
	mu   sync.Mutex
	recv []time.Time // by seq
	got  int
	all  chan struct{} // closed when every seq arrived
}

func (s *stack) subscribeLatency(b *testing.B, n int) *latencySub {
	b.Helper()
	l := &latencySub{recv: make([]time.Time, n), all: make(chan struct{})}
	client := centrifuge.NewJsonClient(s.cent.WSURL, centrifuge.Config{Token: s.cent.ConnToken(b, "bench")})
	b.Cleanup(client.Close)
	var subs []*centrifuge.Subscription
	for _, ch := range s.channels {
		sub, err := client.NewSubscription(ch, centrifuge.SubscriptionConfig{Token: s.cent.SubToken(b, "bench", ch)})
		if err != nil {
			b.Fatal(err)
		}
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			now := time.Now()
			seq, ok := seqOf(e.Data)
			l.mu.Lock()
			defer l.mu.Unlock()
			if !ok || seq < 0 || seq >= n || !l.recv[seq].IsZero() {
				return
			}
			l.recv[seq] = now
			if l.got++; l.got == n {
				close(l.all)
			}
		})
		subs = append(subs, sub)
	}
	if err := client.Connect(); err != nil {
		b.Fatal(err)
	}
	for _, sub := range subs {
		if err := sub.Subscribe(); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(setupTimeout)
	pending := func(s *centrifuge.Subscription) bool { return s.State() != centrifuge.SubStateSubscribed }
	for slices.ContainsFunc(subs, pending) {
		if time.Now().After(deadline) {
			b.Fatal("latency subscriber: subscriptions not confirmed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l
}

// measureLatency sends n messages at rate per second with send(seq, channel)
// and reports the p50 and p99 of send → websocket arrival, leaving out the
// first warmup messages.
func (s *stack) measureLatency(b *testing.B, n, rate int, send func(seq int, channel string) error) {
	b.Helper()
	l := s.subscribeLatency(b, n)
	sent := make([]time.Time, n)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for seq := range n {
		<-tick.C
		sent[seq] = time.Now()
		if err := send(seq, s.channels[seq%len(s.channels)]); err != nil {
			b.Fatalf("send %d: %v", seq, err)
		}
	}
	select {
	case <-l.all:
	case <-time.After(runTimeout):
		l.mu.Lock()
		got := l.got
		l.mu.Unlock()
		b.Fatalf("latency: %d of %d publications arrived", got, n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d := make([]time.Duration, 0, n-warmup)
	for seq := warmup; seq < n; seq++ {
		d = append(d, l.recv[seq].Sub(sent[seq]))
	}
	slices.Sort(d)
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / 1e6 }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

// batchSizes returns the sizes of the sweep, with bridge.DefaultBatchSize.
func batchSizes(b *testing.B) []int {
	b.Helper()
	sizes := []int{bridge.DefaultBatchSize}
	for f := range strings.SplitSeq(*flagBatchSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("-batch-sizes: %q is not a positive number", f)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes)
}
