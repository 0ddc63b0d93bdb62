package main

import (
	"strings"
	"testing"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestPublishUnknownChannelHint: `channels add users --level users`
// registered "$users"; publishing to "users" says so, before publishing
// and in the bridge's answer.
func TestPublishUnknownChannelHint(t *testing.T) {
	s := newStack(t)
	code, out, errOut := run(t, s.env, "publish", "users", "hi")
	if code != 1 || !strings.Contains(errOut, "unknown channel") || !strings.Contains(errOut, "did you mean $users?") {
		t.Errorf("publish users: exit %d, %q %q; want 1 and a hint at $users", code, out, errOut)
	}
	code, out, errOut = run(t, s.env, "publish", "nowhere", "hi")
	if code != 1 || !strings.Contains(errOut, "unknown channel") || strings.Contains(errOut, "did you mean") {
		t.Errorf("publish nowhere: exit %d, %q %q; want 1 without a hint", code, out, errOut)
	}

	s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	code, out, errOut = run(t, s.env, "publish", "users", "hi", "--wait")
	if code != 1 || !strings.Contains(out, "unknown_channel") || !strings.Contains(out, "did you mean $users?") {
		t.Errorf("publish users --wait: exit %d, %q %q; want 1 and the bridge's hint at $users", code, out, errOut)
	}
}
