package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instanthq/instant/auth"
)

var (
	identityKey = []byte("identity-key-0123456789abcdef0123456789")
	now         = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// signIdentity returns claims signed with key by method.
func signIdentity(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// identityClaims returns valid claims expiring an hour after now.
func identityClaims(sub string, groups ...string) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": now.Add(time.Hour).Unix(), "staff": false, "superuser": false}
	if groups != nil {
		c["groups"] = groups
	}
	return c
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestParseIdentity(t *testing.T) {
	tok := signIdentity(t, jwt.SigningMethodHS256, identityKey,
		with(identityClaims("alice", "g2", "g1"), "staff", true, "iat", now.Unix(), "aud", "instant"))
	id, exp, err := auth.ParseIdentity(identityKey, tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "alice" || !slices.Equal(id.Groups, []string{"g1", "g2"}) || !id.Staff || id.Superuser {
		t.Errorf("identity %+v", id)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("exp %v, want %v", exp, now.Add(time.Hour))
	}
	// Without the optional claims.
	tok = signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{"sub": "bob", "exp": now.Add(time.Minute).Unix()})
	if id, _, err := auth.ParseIdentity(identityKey, tok, now); err != nil || id.Username != "bob" || id.Groups != nil {
		t.Errorf("minimal claims: %+v, %v", id, err)
	}
}

func TestParseIdentityRefuses(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := identityClaims("alice", "g1")
	good := signIdentity(t, jwt.SigningMethodHS256, identityKey, valid)
	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), `"staff":false`) {
		t.Fatalf("payload %s: %v", payload, err)
	}
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"staff":false`, `"staff":true`, 1)))
	noneTok := signIdentity(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"alg none", noneTok},
		{"alg none without dot", strings.TrimSuffix(noneTok, ".")},
		{"HS512", signIdentity(t, jwt.SigningMethodHS512, identityKey, valid)},
		{"HS384", signIdentity(t, jwt.SigningMethodHS384, identityKey, valid)},
		{"RS256", signIdentity(t, jwt.SigningMethodRS256, rsaKey, valid)},
		{"RS256 header, HMAC signature", rs256HeaderHMAC(t, valid)},
		{"wrong key", signIdentity(t, jwt.SigningMethodHS256, []byte("another key"), valid)},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2]},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
		{"signature dropped", parts[0] + "." + parts[1] + "."},
		{"no exp", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", nil))},
		{"expired", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", now.Add(-time.Second).Unix()))},
		{"expires now", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", now.Unix()))},
		{"exp a string", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", "tomorrow"))},
		{"exp a string of digits", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", strconv.FormatInt(now.Add(time.Minute).Unix(), 10)))},
		{"iat a string of digits", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "iat", strconv.FormatInt(now.Unix(), 10)))},
		{"exp null", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", json.RawMessage("null")))},
		{"EXP in capitals beside exp", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "EXP", now.Add(24*time.Hour).Unix()))},
		{"Sub in another case", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(with(valid, "sub", nil), "Sub", "root"))},
		{"lives longer than the maximum", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "exp", now.Add(auth.DefaultIdentityMaxTTL+time.Second).Unix()))},
		{"iat too long before exp", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "iat", now.Add(-time.Minute).Unix()))},
		{"iat in the future", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "iat", now.Add(time.Hour).Unix()))},
		{"nbf in the future", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "nbf", now.Add(time.Hour).Unix()))},
		{"no sub", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "sub", nil))},
		{"empty sub", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "sub", ""))},
		{"sub with space", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "sub", "a b"))},
		{"sub a number", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "sub", 42))},
		{"groups a string", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "groups", "g1"))},
		{"groups of numbers", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "groups", []int{1}))},
		{"blank group", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "groups", []string{" "}))},
		{"staff a string", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "staff", "true"))},
		{"superuser a number", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "superuser", 1))},
		{"too long", signIdentity(t, jwt.SigningMethodHS256, identityKey, with(valid, "pad", strings.Repeat("x", 9000)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, _, err := auth.ParseIdentity(identityKey, tt.token, now)
			if !errors.Is(err, auth.ErrBadIdentity) {
				t.Fatalf("got %+v, %v; want %v", id, err, auth.ErrBadIdentity)
			}
		})
	}
	if _, _, err := auth.ParseIdentity(nil, good, now); !errors.Is(err, auth.ErrBadIdentity) {
		t.Errorf("no key: got %v, want %v", err, auth.ErrBadIdentity)
	}
}

// TestIdentityRules checks the configured lifetime, issuer and audience.
func TestIdentityRules(t *testing.T) {
	rules := auth.IdentityRules{MaxTTL: 5 * time.Minute, Issuer: "https://app.example", Audience: "instant"}
	base := with(identityClaims("alice"), "exp", now.Add(5*time.Minute).Unix(), "iss", "https://app.example", "aud", []string{"other", "instant"})
	if _, _, err := rules.Parse(identityKey, signIdentity(t, jwt.SigningMethodHS256, identityKey, base), now); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	for name, c := range map[string]jwt.MapClaims{
		"too long":       with(base, "exp", now.Add(5*time.Minute+time.Second).Unix()),
		"no iss":         with(base, "iss", nil),
		"other iss":      with(base, "iss", "https://evil.example"),
		"no aud":         with(base, "aud", nil),
		"other aud":      with(base, "aud", "centrifugo"),
		"iss of numbers": with(base, "iss", 1),
	} {
		if _, _, err := rules.Parse(identityKey, signIdentity(t, jwt.SigningMethodHS256, identityKey, c), now); !errors.Is(err, auth.ErrBadIdentity) {
			t.Errorf("%s: got %v, want %v", name, err, auth.ErrBadIdentity)
		}
	}
}

// rs256HeaderHMAC returns a token whose header says RS256 but which is
// signed with HMAC-SHA256 and the identity key (algorithm confusion).
func rs256HeaderHMAC(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["alg"] = "RS256"
	s, err := tok.SignedString(identityKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzIdentityToken feeds arbitrary tokens to ParseIdentity: it must never
// panic, and whatever it accepts must be an HS256 token signed with the
// key, with a valid subject, not expired.
func FuzzIdentityToken(f *testing.F) {
	valid := identityClaims("alice", "g1")
	f.Add(signIdentity(f, jwt.SigningMethodHS256, identityKey, valid))
	f.Add(signIdentity(f, jwt.SigningMethodHS512, identityKey, valid))
	f.Add(signIdentity(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid))
	f.Add(signIdentity(f, jwt.SigningMethodHS256, identityKey, with(valid, "exp", nil)))
	f.Add(signIdentity(f, jwt.SigningMethodHS256, identityKey, with(valid, "exp", now.Add(-time.Hour).Unix())))
	f.Add(signIdentity(f, jwt.SigningMethodHS256, identityKey, with(valid, "groups", "g1")))
	f.Add(rs256HeaderHMAC(f, valid))
	f.Add("")
	f.Add("..")
	f.Add("e30.e30.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.bnVsbA.x")
	f.Fuzz(func(t *testing.T, token string) {
		id, exp, err := auth.ParseIdentity(identityKey, token, now)
		if err != nil {
			if !errors.Is(err, auth.ErrBadIdentity) {
				t.Fatalf("error %v does not wrap ErrBadIdentity", err)
			}
			return
		}
		if id.Username == "" || !exp.After(now) {
			t.Fatalf("accepted %+v expiring %v", id, exp)
		}
		parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return identityKey, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }))
		if err != nil || parsed.Method.Alg() != "HS256" {
			t.Fatalf("accepted a token jwt refuses: %v", err)
		}
	})
}

// FuzzIdentityClaims signs arbitrary claims correctly: whatever is
// accepted has a numeric exp, spelt "exp", within the maximum lifetime.
func FuzzIdentityClaims(f *testing.F) {
	exp := strconv.FormatInt(now.Add(time.Minute).Unix(), 10)
	for _, c := range []string{
		`{"sub":"alice","exp":` + exp + `}`,
		`{"sub":"alice","exp":"` + exp + `"}`,
		`{"sub":"alice","EXP":` + exp + `}`,
		`{"sub":"alice","exp":1,"Exp":` + exp + `}`,
		`{"sub":"alice","exp":` + exp + `,"exp":"` + exp + `"}`,
		`{"sub":"alice","exp":` + exp + `,"iat":"0"}`,
		`{"sub":"alice","exp":9999999999}`,
		`{"sub":"alice","exp":` + exp + `e0}`,
		`{"Sub":"root","sub":"alice","exp":` + exp + `}`,
	} {
		f.Add(c)
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, claims string) {
		signing := header + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		sig, err := jwt.SigningMethodHS256.Sign(signing, identityKey)
		if err != nil {
			t.Fatal(err)
		}
		id, expires, err := auth.ParseIdentity(identityKey, signing+"."+base64.RawURLEncoding.EncodeToString(sig), now)
		if err != nil {
			if !errors.Is(err, auth.ErrBadIdentity) {
				t.Fatalf("error %v does not wrap ErrBadIdentity", err)
			}
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(claims), &raw); err != nil {
			t.Fatalf("accepted claims that are not an object: %v", err)
		}
		e, ok := raw["exp"]
		if _, err := strconv.ParseFloat(string(e), 64); !ok || err != nil {
			t.Fatalf("accepted %s: exp %s is not a number", claims, e)
		}
		if id.Username == "" || !expires.After(now) || expires.Sub(now) > auth.DefaultIdentityMaxTTL {
			t.Fatalf("accepted %s: %+v expiring %v", claims, id, expires)
		}
	})
}
