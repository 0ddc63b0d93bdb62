package instant_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/instanthq/instant"
)

func TestReplyJSON(t *testing.T) {
	tests := []struct {
		reply instant.Reply
		want  string
	}{
		{instant.Reply{OK: true, Accepted: instant.Accepted{ID: "m1", Channel: "public", Offset: 3, Epoch: "e"}},
			`{"ok":true,"id":"m1","channel":"public","offset":3,"epoch":"e"}`},
		{instant.Reply{Error: &instant.ReplyError{Code: instant.CodeUnknownChannel, Message: "no such channel"}},
			`{"ok":false,"error":{"code":"unknown_channel","message":"no such channel"}}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.reply)
		if err != nil || string(got) != tt.want {
			t.Errorf("got %s (%v), want %s", got, err, tt.want)
		}
		var back instant.Reply
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(back); string(again) != tt.want {
			t.Errorf("round trip: got %s, want %s", again, tt.want)
		}
	}
}

func TestReplyError(t *testing.T) {
	err := error(&instant.ReplyError{Code: instant.CodeLevelMismatch, Message: "m"})
	if !errors.Is(err, instant.ErrLevelMismatch) {
		t.Errorf("%v is not ErrLevelMismatch", err)
	}
	if errors.Is(err, instant.ErrUnknownChannel) || errors.Is(err, errors.New("level_mismatch: m")) {
		t.Errorf("%v matches another error", err)
	}
	if got, want := err.Error(), "level_mismatch: m"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for code, want := range map[instant.Code]bool{instant.CodeUnavailable: true, instant.CodeLevelMismatch: false, instant.CodeInternal: false} {
		if got := (&instant.ReplyError{Code: code}).Temporary(); got != want {
			t.Errorf("Temporary() of %s = %t, want %t", code, got, want)
		}
	}
}
