package instant_test

import (
	"errors"
	"testing"

	"github.com/instanthq/instant"
)

func TestChannelName(t *testing.T) {
	tests := []struct {
		name  string
		level instant.Level
		want  string
	}{
		{"public", instant.LevelPublic, "public"},
		{"users", instant.LevelUsers, "$users"},
		{"$users", instant.LevelUsers, "$users"},
		{"ns:chan", instant.LevelStaff, "ns:$chan"},
		{"ns:$chan", instant.LevelGroups, "ns:$chan"},
		{"ns:chan", instant.LevelPublic, "ns:chan"},
	}
	for _, tt := range tests {
		if got := instant.ChannelName(tt.name, tt.level); got != tt.want {
			t.Errorf("ChannelName(%q, %s) = %q, want %q", tt.name, tt.level, got, tt.want)
		}
	}
}

func TestNewChannel(t *testing.T) {
	tests := []struct {
		name    string
		level   instant.Level
		groups  []string
		wantErr error
	}{
		{"public", instant.LevelPublic, nil, nil},
		{"group1", instant.LevelGroups, []string{"group1"}, nil},
		{"$public", instant.LevelPublic, nil, instant.ErrBadChannel},
		{"a.b", instant.LevelUsers, nil, instant.ErrBadChannel},
		{"", instant.LevelUsers, nil, instant.ErrBadChannel},
		{"x", "root", nil, instant.ErrBadLevel},
		{"x", instant.LevelGroups, []string{" "}, instant.ErrBadChannel},
		{"x", instant.LevelGroups, []string{"a\rb"}, instant.ErrBadGroup},
		{"x", instant.LevelGroups, []string{"a\xffb"}, instant.ErrBadGroup},
	}
	for _, tt := range tests {
		c, err := instant.NewChannel(tt.name, tt.level, tt.groups)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("NewChannel(%q, %s) error = %v, want %v", tt.name, tt.level, err, tt.wantErr)
		}
		if err == nil && !c.Active {
			t.Errorf("NewChannel(%q) is inactive", tt.name)
		}
	}
}

func TestAdmit(t *testing.T) {
	ch := instant.Channel{Name: "$staff", Level: instant.LevelStaff, Active: true}
	tests := []struct {
		name    string
		ch      instant.Channel
		level   instant.Level
		wantErr error
	}{
		{"no level asserted", ch, "", nil},
		{"matching level", ch, instant.LevelStaff, nil},
		{"level mismatch", ch, instant.LevelPublic, instant.ErrLevelMismatch},
		{"inactive", instant.Channel{Name: "$staff", Level: instant.LevelStaff}, "", instant.ErrInactiveChannel},
	}
	for _, tt := range tests {
		e := instant.Envelope{Channel: tt.ch.Name, Message: "m", Level: tt.level}
		if err := tt.ch.Admit(&e); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestLiteralSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"instant.publish": true, "a": true, "a.b-c_d": true,
		"": false, ".a": false, "a.": false, "a..b": false, "a.*": false, "a.>": false, "a b": false, "a\tb": false, "a\nb": false,
	} {
		if got := instant.LiteralSubject(s); got != want {
			t.Errorf("LiteralSubject(%q) = %t, want %t", s, got, want)
		}
	}
}
