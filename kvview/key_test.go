package kvview

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// validKVKey is the rule nats.go applies to KV keys.
var validKVKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"public", "public"},
		{"$users", "=24users"},
		{"ns:$chan", "ns=3A=24chan"},
		{"a-b_C9", "a-b_C9"},
		{"a.b", "a=2Eb"},
		{"a/b", "a=2Fb"},
		{"=", "=3D"},
		{"=24", "=3D24"},
		{"é", "=C3=A9"},
		{"$👍", "=24=F0=9F=91=8D"},
		{"\x00\xff", "=00=FF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.name); got != tt.key {
				t.Errorf("Key(%q) = %q, want %q", tt.name, got, tt.key)
			}
			got, err := NameOfKey(tt.key)
			if err != nil {
				t.Fatalf("NameOfKey(%q): %v", tt.key, err)
			}
			if got != tt.name {
				t.Errorf("NameOfKey(%q) = %q, want %q", tt.key, got, tt.name)
			}
		})
	}
}

func TestNameOfKeyRejects(t *testing.T) {
	for _, key := range []string{
		"",
		"=",
		"=2",
		"a=2",
		"=2G",
		"=2a",    // lowercase hex
		"=3a=24", // lowercase hex
		"=41",    // 'A' is never escaped
		"=5F",    // '_' is never escaped
		"=2D",    // '-' is never escaped
		"a.b",    // '.' is always escaped
		"a b",
		"$users",
		"a/b",
		"é",
		"==24",
	} {
		t.Run(key, func(t *testing.T) {
			got, err := NameOfKey(key)
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("NameOfKey(%q) = %q, %v; want an error wrapping ErrBadKey", key, got, err)
			}
		})
	}
}

// FuzzKey checks that NameOfKey is the exact inverse of Key: every name
// round-trips, every key Key returns is a valid KV key without '.', and
// every key NameOfKey accepts is the one Key gives for its name.
func FuzzKey(f *testing.F) {
	for _, s := range []string{
		"public", "$users", "ns:$chan", "a.b", "=", "=24", "=3a", "=41",
		"é", "$👍", "\x00", "\xff\xfe", "a==b", "-_", strings.Repeat("$", 255),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Key(s)
		if s == "" {
			if k != "" {
				t.Fatalf("Key(\"\") = %q, want \"\"", k)
			}
		} else {
			if !validKVKey.MatchString(k) || strings.Contains(k, ".") {
				t.Fatalf("Key(%q) = %q: not a valid flat KV key", s, k)
			}
			name, err := NameOfKey(k)
			if err != nil {
				t.Fatalf("NameOfKey(Key(%q)) = %q: %v", s, k, err)
			}
			if name != s {
				t.Fatalf("NameOfKey(Key(%q)) = %q, want %q", s, name, s)
			}
		}
		if name, err := NameOfKey(s); err == nil {
			if got := Key(name); got != s {
				t.Fatalf("NameOfKey(%q) = %q, but Key(%q) = %q", s, name, name, got)
			}
		} else if !errors.Is(err, ErrBadKey) {
			t.Fatalf("NameOfKey(%q): %v, want an error wrapping ErrBadKey", s, err)
		}
	})
}
