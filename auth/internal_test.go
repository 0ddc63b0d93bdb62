package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/instanthq/instant"
)

// FuzzRequestBody feeds arbitrary bodies to the JSON body parser of login
// and subscribe: it must never panic, refuse with errMalformed or
// errTooLarge only, and accept only one JSON object within the limit.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"secret123"}`,
		`{"channel":"$users"}`, `{"channel":null}`, `{}`, ``, ` `, `null`, `[]`, `"x"`,
		`{"username":1}`, `{"password":["x"]}`, `{"channel":5}`, `{} {}`, `{}x`, `{"a":`,
		`{"username":"\u0000"}`, "{\"username\":\"\xff\"}", strings.Repeat(`{"a":`, 100),
		`{"USERNAME":"alice"}`, `{"username":"a","username":"b"}`,
	} {
		f.Add([]byte(s))
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, body []byte) {
		var login loginRequest
		errLogin := decodeBody(strings.NewReader(string(body)), limit, &login, false)
		var sub subscribeRequest
		errSub := decodeBody(strings.NewReader(string(body)), limit, &sub, true)
		for _, err := range []error{errLogin, errSub} {
			if err != nil && !errors.Is(err, errMalformed) && !errors.Is(err, errTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		if len(body) > limit && (!errors.Is(errLogin, errTooLarge) || !errors.Is(errSub, errTooLarge)) {
			t.Fatalf("%d bytes accepted with limit %d", len(body), limit)
		}
		if errLogin == nil && strings.TrimSpace(string(body))[0] != '{' {
			t.Fatalf("accepted a body that is not an object: %q", body)
		}
	})
}

// FuzzSessionCookie feeds arbitrary cookie values to decodeSession: only
// values signed with the key are accepted.
func FuzzSessionCookie(f *testing.F) {
	key := []byte("session key")
	valid := encodeSession(key, session{Username: "alice", Epoch: "e", CSRF: "c", Expires: now().Add(time.Hour).Unix()})
	f.Add(valid)
	f.Add(encodeSession([]byte("other"), session{Username: "alice", Epoch: "e", CSRF: "c", Expires: now().Add(time.Hour).Unix()}))
	f.Add(encodeSession(key, session{Username: "alice", Epoch: "e", CSRF: "c", Expires: now().Add(-time.Hour).Unix()}))
	f.Add("")
	f.Add(".")
	f.Add("e30.")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := decodeSession(key, v, now())
		if err != nil {
			return
		}
		if s.Username == "" || s.Expires <= now().Unix() {
			t.Fatalf("accepted %+v", s)
		}
		if encodeSession(key, s) != v {
			t.Fatalf("accepted %q, which is not what the server signs", v)
		}
	})
}

func now() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }

func TestSessionCookie(t *testing.T) {
	key := []byte("session key")
	s := session{Username: "alice", Epoch: "e1", CSRF: "c1", Expires: now().Add(time.Hour).Unix()}
	v := encodeSession(key, s)
	got, err := decodeSession(key, v, now())
	if err != nil || got != s {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	payload, sig, _ := strings.Cut(v, ".")
	forged := encodeSession(key, session{Username: "root", Epoch: "e1", CSRF: "c1", Expires: s.Expires})
	forgedPayload, _, _ := strings.Cut(forged, ".")
	for name, bad := range map[string]string{
		"other key":      encodeSession([]byte("other"), s),
		"payload swap":   forgedPayload + "." + sig,
		"no signature":   payload,
		"empty sig":      payload + ".",
		"truncated sig":  payload + "." + sig[:len(sig)-2],
		"expired":        encodeSession(key, session{Username: "alice", Epoch: "e1", CSRF: "c1", Expires: now().Unix()}),
		"no csrf":        encodeSession(key, session{Username: "alice", Epoch: "e1", Expires: s.Expires}),
		"too long":       v + strings.Repeat("A", maxCookie),
		"not base64":     "!!!." + sig,
		"payload not js": b64.EncodeToString([]byte("x")) + "." + b64.EncodeToString(mac(key, b64.EncodeToString([]byte("x")))),
	} {
		if _, err := decodeSession(key, bad, now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBuckets(t *testing.T) {
	b := newBuckets(Limit{Burst: 2, Every: 10 * time.Second})
	t0 := now()
	for i := range 2 {
		if d := b.wait("a", t0); d != 0 {
			t.Fatalf("take %d of the burst: wait %v", i+1, d)
		}
		b.add("a", -1, t0)
	}
	if d := b.wait("a", t0); d != 10*time.Second {
		t.Fatalf("third take: wait %v, want 10s", d)
	}
	if d := b.wait("b", t0); d != 0 {
		t.Fatalf("other key limited: %v", d)
	}
	if d := b.wait("a", t0.Add(4*time.Second)); d != 6*time.Second {
		t.Fatalf("wait after 4s = %v, want 6s", d)
	}
	if d := b.wait("a", t0.Add(10*time.Second)); d != 0 {
		t.Fatalf("after 10s: wait %v", d)
	}
	b.add("a", 5, t0)
	if _, ok := b.m["a"]; ok || !b.full("a", t0) {
		t.Fatal("a bucket given back more than its burst is kept")
	}
	// Buckets that are full again are forgotten.
	slow := newBuckets(Limit{Burst: 1, Every: time.Hour})
	slow.add("x", -1, t0)
	slow.sweep(t0.Add(2 * time.Minute))
	if _, ok := slow.m["x"]; !ok {
		t.Fatal("x forgotten before it is full")
	}
	slow.add("z", -1, t0.Add(2*time.Hour))
	slow.sweep(t0.Add(2 * time.Hour))
	if _, ok := slow.m["x"]; ok || len(slow.m) != 1 {
		t.Fatalf("buckets kept: %v, want z only", slow.m)
	}
	if retryAfter(10*time.Millisecond) != 1 || retryAfter(2500*time.Millisecond) != 3 {
		t.Error("retryAfter rounding")
	}
	off := newBuckets(Limit{Burst: -1})
	for range 100 {
		off.add("a", -1, t0)
		if off.wait("a", t0) != 0 {
			t.Fatal("disabled limit limits")
		}
	}
}

// TestLoginLimiter checks the three limits and that nobody can lock a
// name from elsewhere.
func TestLoginLimiter(t *testing.T) {
	t0 := now()
	l := newLoginLimiter(Config{
		AddressLimit:         Limit{Burst: 100, Every: time.Second},
		AddressUsernameLimit: Limit{Burst: 3, Every: time.Minute},
		UsernameLimit:        Limit{Burst: 4, Every: time.Minute},
	})
	fail := func(addr string) {
		t.Helper()
		if _, key, d := l.admit(addr, "alice", t0); key != "" {
			t.Fatalf("%s refused by %s for %v", addr, key, d)
		}
	}
	// Per address and name.
	for range 3 {
		fail("10.0.0.1")
	}
	if _, key, d := l.admit("10.0.0.1", "alice", t0); key != limitAddressUsername || d != time.Minute {
		t.Fatalf("4th failure from one address: %q %v", key, d)
	}
	// Per name, from an address that failed itself.
	fail("10.0.0.2")
	if _, key, _ := l.admit("10.0.0.2", "alice", t0); key != limitUsername {
		t.Fatalf("name spent, address with a failure: %q", key)
	}
	// An address without failures still gets one check, which gives its
	// charge back on success; on failure it waits like the others.
	for range 3 {
		a, key, _ := l.admit("10.0.0.3", "alice", t0)
		if key != "" {
			t.Fatalf("clean address refused by %q", key)
		}
		a.succeeded(t0)
	}
	fail("10.0.0.4")
	if _, key, _ := l.admit("10.0.0.4", "alice", t0); key != limitUsername {
		t.Fatalf("clean address after its failure: %q", key)
	}
	// Other names are not affected.
	if _, key, _ := l.admit("10.0.0.1", "bob", t0); key != "" {
		t.Fatalf("other name refused by %q", key)
	}
	// Per address, every attempt.
	strict := newLoginLimiter(Config{AddressLimit: Limit{Burst: 2, Every: time.Second}, AddressUsernameLimit: Limit{Burst: -1}, UsernameLimit: Limit{Burst: -1}})
	for range 2 {
		a, _, _ := strict.admit("a", "x", t0)
		a.succeeded(t0)
	}
	if _, key, _ := strict.admit("a", "y", t0); key != limitAddress {
		t.Fatalf("3rd attempt from a: %q", key)
	}
}

func TestConfigValidate(t *testing.T) {
	const k = "0123456789abcdef0123456789abcdef"
	var c Config
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "HMACKey") {
		t.Fatalf("empty config: %v", err)
	}
	if c.TokenTTL != DefaultTokenTTL || c.SessionTTL != DefaultSessionTTL || c.MaxBodyBytes != DefaultMaxBodyBytes ||
		c.AddressLimit != DefaultAddressLimit || c.UsernameLimit != DefaultUsernameLimit ||
		c.AddressUsernameLimit != DefaultAddressUsernameLimit || c.IdentityMaxTTL != DefaultIdentityMaxTTL || c.Now == nil {
		t.Errorf("defaults not set: %+v", c)
	}
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{HMACKey: "k"}, "HMACKey"},
		{Config{HMACKey: k[:31]}, "HMACKey"},
		{Config{HMACKey: k, IdentityKey: "short"}, "IdentityKey"},
		{Config{HMACKey: k, IdentityKey: k}, "IdentityKey"},
		{Config{HMACKey: k, TokenTTL: -time.Second}, "TokenTTL"},
		{Config{HMACKey: k, SessionTTL: time.Millisecond}, "SessionTTL"},
		{Config{HMACKey: k, IdentityMaxTTL: time.Millisecond}, "IdentityMaxTTL"},
		{Config{HMACKey: k, MaxBodyBytes: 10}, "MaxBodyBytes"},
		{Config{HMACKey: k, AllowedOrigins: []string{"*"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"https://*.example.com"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"https://a.example:x"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"https://a.example/"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"https://A.example"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"ftp://a.example"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AllowedOrigins: []string{"a.example"}}, "AllowedOrigins"},
		{Config{HMACKey: k, AddressLimit: Limit{Burst: 1}}, "AddressLimit"},
		{Config{HMACKey: k, AddressUsernameLimit: Limit{Burst: 1}}, "AddressUsernameLimit"},
		{Config{HMACKey: k, UsernameLimit: Limit{Every: time.Second}}, "UsernameLimit"},
		{Config{HMACKey: k, ClientIPHeader: "X Real"}, "ClientIPHeader"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		se, ok := errors.AsType[*instant.SettingError](err)
		if err == nil || !ok || se.Field != tt.field || !strings.HasPrefix(err.Error(), se.Setting) ||
			!strings.Contains(strings.SplitN(err.Error(), ":", 2)[0], tt.field) {
			t.Errorf("%+v: got %v, want an error naming %s", tt.cfg, err, tt.field)
		}
	}
	good := Config{HMACKey: k, IdentityKey: k + "x", AllowedOrigins: []string{"https://a.example", "http://localhost:8000", "http://[::1]:8000", "http://127.0.0.1"}, AddressLimit: Limit{Burst: -1}}
	if err := good.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	a, b := (&Config{HMACKey: "k"}).sessionKey(), (&Config{HMACKey: "k2"}).sessionKey()
	if string(a) == string(b) || string(a) == "k" || string((&Config{HMACKey: "k", SessionKey: "s"}).sessionKey()) != "s" {
		t.Error("session key derivation")
	}
}
