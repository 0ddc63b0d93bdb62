package stacktest

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/instanthq/instant/internal/child"
)

// Proc is a child process that a test starts, signals, kills and starts
// again by its PID: the processes of a cluster under faults. Its output
// (stdout and stderr, every run) is logged when the test fails or runs
// with -v. It is killed at cleanup (SIGCONT first, in case it is
// stopped). Its methods are safe for concurrent use.
type Proc struct {
	Name string
	bin  string
	args []string
	env  []string
	out  *tailBuffer

	mu   sync.Mutex
	proc *child.Process // nil before the first Start
}

// NewProc returns a process not yet started: bin with args and exactly
// env added to this process's environment without CENTRIFUGO_* variables.
func NewProc(tb testing.TB, name string, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, bin: bin, args: args, env: env, out: newTailBuffer(256 << 10)}
	dumpOnFailure(tb, name+" output", p.out)
	tb.Cleanup(func() { p.Kill() })
	return p
}

// StartProc is NewProc followed by Start.
func StartProc(tb testing.TB, name string, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	p := NewProc(tb, name, env, bin, args...)
	p.Start(tb)
	return p
}

// Start runs the process; it fails the test when it is already running.
func (p *Proc) Start(tb testing.TB) {
	tb.Helper()
	if err := p.start(); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
}

func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		select {
		case <-p.proc.Done():
		default:
			return fmt.Errorf("%s is already running", p.Name)
		}
	}
	fmt.Fprintf(p.out, "--- %s starting %s\n", stamp(), p.Name)
	r, err := child.Start(p.bin, p.args, child.Options{Output: p.out, Env: p.env, ScrubEnv: []string{"CENTRIFUGO_"}})
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		<-r.Done()
		fmt.Fprintf(p.out, "--- %s %s exited: %v\n", stamp(), p.Name, r.Err())
	}()
	p.proc = r
	return nil
}

// current returns the latest run, or nil.
func (p *Proc) current() *child.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc
}

// PID returns the process id of the running process, or 0.
func (p *Proc) PID() int {
	r := p.current()
	if r == nil {
		return 0
	}
	select {
	case <-r.Done():
		return 0
	default:
		return r.Pid()
	}
}

// Running reports whether the process runs (stopped counts as running).
func (p *Proc) Running() bool { return p.PID() != 0 }

// Signal sends sig to the running process.
func (p *Proc) Signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	r := p.current()
	if r == nil {
		tb.Fatalf("stacktest: signal %v: %s was never started", sig, p.Name)
	}
	fmt.Fprintf(p.out, "--- %s signal %v\n", stamp(), sig)
	if err := r.Signal(sig); err != nil {
		tb.Fatalf("stacktest: signal %v to %s: %v", sig, p.Name, err)
	}
}

// Wait waits at most timeout for the running process to exit and returns
// its exit error (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) error {
	r := p.current()
	if r == nil {
		return nil
	}
	select {
	case <-r.Done():
		return r.Err()
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v later", p.Name, timeout)
	}
}

// Kill sends SIGCONT and SIGKILL to the running process and waits until
// it is gone. It reports whether it was running.
func (p *Proc) Kill() bool {
	r := p.current()
	if r == nil {
		return false
	}
	select {
	case <-r.Done():
		return false
	default:
	}
	_ = r.Signal(syscall.SIGCONT)
	r.Kill()
	return true
}

// Output returns the tail of what the process wrote, over all its runs.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the latest run has ended, and its exit error.
func (p *Proc) Exited() (bool, error) {
	r := p.current()
	if r == nil {
		return false, nil
	}
	select {
	case <-r.Done():
		return true, r.Err()
	default:
		return false, nil
	}
}

// TryStart is Start returning the error instead of failing the test, for
// goroutines that supervise processes.
func (p *Proc) TryStart() error { return p.start() }
