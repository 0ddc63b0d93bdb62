package child

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the copying goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestOutputIsPrefixedLineByLineAndEnvScrubbed(t *testing.T) {
	t.Setenv("CHILDTEST_SECRET", "x")
	t.Setenv("CHILDTEST_KEEP", "y")
	var out syncBuffer
	p, err := Start("/bin/sh", []string{"-c", `echo "one"; echo "two" >&2; printf "s=%s k=%s" "$CHILDTEST_SECRET" "$childtest_keep$CHILDTEST_KEEP"`},
		Options{Output: &out, Prefix: "sh | ", ScrubEnv: []string{"childtest_s"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	want := "sh | one\nsh | two\nsh | s= k=y\n"
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestWaitReadyNoticesExit(t *testing.T) {
	p, err := Start("/bin/sh", []string{"-c", "exit 3"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(t.Context(), time.Minute, func(context.Context) error { return errors.New("not yet") })
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitReady = %v, want ErrExited with exit status 3", err)
	}
}

func TestStopEndsWithSIGTERMAndKillsAfterGrace(t *testing.T) {
	p, err := Start("/bin/sh", []string{"-c", "exec sleep 60"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Stop(time.Minute) {
		t.Fatal("sleep did not end on SIGTERM")
	}
	var out syncBuffer
	p, err = Start("/bin/sh", []string{"-c", `trap "" TERM; echo ready; while :; do sleep 1; done`}, Options{Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	ready := func(context.Context) error {
		if !strings.Contains(out.String(), "ready") {
			return errors.New("no trap yet")
		}
		return nil
	}
	if err := p.WaitReady(t.Context(), time.Minute, ready); err != nil {
		t.Fatal(err)
	}
	if p.Stop(100 * time.Millisecond) {
		t.Fatal("a shell that ignores SIGTERM ended within the grace time")
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was gone")
	}
}
