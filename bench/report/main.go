// Command report reads the output of the benchmarks in ./bench (one or
// more rounds, as `make bench` runs them) on standard input, echoes it to
// standard error as it comes, and prints on standard output the medians
// over the rounds, the ratios between the bridge and its baselines, the
// BatchSize sweep and the latency the bridge adds. It exits 1 when a
// benchmark failed or nothing was measured.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench report:", err)
		os.Exit(1)
	}
}

// Names of the benchmarks, without the -GOMAXPROCS suffix.
const (
	nameEach      = "BenchmarkPublishEach"
	nameBatch     = "BenchmarkPublishBatch"
	nameConsumer  = "BenchmarkCentrifugoConsumer/max_ack_pending="
	nameCore      = "BenchmarkBridgeCore/batch="
	nameJetStream = "BenchmarkBridgeJetStream"
	nameEndpoint  = "BenchmarkPublishBatchEndpoint"
	nameRedisCons = "BenchmarkRedisEngine/consumer/max_ack_pending="
	nameRedisJS   = "BenchmarkRedisEngine/bridge-jetstream"
	nameOutage    = "BenchmarkOutageRSS"
	nameScaleOut  = "BenchmarkScaleOut/workers="
	nameTakeover  = "BenchmarkTakeover"
	nameLatency   = "BenchmarkLatency/"
	// consumerDefault is Centrifugo's default max_ack_pending.
	consumerDefault = 100
)

// results holds every measurement: by benchmark, one metric set per
// round (in the order the rounds ran).
type results struct {
	config map[string]string
	runs   map[string][]map[string]float64
	order  []string // benchmark names in first-seen order
	failed []string
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)
	failLine  = regexp.MustCompile(`^(--- FAIL|FAIL|panic:)`)
)

// parse reads benchmark output from r, copying it to echo.
func parse(r io.Reader, echo io.Writer) (*results, error) {
	res := &results{config: map[string]string{}, runs: map[string][]map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		if cfg, ok := strings.CutPrefix(line, "# config:"); ok {
			for _, kv := range strings.Fields(cfg) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					res.config[k] = v
				}
			}
			continue
		}
		if failLine.MatchString(line) {
			res.failed = append(res.failed, line)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		metrics, err := parseMetrics(m[3])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m[1], err)
		}
		if _, seen := res.runs[m[1]]; !seen {
			res.order = append(res.order, m[1])
		}
		res.runs[m[1]] = append(res.runs[m[1]], metrics)
	}
	return res, sc.Err()
}

// parseMetrics parses "value unit" pairs.
func parseMetrics(s string) (map[string]float64, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("metrics %q are not value-unit pairs", s)
	}
	m := make(map[string]float64, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %q: %w", f[i+1], err)
		}
		m[f[i+1]] = v
	}
	return m, nil
}

// series returns metric unit of benchmark name, one value per round.
func (r *results) series(name, unit string) []float64 {
	var out []float64
	for _, m := range r.runs[name] {
		if v, ok := m[unit]; ok {
			out = append(out, v)
		}
	}
	return out
}

// stat is a median with the range it was taken from.
type stat struct {
	med, lo, hi float64
	n           int
}

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Sorted(slices.Values(v))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: med, lo: s[0], hi: s[len(s)-1], n: len(s)}
}

// perRound applies f to the values of a and b of the same round.
func perRound(a, b []float64, f func(x, y float64) float64) []float64 {
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		out = append(out, f(a[i], b[i]))
	}
	return out
}

// rate returns the msg/s of benchmark name per round: from Centrifugo's
// first publication (steady-msg/s) where measured, else from the start.
func (r *results) rate(name string) []float64 {
	if v := r.series(name, "steady-msg/s"); len(v) > 0 {
		return v
	}
	return r.series(name, "msg/s")
}

// cpuPerMsg returns, per round, the CPU time per message of Centrifugo,
// its Redis server (if any) and this process together, in µs.
func (r *results) cpuPerMsg(name string) []float64 {
	var out []float64
	for _, m := range r.runs[name] {
		c, ok1 := m["cent-cpu-us/msg"]
		p, ok2 := m["proc-cpu-us/msg"]
		if ok1 && ok2 {
			out = append(out, c+p+m["redis-cpu-us/msg"])
		}
	}
	return out
}

// coresBusy returns, per round, the CPU cores Centrifugo, its Redis
// server and this process kept busy together: CPU time per message times
// messages per second.
func (r *results) coresBusy(name string) []float64 {
	var out []float64
	for i, cpu := range r.cpuPerMsg(name) {
		out = append(out, cpu*r.runs[name][i]["msg/s"]/1e6)
	}
	return out
}

func run(in io.Reader, out, echo io.Writer) error {
	res, err := parse(in, echo)
	if err != nil {
		return err
	}
	if len(res.runs) == 0 {
		return errors.New("no benchmark results in the input")
	}
	w := &writer{w: out}
	res.print(w)
	if w.err != nil {
		return w.err
	}
	if len(res.failed) > 0 {
		return fmt.Errorf("%d failure line(s), first: %s", len(res.failed), res.failed[0])
	}
	return nil
}

// writer remembers the first write error.
type writer struct {
	w   io.Writer
	err error
}

func (w *writer) printf(format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, format, args...)
	}
}

func (r *results) rounds() int {
	n := 0
	for _, v := range r.runs {
		n = max(n, len(v))
	}
	return n
}

func (r *results) print(w *writer) {
	cfg := r.config
	defBatch := cfg["default-batch-size"]
	w.printf("\n== instant bench: %d round(s) on this machine (GOMAXPROCS %s); medians over rounds, [min–max] ==\n",
		r.rounds(), or(cfg["gomaxprocs"], "?"))
	w.printf("throughput runs: %s messages over %s channels, ~150-byte envelopes, no websocket subscriber;\n",
		or(cfg["msgs"], "?"), or(cfg["channels"], "?"))
	w.printf("measured until Centrifugo's channel streams hold them all; for (c), (d) and (e) from Centrifugo's first\n")
	w.printf("publication (w/ start: from the start, which for (e) includes the bridge's own start). CPU µs/msg (whole\n")
	w.printf("run): Centrifugo / its Redis server / this process (the NATS server, the bridge, the load generator);\n")
	w.printf("cores: all together, of %s.\n\n", or(cfg["gomaxprocs"], "?"))

	type row struct {
		label, name string
		optional    bool
	}
	consumerLabel := func(v string) string {
		if v == strconv.Itoa(consumerDefault) {
			return fmt.Sprintf("(c) Centrifugo nats_jetstream consumer (max_ack_pending %d, default)", consumerDefault)
		}
		return "    same consumer, max_ack_pending " + v
	}
	rows := []row{
		{"(a) API publish per message, sequential", nameEach, false},
		{"(b) gocent Pipe (legacy /api), batches of 500, sequential", nameBatch, false},
		{"(b') /api/batch (the bridge's client), batches of 500 (ceiling)", nameEndpoint, false},
		{consumerLabel(strconv.Itoa(consumerDefault)), nameConsumer + strconv.Itoa(consumerDefault), false},
	}
	for _, name := range r.order {
		if v, ok := strings.CutPrefix(name, nameConsumer); ok && v != strconv.Itoa(consumerDefault) {
			rows = append(rows, row{consumerLabel(v), name, true})
		}
	}
	rows = append(rows,
		row{"(d) bridge, core mode (BatchSize " + defBatch + ", default)", nameCore + defBatch, false},
		row{"(e) bridge, JetStream mode (defaults)", nameJetStream, false},
	)
	w.printf("%-72s %9s %19s %6s %6s %6s %6s %9s\n", "throughput, memory engine", "msg/s", "[min–max]", "cent", "redis", "proc", "cores", "w/ start")
	for _, row := range rows {
		if row.optional && len(r.runs[row.name]) == 0 {
			continue
		}
		r.throughputRow(w, row.label, row.name)
	}
	if r.has(nameRedisCons, nameRedisJS) {
		w.printf("\n%-72s\n", "throughput, Centrifugo on its Redis engine (local redis-server)")
		r.throughputRow(w, consumerLabel(strconv.Itoa(consumerDefault)), nameRedisCons+strconv.Itoa(consumerDefault))
		for _, name := range r.order {
			if v, ok := strings.CutPrefix(name, nameRedisCons); ok && v != strconv.Itoa(consumerDefault) {
				r.throughputRow(w, consumerLabel(v), name)
			}
		}
		r.throughputRow(w, "(e) bridge, JetStream mode (defaults)", nameRedisJS)
	}

	r.printFirst(w, []string{nameConsumer + strconv.Itoa(consumerDefault), nameConsumer + "1000", nameCore + defBatch, nameJetStream,
		nameRedisCons + strconv.Itoa(consumerDefault), nameRedisCons + "1000", nameRedisJS})

	w.printf("\n%-44s %7s %15s  %s\n", "ratio (of medians)", "value", "[per round]", "target")
	a, b, c := r.rate(nameEach), r.rate(nameBatch), r.rate(nameConsumer+strconv.Itoa(consumerDefault))
	b2, c1000 := r.rate(nameEndpoint), r.rate(nameConsumer+"1000")
	d, e := r.rate(nameCore+defBatch), r.rate(nameJetStream)
	r.ratioRow(w, "(e)/(c) JetStream bridge vs consumer", e, c, 1.2)
	if len(c1000) > 0 {
		r.ratioRow(w, "(e)/(c) vs consumer, max_ack_pending 1000", e, c1000, 1.0)
	}
	if re, rc := r.rate(nameRedisJS), r.rate(nameRedisCons+strconv.Itoa(consumerDefault)); len(re) > 0 || len(rc) > 0 {
		r.ratioRow(w, "Redis engine: (e)/(c)", re, rc, 2)
		if rc1000 := r.rate(nameRedisCons + "1000"); len(rc1000) > 0 {
			r.ratioRow(w, "Redis engine: (e)/(c), max_ack_pending 1000", re, rc1000, 0)
		}
	}
	r.ratioRow(w, "(d)/(b') core bridge vs /api/batch ceiling", d, b2, 0.8)
	r.ratioRow(w, "(d)/(a) core bridge vs per-message", d, a, 10)
	r.ratioRow(w, "(e)/(a) JetStream bridge vs per-message", e, a, 10)
	r.ratioRow(w, "(b')/(b) /api/batch vs gocent Pipe", b2, b, 0)
	r.ratioRow(w, "(c)/(b') consumer vs /api/batch ceiling", c, b2, 0)
	w.printf("%-44s %7s %15s  %s\n", "CPU per message, all processes (lower wins)", "", "", "")
	r.cpuRow(w, "(e)/(c) memory engine", nameJetStream, nameConsumer+strconv.Itoa(consumerDefault))
	if r.has(nameRedisCons, nameRedisJS) {
		r.cpuRow(w, "(e)/(c) Redis engine", nameRedisJS, nameRedisCons+strconv.Itoa(consumerDefault))
	}

	r.printSweep(w, b2, defBatch)
	r.printScaleOut(w)
	r.printLatency(w)
	r.printOutage(w)
	r.printGetToken(w)
}

// printFirst prints, for the benchmarks among names that measured it, the
// time from the start of a run to Centrifugo's first publication: part of
// the run's time, e.g. a bridge's start (leases, consumers).
func (r *results) printFirst(w *writer, names []string) {
	var parts []string
	for _, name := range names {
		if f := summarize(r.series(name, "first-ms")); f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(name, "Benchmark"), f.med))
		}
	}
	if len(parts) > 0 {
		w.printf("\nms from the start of a run to Centrifugo's first publication (in w/ start, not in msg/s):\n  %s\n", strings.Join(parts, ", "))
	}
}

// has reports whether any benchmark name starts with one of prefixes.
func (r *results) has(prefixes ...string) bool {
	for _, name := range r.order {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	}
	return false
}

// cpuRow prints the ratio of the CPU per message of num and den, all
// processes together, with the target ≤ 1.
func (r *results) cpuRow(w *writer, label, num, den string) {
	n, d := r.cpuPerMsg(num), r.cpuPerMsg(den)
	sn, sd := summarize(n), summarize(d)
	if sn.n == 0 || sd.n == 0 {
		w.printf("  %-42s %7s\n", label, "n/a")
		return
	}
	ratio := sn.med / sd.med
	pr := summarize(perRound(n, d, func(x, y float64) float64 { return x / y }))
	verdict := "met"
	if ratio > 1 {
		verdict = "NOT met"
	}
	w.printf("  %-42s %7.2f %15s  ≤ 1: %s (%.1f vs %.1f µs/msg)\n", label, ratio, fmt.Sprintf("[%.2f–%.2f]", pr.lo, pr.hi), verdict, sn.med, sd.med)
}

// printScaleOut prints the JetStream bridge's throughput by number of
// workers and the takeover time after a SIGKILL.
func (r *results) printScaleOut(w *writer) {
	if !r.has(nameScaleOut, nameTakeover) {
		return
	}
	w.printf("\n%-72s\n", "bridge workers, JetStream mode (defaults, in this process; with 2 cores expect flat or falling)")
	for _, n := range []string{"1", "2", "3"} {
		if len(r.runs[nameScaleOut+n]) > 0 {
			r.throughputRow(w, "  "+n+" worker(s)", nameScaleOut+n)
		}
	}
	if t := summarize(r.series(nameTakeover, "takeover-ms")); t.n > 0 {
		worst := summarize(r.series(nameTakeover, "takeover-max-ms"))
		verdict := "met"
		if worst.hi >= 10000 {
			verdict = "NOT met"
		}
		w.printf("  takeover after a SIGKILL (median of 5 per round): %.0f ms [%.0f–%.0f], slowest %.0f ms; target < 10 s: %s\n",
			t.med, t.lo, t.hi, worst.hi, verdict)
	}
}

// printOutage prints the bridge's memory during a Centrifugo outage.
func (r *results) printOutage(w *writer) {
	peak := summarize(r.series(nameOutage, "peak-rss-MB"))
	if peak.n == 0 {
		return
	}
	end, drain := summarize(r.series(nameOutage, "end-rss-MB")), summarize(r.series(nameOutage, "drain-s"))
	verdict := "met"
	if peak.med >= 100 {
		verdict = "NOT met"
	}
	w.printf("\nbridge (instant bridge, own process) during a Centrifugo outage of %s with %s envelopes waiting\n",
		or(r.config["outage"], "?"), or(r.config["outage-msgs"], "?"))
	w.printf("  peak RSS %.1f MB [%.1f–%.1f]  target < 100 MB: %s;  RSS at the end %.1f MB;  drained %.1f s after the restart\n",
		peak.med, peak.lo, peak.hi, verdict, end.med, drain.med)
}

// printGetToken prints the auth module's get_token load figures.
func (r *results) printGetToken(w *writer) {
	const name = "BenchmarkGetToken"
	rate := summarize(r.series(name, "tokens/s"))
	if rate.n == 0 {
		return
	}
	p50, p99 := summarize(r.series(name, "p50-ms")), summarize(r.series(name, "p99-ms"))
	w.printf("\nauth get_token, 20 channels per user (21 tokens per answer), 8 concurrent clients, `instant auth` in its own process\n")
	w.printf("  answers/s %8.0f [%.0f–%.0f]   p50 %.2f ms [%.2f–%.2f]   p99 %.2f ms [%.2f–%.2f]\n",
		rate.med, rate.lo, rate.hi, p50.med, p50.lo, p50.hi, p99.med, p99.lo, p99.hi)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *results) throughputRow(w *writer, label, name string) {
	s := summarize(r.rate(name))
	if s.n == 0 {
		w.printf("%-72s %9s\n", label, "missing")
		return
	}
	start := ""
	if len(r.series(name, "steady-msg/s")) > 0 {
		start = fmt.Sprintf("%.0f", summarize(r.series(name, "msg/s")).med)
	}
	cent := summarize(r.series(name, "cent-cpu-us/msg"))
	proc := summarize(r.series(name, "proc-cpu-us/msg"))
	redis := "-"
	if rs := summarize(r.series(name, "redis-cpu-us/msg")); rs.n > 0 {
		redis = fmt.Sprintf("%.1f", rs.med)
	}
	cores := summarize(r.coresBusy(name))
	w.printf("%-72s %9.0f %19s %6.1f %6s %6.1f %6.2f %9s\n", label, s.med, fmt.Sprintf("[%.0f–%.0f]", s.lo, s.hi), cent.med, redis, proc.med, cores.med, start)
}

func (r *results) ratioRow(w *writer, label string, num, den []float64, target float64) {
	sn, sd := summarize(num), summarize(den)
	if sn.n == 0 || sd.n == 0 {
		w.printf("%-44s %7s\n", label, "n/a")
		return
	}
	ratio := sn.med / sd.med
	pr := summarize(perRound(num, den, func(x, y float64) float64 { return x / y }))
	verdict := ""
	if target > 0 {
		verdict = fmt.Sprintf("≥ %g: ", target)
		if ratio >= target {
			verdict += "met"
		} else {
			verdict += "NOT met"
		}
	}
	w.printf("%-44s %7.2f %15s  %s\n", label, ratio, fmt.Sprintf("[%.2f–%.2f]", pr.lo, pr.hi), verdict)
}

func (r *results) printSweep(w *writer, ceiling []float64, defBatch string) {
	type entry struct {
		size int
		name string
		s    stat
	}
	var sweep []entry
	for _, name := range r.order {
		if v, ok := strings.CutPrefix(name, nameCore); ok {
			size, err := strconv.Atoi(v)
			if err == nil {
				sweep = append(sweep, entry{size, name, summarize(r.rate(name))})
			}
		}
	}
	if len(sweep) == 0 {
		return
	}
	slices.SortFunc(sweep, func(x, y entry) int { return x.size - y.size })
	best := slices.MaxFunc(sweep, func(x, y entry) int {
		switch {
		case x.s.med < y.s.med:
			return -1
		case x.s.med > y.s.med:
			return 1
		}
		return 0
	})
	// won counts, per round, the size with the highest msg/s.
	won := map[int]int{}
	for round := range r.rounds() {
		top, topSize := -1.0, 0
		for _, e := range sweep {
			if v := r.rate(e.name); round < len(v) && v[round] > top {
				top, topSize = v[round], e.size
			}
		}
		if top >= 0 {
			won[topSize]++
		}
	}
	cm := summarize(ceiling).med
	w.printf("\nbridge BatchSize sweep, core mode\n%10s %9s %19s %8s %6s %6s %6s %6s\n", "BatchSize", "msg/s", "[min–max]", "vs (b')", "cent", "proc", "cores", "won")
	for _, e := range sweep {
		mark := ""
		if e.size == best.size {
			mark += "  highest median"
		}
		if strconv.Itoa(e.size) == defBatch {
			mark += "  (current default)"
		}
		vs := "n/a"
		if cm > 0 {
			vs = fmt.Sprintf("%.2f", e.s.med/cm)
		}
		w.printf("%10d %9.0f %19s %8s %6.1f %6.1f %6.2f %6s%s\n", e.size, e.s.med, fmt.Sprintf("[%.0f–%.0f]", e.s.lo, e.s.hi), vs,
			summarize(r.series(e.name, "cent-cpu-us/msg")).med, summarize(r.series(e.name, "proc-cpu-us/msg")).med,
			summarize(r.coresBusy(e.name)).med, fmt.Sprintf("%d/%d", won[e.size], r.rounds()), mark)
	}
	w.printf("highest median: BatchSize %d; won: the rounds in which a size was the fastest\n", best.size)
}

func (r *results) printLatency(w *writer) {
	cfg := r.config
	direct := nameLatency + "direct"
	if len(r.runs[direct]) == 0 {
		return
	}
	w.printf("\nlatency, send → websocket arrival at a centrifuge-go subscriber, %s msg/s, %s messages per run (ms)\n",
		or(cfg["latency-rate"], "?"), or(cfg["latency-msgs"], "?"))
	w.printf("%-40s %7s %15s %7s %15s %7s\n", "", "p50", "[min–max]", "p99", "[min–max]", "max")
	label := map[string]string{
		direct:                           "direct API publish (gocent Publish)",
		nameLatency + "bridge-core":      "NATS publish → bridge, core mode",
		nameLatency + "bridge-jetstream": "NATS publish → bridge, JetStream mode",
	}
	for _, name := range []string{direct, nameLatency + "bridge-core", nameLatency + "bridge-jetstream"} {
		p50, p99, mx := summarize(r.series(name, "p50-ms")), summarize(r.series(name, "p99-ms")), summarize(r.series(name, "max-ms"))
		if p50.n == 0 {
			continue
		}
		w.printf("%-40s %7.3f %15s %7.3f %15s %7.2f\n", label[name], p50.med, fmt.Sprintf("[%.3f–%.3f]", p50.lo, p50.hi),
			p99.med, fmt.Sprintf("[%.3f–%.3f]", p99.lo, p99.hi), mx.med)
	}
	for _, mode := range []string{"core", "jetstream"} {
		for _, q := range []struct {
			unit   string
			target float64
		}{{"p50-ms", 1}, {"p99-ms", 5}} {
			dq, bq := r.series(direct, q.unit), r.series(nameLatency+"bridge-"+mode, q.unit)
			if len(bq) == 0 || len(dq) == 0 {
				continue
			}
			added := summarize(bq).med - summarize(dq).med
			pr := summarize(perRound(bq, dq, func(x, y float64) float64 { return x - y }))
			verdict := "met"
			if added >= q.target {
				verdict = "NOT met"
			}
			w.printf("added by the bridge, %-10s %s %+.3f ms [per round %+.3f–%+.3f]  target < %g ms: %s\n",
				mode+":", q.unit[:3], added, pr.lo, pr.hi, q.target, verdict)
		}
	}
}
