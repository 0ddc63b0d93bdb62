package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// procs are this process (the NATS server, the bridge, the load
// generator and the poller) and the Centrifugo child process, seen
// through the kernel: CPU time, suspend and resume.
type procs struct {
	pid   int // Centrifugo's, 0 when not found
	redis int // the Redis server's, when Centrifugo runs on its Redis engine
}

// newProcs finds the Centrifugo process this process started last.
func newProcs() *procs {
	m := &procs{}
	var newest uint64
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		f, ok := procStat(path)
		if !ok || f.comm != "centrifugo" || f.ppid != os.Getpid() || f.start < newest {
			continue
		}
		newest = f.start
		m.pid, _ = strconv.Atoi(filepath.Base(filepath.Dir(path)))
	}
	return m
}

type statFields struct {
	comm         string
	ppid         int
	utime, stime uint64 // in clock ticks
	start        uint64
}

// procStat parses /proc/PID/stat (see proc(5)).
func procStat(path string) (statFields, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return statFields{}, false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return statFields{}, false
	}
	rest := strings.Fields(s[end+1:]) // rest[0] is field 3 (state)
	if len(rest) < 20 {
		return statFields{}, false
	}
	num := func(field int) uint64 { n, _ := strconv.ParseUint(rest[field-3], 10, 64); return n }
	return statFields{comm: s[open+1 : end], ppid: int(num(4)), utime: num(14), stime: num(15), start: num(22)}, true
}

// cpuSample is the CPU time used so far.
type cpuSample struct {
	centrifugo, redis, self time.Duration
	ok                      bool
}

func (m *procs) sample() cpuSample {
	var ru syscall.Rusage
	if m.pid == 0 || syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return cpuSample{}
	}
	f, ok := procStat("/proc/" + strconv.Itoa(m.pid) + "/stat")
	if !ok {
		return cpuSample{}
	}
	c := cpuSample{
		centrifugo: time.Duration(f.utime+f.stime) * clockTick,
		self:       time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		ok:         true,
	}
	if m.redis != 0 {
		r, ok := procStat("/proc/" + strconv.Itoa(m.redis) + "/stat")
		if !ok {
			return cpuSample{}
		}
		c.redis = time.Duration(r.utime+r.stime) * clockTick
	}
	return c
}

// rss returns the resident set size of process pid in bytes.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// suspend stops Centrifugo (SIGSTOP) until resume.
func (m *procs) suspend() error { return m.signal(syscall.SIGSTOP) }

// resume continues Centrifugo after suspend (SIGCONT).
func (m *procs) resume() error { return m.signal(syscall.SIGCONT) }

func (m *procs) signal(sig syscall.Signal) error {
	if m.pid == 0 {
		return errors.New("the Centrifugo process was not found")
	}
	return syscall.Kill(m.pid, sig)
}
