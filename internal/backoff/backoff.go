// Package backoff gives the waits between retries: one formula, capped
// exponential growth with jitter, for every retry loop in instant (the
// bridge's relay, the user store's read-modify-write, revocation calls).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry number attempt, counted from 1 (the
// first try, attempt 0 or less, waits nothing). The interval is lo
// doubled attempt-1 times, capped at hi; the wait is uniform over its
// upper half, [d/2, d], so concurrent retriers spread out yet the wait
// still grows. lo must be positive and at most hi. Safe for concurrent
// use.
func Delay(attempt int, lo, hi time.Duration) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := hi
	if attempt < 32 && lo<<(attempt-1) < hi {
		d = lo << (attempt - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// Wait waits Delay(attempt, lo, hi) or until ctx ends, whichever comes
// first; it returns ctx.Err() when ctx ended first, nil otherwise (and
// nil at once when there is nothing to wait, as before the first try).
func Wait(ctx context.Context, attempt int, lo, hi time.Duration) error {
	d := Delay(attempt, lo, hi)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
