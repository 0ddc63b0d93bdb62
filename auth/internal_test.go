package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
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

func TestLimiter(t *testing.T) {
	l := newLimiter(Limit{Burst: 2, Every: 10 * time.Second})
	t0 := now()
	for i := range 2 {
		if d := l.take("a", t0); d != 0 {
			t.Fatalf("take %d of the burst: wait %v", i+1, d)
		}
	}
	if d := l.take("a", t0); d != 10*time.Second {
		t.Fatalf("third take: wait %v, want 10s", d)
	}
	if d := l.take("b", t0); d != 0 {
		t.Fatalf("other key limited: %v", d)
	}
	if d := l.wait("a", t0.Add(4*time.Second)); d != 6*time.Second {
		t.Fatalf("wait after 4s = %v, want 6s", d)
	}
	if d := l.take("a", t0.Add(10*time.Second)); d != 0 {
		t.Fatalf("after 10s: wait %v", d)
	}
	// Buckets that are full again are forgotten.
	slow := newLimiter(Limit{Burst: 1, Every: time.Hour})
	slow.take("x", t0)
	slow.take("y", t0.Add(2*time.Minute))
	if _, ok := slow.buckets["x"]; !ok {
		t.Fatal("x forgotten before it is full")
	}
	slow.take("z", t0.Add(2*time.Hour))
	if _, ok := slow.buckets["x"]; ok {
		t.Fatal("full bucket x kept")
	}
	if len(slow.buckets) != 1 {
		t.Fatalf("%d buckets kept, want z only", len(slow.buckets))
	}
	if retryAfter(10*time.Millisecond) != 1 || retryAfter(2500*time.Millisecond) != 3 {
		t.Error("retryAfter rounding")
	}
	off := newLimiter(Limit{Burst: -1})
	for range 100 {
		if off.take("a", t0) != 0 || off.wait("a", t0) != 0 {
			t.Fatal("disabled limiter limits")
		}
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "HMACKey") {
		t.Fatalf("empty config: %v", err)
	}
	if c.TokenTTL != DefaultTokenTTL || c.SessionTTL != DefaultSessionTTL || c.MaxBodyBytes != DefaultMaxBodyBytes ||
		c.AddressLimit != DefaultAddressLimit || c.UsernameLimit != DefaultUsernameLimit || c.Now == nil {
		t.Errorf("defaults not set: %+v", c)
	}
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{HMACKey: "k", TokenTTL: -time.Second}, "TokenTTL"},
		{Config{HMACKey: "k", SessionTTL: time.Millisecond}, "SessionTTL"},
		{Config{HMACKey: "k", MaxBodyBytes: 10}, "MaxBodyBytes"},
		{Config{HMACKey: "k", AllowedOrigins: []string{"*"}}, "AllowedOrigins"},
		{Config{HMACKey: "k", AllowedOrigins: []string{"https://a.example/"}}, "AllowedOrigins"},
		{Config{HMACKey: "k", AllowedOrigins: []string{"https://A.example"}}, "AllowedOrigins"},
		{Config{HMACKey: "k", AllowedOrigins: []string{"ftp://a.example"}}, "AllowedOrigins"},
		{Config{HMACKey: "k", AllowedOrigins: []string{"a.example"}}, "AllowedOrigins"},
		{Config{HMACKey: "k", AddressLimit: Limit{Burst: 1}}, "AddressLimit"},
		{Config{HMACKey: "k", UsernameLimit: Limit{Every: time.Second}}, "UsernameLimit"},
		{Config{HMACKey: "k", ClientIPHeader: "X Real"}, "ClientIPHeader"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
			t.Errorf("%+v: got %v, want an error naming %s", tt.cfg, err, tt.field)
		}
	}
	good := Config{HMACKey: "k", AllowedOrigins: []string{"https://a.example", "http://localhost:8000"}, AddressLimit: Limit{Burst: -1}}
	if err := good.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	a, b := (&Config{HMACKey: "k"}).sessionKey(), (&Config{HMACKey: "k2"}).sessionKey()
	if string(a) == string(b) || string(a) == "k" || string((&Config{HMACKey: "k", SessionKey: "s"}).sessionKey()) != "s" {
		t.Error("session key derivation")
	}
}
