package stacktest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, and fails the test naming what when
// it still does not after timeout. The polls start 5 ms apart and slow
// down to 100 ms, so that a condition that takes long costs little CPU.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}
