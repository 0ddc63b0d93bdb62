package kvview

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadKey is returned by NameOfKey for a string that Key cannot produce.
var ErrBadKey = errors.New("kvview: malformed key")

const upperHex = "0123456789ABCDEF"

// plain reports whether Key keeps byte c as it is.
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// Key returns the KV key that stores the entry named name (a channel
// name, a user name). Bytes in [A-Za-z0-9_-] are kept; every other byte
// becomes '=' and two uppercase hex digits, so "$users" is stored as
// "=24users" and "ns:$chan" as "ns=3A=24chan". The result never contains '.', the KV hierarchy
// separator, and stays readable in `nats kv ls`. Key("") is "", which is
// not a valid key.
func Key(name string) string {
	n := 0
	for i := 0; i < len(name); i++ {
		if !plain(name[i]) {
			n++
		}
	}
	if n == 0 {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 2*n)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0x0f])
	}
	return b.String()
}

// NameOfKey is the inverse of Key: it returns the entry name stored
// under key. It accepts exactly the non-empty strings Key returns, so
// lowercase hex digits, an escaped byte that Key would keep ("=41"), a
// truncated escape or any byte outside [A-Za-z0-9_=-] give an error
// wrapping ErrBadKey.
func NameOfKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty", ErrBadKey)
	}
	if !strings.Contains(key, "=") {
		for i := 0; i < len(key); i++ {
			if !plain(key[i]) {
				return "", fmt.Errorf("%w %q: byte %d is %q", ErrBadKey, key, i, key[i])
			}
		}
		return key, nil
	}
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '=':
			if i+2 >= len(key) {
				return "", fmt.Errorf("%w %q: truncated escape at byte %d", ErrBadKey, key, i)
			}
			hi, ok1 := unhex(key[i+1])
			lo, ok2 := unhex(key[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w %q: bad escape %q at byte %d", ErrBadKey, key, key[i:i+3], i)
			}
			d := hi<<4 | lo
			if plain(d) {
				return "", fmt.Errorf("%w %q: %q must not be escaped", ErrBadKey, key, d)
			}
			b.WriteByte(d)
			i += 2
		default:
			return "", fmt.Errorf("%w %q: byte %d is %q", ErrBadKey, key, i, c)
		}
	}
	return b.String(), nil
}

// unhex decodes one uppercase hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
