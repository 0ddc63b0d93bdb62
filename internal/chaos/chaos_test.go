package chaos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/internal/stacktest"
)

// settings size a run.
type settings struct {
	channels   int           // valid channels, each with its own sequence
	producers  int           // producer connections, spread over the NATS nodes
	rate       int           // envelopes per second over all producers
	envelopes  int           // stop after this many (0: when the schedule is done)
	requests   int           // requests per second on the request channels
	faults     []int         // rows of schedule to run, from 1 (nil: all)
	hold       time.Duration // how long a killed process stays down
	catchUp    time.Duration // bound on the wait for the system to relay everything after a fault
	historyMax int           // Centrifugo history_size: at least the envelopes of one channel
}

var (
	// short runs in `make test`: a fault of each kind of process that
	// costs seconds, not the lease bound (SIGSTOP) or a full rolling
	// restart.
	short = settings{channels: 50, producers: 3, rate: 60, requests: 2, faults: []int{1, 4, 5}, hold: 2 * time.Second,
		catchUp: 90 * time.Second, historyMax: 10000}
	// long is `make chaos`: every fault, 100,000 envelopes at a rate this
	// 2-core machine relays with room to spare while it runs every
	// process of the stack.
	long = settings{channels: 60, producers: 6, rate: 400, envelopes: 100000, requests: 5,
		hold: 8 * time.Second, catchUp: 180 * time.Second, historyMax: 10000}
)

// fault is one row of the schedule: inject breaks something (and, for
// the faults that heal themselves, heals it); the run then waits until
// everything published so far is relayed.
type fault struct {
	name   string
	inject func(t *testing.T, r *run)
}

// schedule is the fault schedule, in order. Each fault starts after the
// system recovered from the previous one.
var schedule = []fault{
	{"SIGKILL a bridge worker, restart it", func(t *testing.T, r *run) {
		w := running(t, r.s.workers[0])
		w.Signal(t, syscall.SIGKILL)
		_ = w.Wait(10 * time.Second)
		time.Sleep(r.cfg.hold)
		w.Start(t)
	}},
	{"SIGSTOP a bridge worker past the takeover bound, then SIGCONT", func(t *testing.T, r *run) {
		w := running(t, r.s.workers[1])
		w.Signal(t, syscall.SIGSTOP)
		time.Sleep(2*bridge.DefaultLeaseTTL + r.cfg.hold)
		w.Signal(t, syscall.SIGCONT)
	}},
	{"SIGKILL a NATS node, restart it", func(t *testing.T, r *run) {
		n := r.s.nats.Nodes[2]
		n.Signal(t, syscall.SIGKILL)
		_ = n.Wait(10 * time.Second)
		time.Sleep(r.cfg.hold)
		n.Start(t)
		n.WaitHealthy(t, readyTimeout)
	}},
	{"SIGKILL the NATS node leading the INSTANT stream, restart it", func(t *testing.T, r *run) {
		n := r.s.leader(t, "INSTANT")
		r.logf("INSTANT's leader is %s", n.Name)
		n.Signal(t, syscall.SIGKILL)
		_ = n.Wait(10 * time.Second)
		time.Sleep(r.cfg.hold)
		n.Start(t)
		n.WaitHealthy(t, readyTimeout)
	}},
	{"SIGKILL a Centrifugo node, restart it", func(t *testing.T, r *run) {
		c := r.s.cents[1]
		c.Kill(t)
		// Its clients reconnect to the other node, through their load
		// balancer, while it is down, and recover what they missed there.
		start := time.Now()
		r.failover(t)
		r.note("Centrifugo node 2 killed: its 3 websocket clients were connected and subscribed on node 1 again after %v, before node 2 restarted",
			time.Since(start).Round(time.Millisecond))
		time.Sleep(r.cfg.hold)
		c.Start(t)
	}},
	{"restart Redis (SIGTERM)", func(t *testing.T, r *run) {
		r.s.redis.Signal(t, syscall.SIGTERM)
		if err := r.s.redis.Wait(30 * time.Second); err != nil {
			r.logf("redis exit: %v", err)
		}
		r.s.redis.Start(t)
	}},
	{"rolling restart of every bridge worker (SIGTERM)", func(t *testing.T, r *run) {
		for _, w := range r.s.workers {
			running(t, w).Signal(t, syscall.SIGTERM)
			if err := w.Wait(30 * time.Second); err != nil {
				t.Errorf("%s after SIGTERM: %v, want exit status 0", w.Name, err)
			}
			w.Start(t)
			waitHTTP(t, "http://"+w.metrics+"/readyz")
		}
	}},
}

// faultsOf returns the rows of schedule that INSTANT_CHAOS_FAULTS names
// (row numbers from 1, comma-separated, e.g. "1,3"), or else those of
// cfg.faults, or all of them.
func faultsOf(t *testing.T, cfg settings) []fault {
	t.Helper()
	rows := cfg.faults
	if v := os.Getenv("INSTANT_CHAOS_FAULTS"); v != "" {
		rows = nil
		for _, f := range strings.Split(v, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 1 || i > len(schedule) {
				t.Fatalf("INSTANT_CHAOS_FAULTS=%q: want row numbers 1…%d", v, len(schedule))
			}
			rows = append(rows, i)
		}
	}
	if rows == nil {
		return schedule
	}
	var out []fault
	for _, i := range rows {
		out = append(out, schedule[i-1])
	}
	return out
}

// running waits until w runs (the supervisor may be restarting it).
func running(t *testing.T, w *worker) *worker {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !w.Running() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not running for 30s", w.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return w
}

// outcome is what one fault cost.
type outcome struct {
	name       string
	start, end time.Time // the fault, until everything published before its end was relayed
	// gap is the longest time in between in which subscriber all-1 got
	// no envelope of the stream on any channel.
	gap time.Duration
	// channelGap is the recovery time of the fault: the longest time
	// between two publications of one channel arriving at subscriber
	// all-1 (on the Centrifugo node that no fault kills), the channel
	// being gapChannel, over the window from the fault's start to the end
	// of the catch-up; medianGap is the median over the channels.
	channelGap, medianGap time.Duration
	gapChannel            string
}

// TestChaos runs the short run (in `make test`; skipped with -short) or,
// with INSTANT_CHAOS=long, the long one of `make chaos`. Either writes
// artifacts/chaos/report.md and relayed.png.
func TestChaos(t *testing.T) {
	cfg := short
	switch v := os.Getenv("INSTANT_CHAOS"); v {
	case "", "short":
		if testing.Short() {
			t.Skip("the chaos run starts a whole cluster: skipped with -short")
		}
	case "long":
		cfg = long
	default:
		t.Fatalf("INSTANT_CHAOS=%q: want short (the default) or long", v)
	}
	if v := os.Getenv("INSTANT_CHAOS_RATE"); v != "" {
		// A run at another rate, e.g. to look closer at a failure of the
		// long one.
		rate, err := strconv.Atoi(v)
		if err != nil || rate <= 0 {
			t.Fatalf("INSTANT_CHAOS_RATE=%q: want a positive number of envelopes per second", v)
		}
		cfg.rate = rate
	}
	// Registered first, so it runs last: after every cleanup that stops
	// a process, also when the run failed.
	var r *run
	t.Cleanup(func() { checkProcessTable(t, r) })
	r = newRun(t, cfg)
	r.start(t)

	// A calm start, then the schedule.
	time.Sleep(cfg.hold)
	r.waitRelayed(t, "start")
	for _, f := range faultsOf(t, cfg) {
		r.logf("fault: %s", f.name)
		o := outcome{name: f.name, start: time.Now()}
		f.inject(t, r)
		if t.Failed() {
			break
		}
		r.waitRelayed(t, f.name)
		o.end = time.Now()
		r.observe()
		r.logf("recovered after %v", o.end.Sub(o.start).Round(time.Millisecond))
		r.outcomes = append(r.outcomes, o)
	}
	if cfg.envelopes > 0 {
		if int(r.produced.Load()) >= cfg.envelopes {
			r.logf("the producers were done before the schedule: the last faults ran without load")
		}
		r.waitProduced(t)
	}
	r.stop()
	r.waitRelayed(t, "end")
	res := r.check(t)
	report := r.report(res)
	t.Log("\n" + report)
	dir := filepath.Join(stacktest.RepoRoot(t), "artifacts", "chaos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.chart(filepath.Join(dir, "relayed.png")); err != nil {
		t.Errorf("chart: %v", err)
	}
	t.Logf("wrote %s and relayed.png", filepath.Join(dir, "report.md"))
	r.s.stopAll(t)
}

// checkProcessTable fails the test if a process the run started (r may
// be nil when the stack did not come up) or any other child of the test
// (e.g. Chromium) still runs.
func checkProcessTable(t *testing.T, r *run) {
	t.Helper()
	left := map[int]string{}
	if r != nil {
		r.mu.Lock()
		for pid := range r.pids {
			if state, _, ok := procState(pid); ok && state != "Z" {
				left[pid] = "started by the run"
			}
		}
		r.mu.Unlock()
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procState(pid); ok && ppid == os.Getpid() && state != "Z" {
			left[pid] = "a child of the test"
		}
	}
	for pid, why := range left {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("process %d (%s) still runs after the stack stopped: %s", pid, why, strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
}

// procState returns the state and parent of process pid from
// /proc/pid/stat, and whether it exists.
func procState(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, true
}

// staffChannel is the one channel alice may not see.
const staffChannel = "$ops"

// publicChannels is how many of the valid channels are public: the
// browser page, an anonymous visitor, sees those (and the request
// channels); the others are users channels.
const publicChannels = 5

// channelsOf returns the registry of a run: cfg.channels valid channels,
// publicChannels public ones c00… and users channels $c05…, and the
// staff channel (the valid ones, each with its sequence), the public
// request channels, an inactive channel and a channel in a namespace
// Centrifugo does not know.
func channelsOf(cfg settings) (valid, requests []string, all []instant.Channel) {
	requests = []string{"req0", "req1"}
	for _, name := range requests {
		all = append(all, instant.Channel{Name: name, Level: instant.LevelPublic, Active: true})
	}
	for i := range cfg.channels {
		level := instant.LevelUsers
		if i < publicChannels {
			level = instant.LevelPublic
		}
		name := instant.ChannelName(fmt.Sprintf("c%02d", i), level)
		valid = append(valid, name)
		all = append(all, instant.Channel{Name: name, Level: level, Active: true})
	}
	// A staff channel: alice, who is not staff, must never receive it.
	valid = append(valid, staffChannel)
	all = append(all,
		instant.Channel{Name: staffChannel, Level: instant.LevelStaff, Active: true},
		instant.Channel{Name: "inactive", Level: instant.LevelPublic, Active: false},
		instant.Channel{Name: "nons:chaos", Level: instant.LevelPublic, Active: true},
	)
	return valid, requests, all
}

// levelOf returns the level of channel name in all.
func levelOf(all []instant.Channel, name string) instant.Level {
	for _, c := range all {
		if c.Name == name {
			return c.Level
		}
	}
	return ""
}

func get(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dataOf returns the "data" and "id" of a publication.
func dataOf(b []byte) (int, string, error) {
	var p struct {
		ID   string
		Data *int
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Data == nil {
		return 0, "", fmt.Errorf("publication %s: no data (%v)", b, err)
	}
	return *p.Data, p.ID, nil
}
