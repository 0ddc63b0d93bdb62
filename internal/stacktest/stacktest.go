// Package stacktest runs the real parts of the instant stack on loopback
// for end-to-end tests: an in-process NATS server with JetStream, the real
// Centrifugo binary from ./bin, and a real Centrifugo websocket client that
// sees what a browser would see.
//
// Every helper takes a testing.TB, marks itself with Helper, fails the test
// with Fatalf when something cannot be set up, and registers its own
// cleanup with Cleanup: nothing needs closing by hand. Waits poll with a
// deadline; none sleeps a fixed time except Subscriber.Quiet, whose job is
// to measure quiet time.
package stacktest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/instanthq/instant/internal/child"
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory (a test's working directory is its package
// directory).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("stacktest: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("stacktest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of RepoRoot/bin/<name>. It fails the test when
// the file is missing: `make test` installs the pinned binaries there.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(RepoRoot(tb), "bin", name)
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		tb.Fatalf("bin/%s missing: run `make test` (it installs it)", name)
	}
	return path
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port is released before FreePort returns, so another process may take
// it in between; StartCentrifugo retries on another port when that
// happens.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("stacktest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Buffer is a bytes.Buffer safe for concurrent use: a process's output
// copied by one goroutine while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it.
// It is safe for concurrent use.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.dropped += over
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return "[… earlier output dropped …]\n" + string(b.buf)
	}
	return string(b.buf)
}

// dumpOnFailure logs what buf holds at cleanup when the test failed or
// runs with -v, and stays quiet otherwise.
func dumpOnFailure(tb testing.TB, what string, buf *tailBuffer) {
	tb.Cleanup(func() {
		if !tb.Failed() && !testing.Verbose() {
			return
		}
		if s := buf.String(); s != "" {
			tb.Logf("%s:\n%s", what, s)
		}
	})
}

// SetParentDeathSignal makes the kernel kill cmd's process when the test
// binary dies without running its cleanups (e.g. on a -timeout panic),
// for the processes tests start themselves.
func SetParentDeathSignal(cmd *exec.Cmd) { child.SetParentDeathSignal(cmd, syscall.SIGKILL) }
