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
	hold       time.Duration // how long a killed process stays down
	catchUp    time.Duration // bound on the wait for the system to relay everything after a fault
	historyMax int           // Centrifugo history_size: at least the envelopes of one channel
}

var (
	short = settings{channels: 50, producers: 3, rate: 60, requests: 2, hold: 3 * time.Second,
		catchUp: 90 * time.Second, historyMax: 10000}
	long = settings{channels: 60, producers: 6, rate: 1000, envelopes: 100000, requests: 5,
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
// (row numbers from 1, comma-separated, e.g. "1,3"), or all of them.
func faultsOf(t *testing.T) []fault {
	t.Helper()
	v := os.Getenv("INSTANT_CHAOS_FAULTS")
	if v == "" {
		return schedule
	}
	var out []fault
	for _, f := range strings.Split(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 1 || i > len(schedule) {
			t.Fatalf("INSTANT_CHAOS_FAULTS=%q: want row numbers 1…%d", v, len(schedule))
		}
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
	name     string
	start    time.Time
	recovery time.Duration // from the fault until everything published before the end of it was relayed
	gap      time.Duration // the longest time without relaying in between (relayed_total of the workers)
}

func TestChaos(t *testing.T) {
	cfg := short
	switch os.Getenv("INSTANT_CHAOS") {
	case "":
		t.Skip("set INSTANT_CHAOS=1 (short run) or INSTANT_CHAOS=long (make chaos)")
	case "long":
		cfg = long
	}
	if v := os.Getenv("INSTANT_CHAOS_RATE"); v != "" {
		// A short run at another rate, e.g. to look closer at a failure
		// of the long one.
		rate, err := strconv.Atoi(v)
		if err != nil || rate <= 0 {
			t.Fatalf("INSTANT_CHAOS_RATE=%q: want a positive number of envelopes per second", v)
		}
		cfg.rate = rate
	}
	r := newRun(t, cfg)
	r.start(t)

	// A calm start, then the schedule.
	time.Sleep(cfg.hold)
	r.waitRelayed(t, "start")
	for _, f := range faultsOf(t) {
		r.logf("fault: %s", f.name)
		o := outcome{name: f.name, start: time.Now()}
		f.inject(t, r)
		if t.Failed() {
			break
		}
		r.waitRelayed(t, f.name)
		o.recovery = time.Since(o.start)
		r.observe()
		o.gap = r.longestGap(o.start, time.Now())
		r.logf("recovered after %v; longest gap without relaying %v", o.recovery.Round(time.Millisecond), o.gap.Round(time.Millisecond))
		r.outcomes = append(r.outcomes, o)
	}
	if cfg.envelopes > 0 {
		r.waitProduced(t)
	}
	r.stop()
	r.waitRelayed(t, "end")
	res := r.check(t)
	report := r.report(res)
	t.Log("\n" + report)
	if os.Getenv("INSTANT_CHAOS") == "long" {
		dir := filepath.Join(stacktest.RepoRoot(t), "artifacts", "chaos")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.s.stopAll(t)
	checkProcessTable(t, r)
}

// checkProcessTable fails the test if a process the run started still
// runs.
func checkProcessTable(t *testing.T, r *run) {
	t.Helper()
	for pid := range r.pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if !strings.Contains(string(status), "State:\tZ") {
				t.Errorf("process %d still runs after the stack stopped", pid)
			}
		}
	}
}

// staffChannel is the one channel alice may not see.
const staffChannel = "$ops"

// channelsOf returns the registry of a run: cfg.channels public channels
// c00… and the staff channel (the valid ones, each with its sequence),
// the request channels, an inactive channel and a channel in a namespace
// Centrifugo does not know.
func channelsOf(cfg settings) (valid, requests []string, all []instant.Channel) {
	for i := range cfg.channels {
		valid = append(valid, fmt.Sprintf("c%02d", i))
	}
	requests = []string{"req0", "req1"}
	for _, name := range append(append([]string(nil), valid...), requests...) {
		all = append(all, instant.Channel{Name: name, Level: instant.LevelPublic, Active: true})
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
