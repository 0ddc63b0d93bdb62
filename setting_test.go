package instant_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/instanthq/instant"
)

// TestSettingError: the message names the variable first, then the field
// it sets; either alone when there is no other; errors.As and errors.Is
// see through a join and a wrap.
func TestSettingError(t *testing.T) {
	errBad := errors.New("bad")
	tests := []struct {
		err  *instant.SettingError
		want string
	}{
		{&instant.SettingError{Setting: "INSTANT_REPLICAS", Field: "Replicas", Err: errBad}, "INSTANT_REPLICAS (Replicas): bad"},
		{&instant.SettingError{Setting: "NATS_URL", Err: errBad}, "NATS_URL: bad"},
		{&instant.SettingError{Field: "RetryMin", Err: errBad}, "RetryMin: bad"},
		{instant.SettingErrorf("SITE_NAME", "Site", "%q is %d", "x", 1), `SITE_NAME (Site): "x" is 1`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	err := fmt.Errorf("bridge: %w", errors.Join(errors.New("other"), tests[0].err))
	se, ok := errors.AsType[*instant.SettingError](err)
	if !ok || se.Setting != "INSTANT_REPLICAS" || !errors.Is(err, errBad) {
		t.Errorf("errors.As(%v) = %v, %t; want the INSTANT_REPLICAS error", err, se, ok)
	}
}
