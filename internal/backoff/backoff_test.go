package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name     string
		attempt  int
		lo, hi   time.Duration
		min, max time.Duration
	}{
		{"first try", 0, 100 * ms, time.Second, 0, 0},
		{"negative attempt", -3, 100 * ms, time.Second, 0, 0},
		{"first retry", 1, 100 * ms, time.Second, 50 * ms, 100 * ms},
		{"second retry doubles", 2, 100 * ms, time.Second, 100 * ms, 200 * ms},
		{"fourth retry", 4, 100 * ms, time.Second, 400 * ms, 800 * ms},
		{"capped", 5, 100 * ms, time.Second, 500 * ms, time.Second},
		{"far past the cap", 40, 100 * ms, time.Second, 500 * ms, time.Second},
		{"shift overflow", 1000, ms, time.Hour, 30 * time.Minute, time.Hour},
		{"lo equals hi", 3, 10 * ms, 10 * ms, 5 * ms, 10 * ms},
		{"tiny interval", 1, time.Nanosecond, time.Nanosecond, 0, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				if got := Delay(tt.attempt, tt.lo, tt.hi); got < tt.min || got > tt.max {
					t.Fatalf("Delay(%d, %v, %v) = %v, want in [%v, %v]", tt.attempt, tt.lo, tt.hi, got, tt.min, tt.max)
				}
			}
		})
	}
}

func TestWait(t *testing.T) {
	if err := Wait(t.Context(), 0, time.Hour, time.Hour); err != nil {
		t.Fatalf("Wait before the first try: %v, want nil", err)
	}
	if err := Wait(t.Context(), 1, time.Nanosecond, time.Nanosecond); err != nil {
		t.Fatalf("Wait(1ns): %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Wait(ctx, 1, time.Hour, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on an ended context: %v, want context.Canceled", err)
	}
	if err := Wait(ctx, 0, time.Hour, time.Hour); err != nil {
		t.Fatalf("Wait(attempt 0) on an ended context: %v, want nil (nothing to wait)", err)
	}
}
