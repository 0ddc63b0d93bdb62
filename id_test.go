package instant_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/instanthq/instant"
)

func TestPublicationIDs(t *testing.T) {
	at := time.Unix(1700000000, 5)
	ids := map[string]string{
		"msg-id x on public":    instant.PublicationID("public", "x"),
		"msg-id x on $staff":    instant.PublicationID("$staff", "x"),
		"msg-id 1 on public":    instant.PublicationID("public", "1"),
		"seq 1 on public":       instant.StreamPublicationID("public", "INSTANT", 1, at),
		"seq 1 on $staff":       instant.StreamPublicationID("$staff", "INSTANT", 1, at),
		"seq 1 of a new stream": instant.StreamPublicationID("public", "INSTANT", 1, at.Add(time.Second)),
		"seq 1 of another":      instant.StreamPublicationID("public", "OTHER", 1, at),
	}
	seen := map[string]string{}
	for name, id := range ids {
		if len(id) != 22 || strings.ContainsAny(id, "+/=") {
			t.Errorf("%s: id %q, want 22 characters of base64url", name, id)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share the id %s", name, other, id)
		}
		seen[id] = name
	}
	if instant.PublicationID("public", "x") != ids["msg-id x on public"] ||
		instant.StreamPublicationID("public", "INSTANT", 1, at) != ids["seq 1 on public"] {
		t.Error("ids are not stable")
	}
}

func TestUnknownChannelError(t *testing.T) {
	registered := func(name string) bool { return name == "$team" || name == "ns:$chan" }
	for name, hint := range map[string]string{"team": "did you mean $team?", "ns:chan": "did you mean ns:$chan?", "other": "", "$other": ""} {
		err := instant.UnknownChannelError(name, registered)
		if !errors.Is(err, instant.ErrUnknownChannel) {
			t.Errorf("%s: %v is not ErrUnknownChannel", name, err)
		}
		if hint != "" && !strings.Contains(err.Error(), hint) || hint == "" && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("%s: %q, want hint %q", name, err, hint)
		}
	}
}
