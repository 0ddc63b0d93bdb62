// Package child runs the processes the stack depends on (Centrifugo):
// start with a scrubbed environment and a parent-death signal, output
// copied line by line under a prefix, a readiness wait, and stop. `instant
// dev` and the end-to-end tests share it.
package child

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options tune Start.
type Options struct {
	// Dir is the working directory; "" for this process's.
	Dir string
	// Output receives the child's stdout and stderr, each line prefixed
	// with Prefix. Nil discards them.
	Output io.Writer
	// Prefix starts every line written to Output, e.g. "centrifugo | ".
	Prefix string
	// Env is added to the inherited environment (after ScrubEnv).
	Env []string
	// ScrubEnv lists prefixes of environment variables the child must not
	// inherit (matched without regard to case), e.g. "CENTRIFUGO_": such
	// variables are read by the child as its own settings.
	ScrubEnv []string
	// ParentDeath is the signal the kernel sends the child when this
	// process dies without stopping it (Linux only). Defaults to SIGKILL.
	ParentDeath syscall.Signal
}

// Process is a started child process. Its methods are safe for concurrent
// use.
type Process struct {
	Name string // the binary's base name, for messages
	cmd  *exec.Cmd
	out  *lineWriter
	done chan struct{} // closed when the process ended and its output was copied
	err  error         // Wait's result, set before done is closed
}

// waitDelay bounds how long the output of an ended child is still read.
const waitDelay = 2 * time.Second

// ErrExited is returned by WaitReady when the process ended first.
var ErrExited = errors.New("exited before it was ready")

// Start starts bin with args. The process runs until it exits or Stop or
// Kill ends it; Done tells when.
func Start(bin string, args []string, opts Options) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(Env(opts.ScrubEnv...), opts.Env...)
	sig := opts.ParentDeath
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	setParentDeathSignal(cmd, sig)
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	lw := &lineWriter{w: out, prefix: opts.Prefix}
	cmd.Stdout = lw
	cmd.Stderr = lw // the same writer: os/exec copies both through one pipe
	// A process the child started may hold the pipe open after the child
	// ended: do not wait for it longer than this.
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{Name: baseName(bin), cmd: cmd, out: lw, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		lw.flush()
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// SetParentDeathSignal makes the kernel send sig to the child when this
// process dies without stopping it (on Linux; elsewhere it does nothing).
// Start sets it; this is for commands started otherwise.
func SetParentDeathSignal(cmd *exec.Cmd, sig syscall.Signal) { setParentDeathSignal(cmd, sig) }

// Env is this process's environment without the variables whose names
// start with one of prefixes (matched without regard to case).
func Env(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(strings.ToUpper(kv), strings.ToUpper(p)) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended and its output was copied.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (exec.Cmd.Wait's error); valid after Done.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Stop sends SIGTERM and waits until the process is gone; after grace it
// kills it. It reports whether the process ended within grace.
func (p *Process) Stop(grace time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// WaitReady polls ready until it returns nil, the process ends (an error
// wrapping ErrExited), ctx ends or timeout passes (an error wrapping
// ready's last one). Each ready call gets a context of at most a second,
// so that an ended process is noticed soon.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ready(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s %w (%v)", p.Name, ErrExited, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %w", p.Name, timeout, err)
		}
	}
}

// HealthOK returns a readiness check for WaitReady: a GET of url with
// client answers 200.
func HealthOK(client *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

func baseName(bin string) string {
	if i := strings.LastIndexAny(bin, `/\`); i >= 0 {
		return bin[i+1:]
	}
	return bin
}

// lineWriter writes whole lines to w, each after prefix; a last line
// without newline is written by flush. There is no line length limit.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			break
		}
		line := append(l.partial, b[:i+1]...)
		l.partial = l.partial[:0]
		b = b[i+1:]
		if _, err := fmt.Fprintf(l.w, "%s%s", l.prefix, line); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.partial)
		l.partial = nil
	}
}
