package producer_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instanthq/instant/producer"
)

// The tests that publish on a NATS server are in the instant module
// (producer_e2e_test.go at its root), with the checks that this module's
// copy of the wire contract agrees with package instant: a NATS server
// here would add to this module's requirements what its users must not
// inherit.

func TestEventMarshal(t *testing.T) {
	tests := []struct {
		name    string
		ev      producer.Event
		want    string
		wantErr error
	}{
		{name: "message", ev: producer.Event{Channel: "public", Message: "hi"},
			want: `{"channel":"public","message":"hi"}`},
		{name: "every field", ev: producer.Event{Channel: "$users", Message: "m", Data: map[string]int{"n": 1},
			EventClass: "important", Bucket: "b", Site: "s", Level: "users"},
			want: `{"channel":"$users","message":"m","data":{"n":1},"event_class":"important","bucket":"b","site":"s","level":"users"}`},
		{name: "raw data", ev: producer.Event{Channel: "public", Data: json.RawMessage(`[1, 2]`)},
			want: `{"channel":"public","data":[1,2]}`},
		{name: "no channel", ev: producer.Event{Message: "hi"}, wantErr: producer.ErrBadEnvelope},
		{name: "channel with a dot", ev: producer.Event{Channel: "a.b", Message: "hi"}, wantErr: producer.ErrBadEnvelope},
		{name: "channel with a space", ev: producer.Event{Channel: "a b", Message: "hi"}, wantErr: producer.ErrBadEnvelope},
		{name: "channel too long", ev: producer.Event{Channel: strings.Repeat("a", 256), Message: "hi"}, wantErr: producer.ErrBadEnvelope},
		{name: "neither message nor data", ev: producer.Event{Channel: "public"}, wantErr: producer.ErrBadEnvelope},
		{name: "null data", ev: producer.Event{Channel: "public", Data: json.RawMessage("null")}, wantErr: producer.ErrBadEnvelope},
		{name: "nil pointer data", ev: producer.Event{Channel: "public", Data: (*int)(nil)}, wantErr: producer.ErrBadEnvelope},
		{name: "data JSON cannot hold", ev: producer.Event{Channel: "public", Data: func() {}}, wantErr: producer.ErrBadEnvelope},
		{name: "unknown level", ev: producer.Event{Channel: "public", Message: "hi", Level: "admin"}, wantErr: producer.ErrBadEnvelope},
		{name: "message not UTF-8", ev: producer.Event{Channel: "public", Message: "\xff"}, wantErr: producer.ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.Marshal()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, subject := range []string{"instant.>", "a b", ".x", "x.", "a..b"} {
		if _, err := producer.New(nil, producer.Config{Subject: subject}); err == nil || !strings.Contains(err.Error(), "Subject") {
			t.Errorf("subject %q: error %v, want one naming Subject", subject, err)
		}
	}
	if _, err := producer.New(nil, producer.Config{Core: true, Timeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("negative timeout: error %v, want one naming Timeout", err)
	}
}

// TestModuleRequiresNATSOnly keeps the module light: backends import it,
// so its module graph is nats.go and what nats.go requires, nothing else.
func TestModuleRequiresNATSOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	var got []string
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		path, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		got = append(got, path)
	}
	want := []string{
		"github.com/instanthq/instant/producer",
		// nats.go and its requirements, with theirs (golang.org/x/crypto
		// requires net, sys, term and text).
		"github.com/klauspost/compress",
		"github.com/nats-io/nats.go",
		"github.com/nats-io/nkeys",
		"github.com/nats-io/nuid",
		"golang.org/x/crypto",
		"golang.org/x/net",
		"golang.org/x/sys",
		"golang.org/x/term",
		"golang.org/x/text",
	}
	for _, m := range got {
		if !slices.Contains(want, m) {
			t.Errorf("the module graph holds %s: only nats.go and its requirements may be there", m)
		}
	}
	if !slices.Contains(got, "github.com/nats-io/nats.go") {
		t.Errorf("go list -m all = %q, want nats.go among them", got)
	}
}
