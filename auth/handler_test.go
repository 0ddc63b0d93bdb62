package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/registry"
)

const (
	hmacKey  = "centrifugo-hmac-key-0123456789abcdef"
	password = "pass word 1"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testChannels are the registry of the handler tests.
var testChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "$superuser", Level: instant.LevelSuperuser, Active: true},
	{Name: "$group1", Level: instant.LevelGroups, Groups: []string{"group1"}, Active: true},
	{Name: "$off", Level: instant.LevelUsers},
}

// testUsers are the users of the handler tests, all with password.
var testUsers = []instant.User{
	{Identity: instant.Identity{Username: "alice"}},
	{Identity: instant.Identity{Username: "gina", Groups: []string{"group1"}}},
	{Identity: instant.Identity{Username: "sam", Staff: true}},
	{Identity: instant.Identity{Username: "root", Superuser: true}},
}

type fixture struct {
	t       *testing.T
	cfg     auth.Config
	clock   *clock
	store   testStore
	handler http.Handler
	reg     *prometheus.Registry
	logs    *observer.ObservedLogs
}

// newFixture returns a server on testChannels and testUsers, in a fake
// user store (the end-to-end tests use the real one); mod, when not nil,
// changes the Config first.
func newFixture(t *testing.T, mod func(*auth.Config)) *fixture {
	t.Helper()
	store := newFakeUsers(testUsers, password)
	f := &fixture{t: t, store: store, clock: &clock{t: time.Now().Truncate(time.Second)}, reg: prometheus.NewRegistry()}
	f.cfg = auth.Config{
		HMACKey:        hmacKey,
		TokenTTL:       10 * time.Minute,
		AllowedOrigins: []string{"https://app.example"},
		IdentityKey:    string(identityKey),
		Now:            f.clock.Now,
	}
	if mod != nil {
		mod(&f.cfg)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	srv, err := auth.New(f.cfg, auth.Deps{
		Channels: registry.Static(testChannels),
		Users:    store,
		Log:      zap.New(core),
		Metrics:  auth.NewMetrics(f.reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.handler = srv.Handler()
	return f
}

type reqOpt func(*http.Request)

func withCookies(cs []*http.Cookie) reqOpt {
	return func(r *http.Request) {
		for _, c := range cs {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func withTLS() reqOpt { return func(r *http.Request) { r.TLS = &tls.ConnectionState{} } }

func (f *fixture) do(method, path, body string, opts ...reqOpt) *http.Response {
	f.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w.Result()
}

// session is a logged-in browser.
type session struct {
	cookies []*http.Cookie
	csrf    string
	body    tokens
}

type tokens struct {
	CSRFToken string         `json:"csrf_token"`
	WSToken   string         `json:"ws_token"`
	Channels  []channelToken `json:"channels"`
}

type channelToken struct {
	Name  string        `json:"name"`
	Level instant.Level `json:"level"`
	Token string        `json:"token"`
}

func (s session) auth() reqOpt {
	return func(r *http.Request) {
		withCookies(s.cookies)(r)
		r.Header.Set(auth.CSRFHeader, s.csrf)
	}
}

func (f *fixture) login(user string) session {
	f.t.Helper()
	resp := f.do("POST", auth.PathLogin, `{"username":"`+user+`","password":"`+password+`"}`)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("login %s: %s", user, resp.Status)
	}
	var s session
	s.body = decode[tokens](f.t, resp)
	s.cookies = resp.Cookies()
	s.csrf = s.body.CSRFToken
	return s
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var v T
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode body: %v", err)
	}
	return v
}

// wantStatus checks the status and, for 4xx, an empty body.
func wantStatus(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("status %s, want %d; body %q", resp.Status, status, body)
	}
	if status >= 400 && len(body) != 0 {
		t.Errorf("%d with body %q, want none", status, body)
	}
}

// claims verifies a Centrifugo token and returns its claims.
func (f *fixture) claims(tok string) jwt.MapClaims {
	f.t.Helper()
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return []byte(hmacKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(f.clock.Now))
	if err != nil {
		f.t.Fatalf("token %q: %v", tok, err)
	}
	return c
}

// checkTokens checks a tokens body for sub and the channels want.
func (f *fixture) checkTokens(body tokens, sub string, want ...string) {
	f.t.Helper()
	now := f.clock.Now().Unix()
	ttl := int64(f.cfg.TokenTTL / time.Second)
	c := f.claims(body.WSToken)
	if len(c) != 3 || c["sub"] != sub || c["iat"] != float64(now) || c["exp"] != float64(now+ttl) {
		f.t.Errorf("ws_token claims %v, want sub %q iat %d exp %d", c, sub, now, now+ttl)
	}
	var names []string
	for _, ch := range body.Channels {
		names = append(names, ch.Name)
		c := f.claims(ch.Token)
		if len(c) != 4 || c["sub"] != sub || c["channel"] != ch.Name || c["iat"] != float64(now) || c["exp"] != float64(now+ttl) {
			f.t.Errorf("token of %s: claims %v", ch.Name, c)
		}
		reg := slices.IndexFunc(testChannels, func(x instant.Channel) bool { return x.Name == ch.Name })
		if reg < 0 || testChannels[reg].Level != ch.Level {
			f.t.Errorf("channel %+v not in the registry", ch)
		}
	}
	if !slices.Equal(names, want) {
		f.t.Errorf("channels %v, want %v", names, want)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		user string
		want []string
	}{
		{"alice", []string{"$users", "public"}},
		{"gina", []string{"$group1", "$users", "public"}},
		{"sam", []string{"$staff", "$users", "public"}},
		{"root", []string{"$superuser", "$users", "public"}},
	}
	for _, tt := range tests {
		s := f.login(tt.user)
		f.checkTokens(s.body, tt.user, tt.want...)
		if len(s.csrf) < 32 {
			t.Errorf("csrf_token %q", s.csrf)
		}
	}

	resp := f.do("POST", auth.PathLogin, `{"username":"alice","password":"`+password+`"}`)
	var sess, csrf *http.Cookie
	for _, c := range resp.Cookies() {
		switch c.Name {
		case auth.SessionCookie:
			sess = c
		case auth.CSRFCookie:
			csrf = c
		}
	}
	body := decode[tokens](t, resp)
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure || sess.Path != "/instant/" ||
		sess.MaxAge != int(auth.DefaultSessionTTL/time.Second) {
		t.Errorf("session cookie %+v", sess)
	}
	if csrf == nil || csrf.HttpOnly || csrf.Value != body.CSRFToken || csrf.Path != "/" {
		t.Errorf("CSRF cookie %+v", csrf)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	resp = f.do("POST", auth.PathLogin, `{"username":"alice","password":"`+password+`"}`, withTLS())
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s over TLS is not Secure", c.Name)
		}
	}
	if got := counter(t, f.reg, "instant_auth_logins_total", "ok"); got != 6 {
		t.Errorf("logins ok = %v, want 6", got)
	}
}

// counter returns the value of the counter name whose label values
// include all of labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			for _, want := range labels {
				if !slices.Contains(values, want) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestLoginRefused(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.MaxBodyBytes = 1024 })
	tests := []struct {
		name, body string
		status     int
	}{
		{"wrong password", `{"username":"alice","password":"wrong password"}`, 403},
		{"unknown user", `{"username":"nobody","password":"` + password + `"}`, 403},
		{"empty password", `{"username":"alice","password":""}`, 403},
		{"missing fields", `{}`, 403},
		{"extra fields ignored", `{"username":"alice","password":"x","remember":true}`, 403},
		{"malformed", `{"username":`, 400},
		{"not an object", `["alice"]`, 400},
		{"null", `null`, 400},
		{"empty", ``, 400},
		{"wrong type", `{"username":"alice","password":12345678}`, 400},
		{"trailing data", `{"username":"alice","password":"x"} {}`, 400},
		{"duplicate key", `{"username":"nobody","username":"alice","password":"` + password + `"}`, 400},
		{"case-variant key", `{"Username":"alice","password":"` + password + `"}`, 400},
		{"case-variant unknown key", `{"username":"alice","password":"` + password + `","PASSWORD":"x"}`, 400},
		{"invalid UTF-8", "{\"username\":\"alice\",\"password\":\"" + password + "\",\"x\":\"\xff\"}", 400},
		{"too large", `{"username":"alice","password":"` + strings.Repeat("x", 1100) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do("POST", auth.PathLogin, tt.body)
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies set: %v", resp.Cookies())
			}
			wantStatus(t, resp, tt.status)
		})
	}
	// A body of unknown length is bounded too.
	r := httptest.NewRequest("POST", auth.PathLogin, io.MultiReader(strings.NewReader(`{"username":"`), strings.NewReader(strings.Repeat("x", 2000))))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize body: %d, want 413", w.Code)
	}
	if got := counter(t, f.reg, "instant_auth_logins_total", "failed"); got != 5 {
		t.Errorf("logins failed = %v, want 5", got)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	f := newFixture(t, nil)
	for _, path := range []string{auth.PathLogin, auth.PathGetToken, auth.PathSubscribe, auth.PathLogout} {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH", "HEAD"} {
			resp := f.do(m, path, "")
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "OPTIONS, POST" {
				t.Errorf("%s %s: %s, Allow %q", m, path, resp.Status, resp.Header.Get("Allow"))
			}
		}
	}
	// Without the trailing slash: redirected, keeping the method.
	if resp := f.do("POST", "/instant/login", "{}"); resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != auth.PathLogin {
		t.Errorf("POST /instant/login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/instant/login/x", "/instant/", "/instant/get_token/x", "/"} {
		if resp := f.do("POST", path, "{}"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %s, want 404", path, resp.Status)
		}
	}
}

func TestGetToken(t *testing.T) {
	f := newFixture(t, nil)
	s := f.login("gina")
	f.clock.Advance(time.Minute)

	resp := f.do("POST", auth.PathGetToken, "", s.auth())
	if resp.StatusCode != 200 {
		t.Fatalf("get_token: %s", resp.Status)
	}
	body := decode[tokens](t, resp)
	if body.CSRFToken != s.csrf {
		t.Errorf("csrf_token %q, want the session's %q", body.CSRFToken, s.csrf)
	}
	f.checkTokens(body, "gina", "$group1", "$users", "public")

	tests := []struct {
		name string
		opts []reqOpt
	}{
		{"no session", nil},
		{"CSRF token without session", []reqOpt{withHeader(auth.CSRFHeader, s.csrf)}},
		{"tampered session", []reqOpt{withCookies(tamper(s.cookies)), withHeader(auth.CSRFHeader, s.csrf)}},
		{"basic auth", []reqOpt{withHeader("Authorization", "Basic YWxpY2U6cGFzcw==")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, f.do("POST", auth.PathGetToken, "", tt.opts...), 403)
		})
	}

	// The session ends at its expiry.
	f.clock.Advance(auth.DefaultSessionTTL)
	wantStatus(t, f.do("POST", auth.PathGetToken, "", s.auth()), 403)
}

// tamper returns cookies whose session says "root" with the original
// signature.
func tamper(cs []*http.Cookie) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range cs {
		c := *c
		if c.Name == auth.SessionCookie {
			_, sig, _ := strings.Cut(c.Value, ".")
			payload, _ := json.Marshal(map[string]any{"u": "root", "e": "x", "c": "y", "x": time.Now().Add(time.Hour).Unix()})
			c.Value = jwtEncode(payload) + "." + sig
		}
		out = append(out, &c)
	}
	return out
}

func jwtEncode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestGetTokenAnonymous(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.Anonymous = true })
	resp := f.do("POST", auth.PathGetToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("anonymous get_token: %s", resp.Status)
	}
	body := decode[tokens](t, resp)
	if body.CSRFToken != "" {
		t.Errorf("csrf_token %q, want empty", body.CSRFToken)
	}
	f.checkTokens(body, "", "public")

	// A valid session without its CSRF token is that user, not anonymous.
	s := f.login("alice")
	resp = f.do("POST", auth.PathGetToken, "", withCookies(s.cookies))
	f.checkTokens(decode[tokens](t, resp), "alice", "$users", "public")
	// A refused identity token is not downgraded to anonymous access.
	wantStatus(t, f.do("POST", auth.PathGetToken, "", withHeader("Authorization", "Bearer x.y.z")), 403)

	resp = f.do("POST", auth.PathSubscribe, `{"channel":"public"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("anonymous subscribe: %s", resp.Status)
	}
	if c := f.claims(decode[map[string]string](t, resp)["token"]); c["sub"] != "" || c["channel"] != "public" {
		t.Errorf("anonymous subscription token %v", c)
	}
	wantStatus(t, f.do("POST", auth.PathSubscribe, `{"channel":"$users"}`), 403)
	wantStatus(t, f.do("POST", auth.PathLogout, ``), 403)
}

func TestBearerIdentity(t *testing.T) {
	f := newFixture(t, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "ext-1", "groups": []string{"group1"}, "staff": true, "superuser": false,
		"exp": f.clock.Now().Add(time.Hour).Unix()}
	good := signIdentity(t, jwt.SigningMethodHS256, identityKey, claims)
	bearer := func(tok string) reqOpt { return withHeader("Authorization", "Bearer "+tok) }

	resp := f.do("POST", auth.PathGetToken, "", bearer(good))
	if resp.StatusCode != 200 {
		t.Fatalf("get_token with identity JWT: %s", resp.Status)
	}
	body := decode[tokens](t, resp)
	if body.CSRFToken != "" {
		t.Errorf("csrf_token %q, want empty", body.CSRFToken)
	}
	f.checkTokens(body, "ext-1", "$group1", "$staff", "$users", "public")
	if resp := f.do("POST", auth.PathGetToken, "", withHeader("Authorization", "bearer "+good)); resp.StatusCode != 200 {
		t.Errorf("lowercase scheme: %s", resp.Status)
	}
	resp = f.do("POST", auth.PathSubscribe, `{"channel":"$staff"}`, bearer(good))
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe with identity JWT: %s", resp.Status)
	}
	decode[map[string]string](t, resp)

	parts := strings.Split(good, ".")
	refused := map[string]string{
		"expired":   signIdentity(t, jwt.SigningMethodHS256, identityKey, with(claims, "exp", f.clock.Now().Add(-time.Second).Unix())),
		"no exp":    signIdentity(t, jwt.SigningMethodHS256, identityKey, with(claims, "exp", nil)),
		"tampered":  parts[0] + "." + jwtEncode([]byte(`{"sub":"root","superuser":true,"exp":9999999999}`)) + "." + parts[2],
		"alg none":  signIdentity(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims),
		"HS512":     signIdentity(t, jwt.SigningMethodHS512, identityKey, claims),
		"RS256":     signIdentity(t, jwt.SigningMethodRS256, rsaKey, claims),
		"wrong key": signIdentity(t, jwt.SigningMethodHS256, []byte(hmacKey), claims),
		"empty":     "",
	}
	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			wantStatus(t, f.do("POST", auth.PathGetToken, "", bearer(tok)), 403)
			wantStatus(t, f.do("POST", auth.PathSubscribe, `{}`, bearer(tok)), 403)
		})
	}
	// Logout needs a session, not an identity token.
	wantStatus(t, f.do("POST", auth.PathLogout, "", bearer(good)), 403)

	// Without an identity key, Bearer tokens are refused.
	g := newFixture(t, func(c *auth.Config) { c.IdentityKey = "" })
	wantStatus(t, g.do("POST", auth.PathGetToken, "", bearer(good)), 403)
}

func TestSubscribe(t *testing.T) {
	f := newFixture(t, nil)
	gina, alice := f.login("gina"), f.login("alice")

	for _, body := range []string{`{}`, ``, `{"channel":null}`} {
		resp := f.do("POST", auth.PathSubscribe, body, gina.auth())
		if resp.StatusCode != 200 {
			t.Fatalf("subscribe %q: %s", body, resp.Status)
		}
		got := decode[struct {
			Channels []channelToken `json:"channels"`
		}](t, resp)
		f.checkTokens(tokens{WSToken: gina.body.WSToken, Channels: got.Channels}, "gina", "$group1", "$users", "public")
	}

	resp := f.do("POST", auth.PathSubscribe, `{"channel":"$group1"}`, gina.auth())
	if resp.StatusCode != 200 {
		t.Fatalf("subscribe $group1: %s", resp.Status)
	}
	got := decode[struct {
		Token string `json:"token"`
	}](t, resp)
	if c := f.claims(got.Token); c["sub"] != "gina" || c["channel"] != "$group1" {
		t.Errorf("token claims %v", c)
	}

	tests := []struct {
		name, body string
		opts       []reqOpt
		status     int
	}{
		{"not allowed", `{"channel":"$group1"}`, []reqOpt{alice.auth()}, 403},
		{"staff channel", `{"channel":"$staff"}`, []reqOpt{gina.auth()}, 403},
		{"unknown channel", `{"channel":"$nope"}`, []reqOpt{gina.auth()}, 403},
		{"inactive channel", `{"channel":"$off"}`, []reqOpt{gina.auth()}, 403},
		{"empty channel", `{"channel":""}`, []reqOpt{gina.auth()}, 403},
		{"no CSRF token, channel not allowed", `{"channel":"$staff"}`, []reqOpt{withCookies(gina.cookies)}, 403},
		{"not logged in", `{}`, nil, 403},
		{"malformed", `{"channel":`, []reqOpt{gina.auth()}, 400},
		{"channel not a string", `{"channel":1}`, []reqOpt{gina.auth()}, 400},
		{"too large", `{"channel":"` + strings.Repeat("x", 9000) + `"}`, []reqOpt{gina.auth()}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, f.do("POST", auth.PathSubscribe, tt.body, tt.opts...), tt.status)
		})
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, nil)
	s := f.login("alice")
	other := f.login("gina")

	wantStatus(t, f.do("POST", auth.PathLogout, "", withCookies(s.cookies)), 403) // no CSRF
	wantStatus(t, f.do("POST", auth.PathLogout, ""), 403)                         // no session

	resp := f.do("POST", auth.PathLogout, "", s.auth())
	if resp.StatusCode != 200 {
		t.Fatalf("logout: %s", resp.Status)
	}
	cleared := 0
	for _, c := range resp.Cookies() {
		if (c.Name == auth.SessionCookie || c.Name == auth.CSRFCookie) && c.MaxAge < 0 {
			cleared++
		}
	}
	if cleared != 2 {
		t.Errorf("cookies after logout: %v", resp.Cookies())
	}
	if got := decode[map[string]string](t, resp); got["response"] != "ok" || len(got) != 1 {
		t.Errorf("logout body %v", got)
	}

	// The old cookie is worthless now, even if the browser kept it.
	wantStatus(t, f.do("POST", auth.PathGetToken, "", s.auth()), 403)
	wantStatus(t, f.do("POST", auth.PathSubscribe, `{}`, s.auth()), 403)
	wantStatus(t, f.do("POST", auth.PathLogout, "", s.auth()), 403)
	// Other users keep their sessions.
	wantStatus(t, f.do("POST", auth.PathGetToken, "", other.auth()), 200)
	// Logging in again works.
	s2 := f.login("alice")
	wantStatus(t, f.do("POST", auth.PathGetToken, "", s2.auth()), 200)
}

func TestUserChangesAffectSessions(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	alice, gina, sam := f.login("alice"), f.login("gina"), f.login("sam")

	// A password change ends the sessions.
	if err := f.store.SetPassword(ctx, "alice", "new password"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.do("POST", auth.PathGetToken, "", alice.auth()), 403)

	// A deleted user's session ends.
	if err := f.store.Delete(ctx, "sam"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, f.do("POST", auth.PathGetToken, "", sam.auth()), 403)

	// A group change keeps the session and changes the channels at once.
	if err := f.store.Update(ctx, instant.User{Identity: instant.Identity{Username: "gina"}}); err != nil {
		t.Fatal(err)
	}
	resp := f.do("POST", auth.PathGetToken, "", gina.auth())
	if resp.StatusCode != 200 {
		t.Fatalf("get_token after a group change: %s", resp.Status)
	}
	f.checkTokens(decode[tokens](t, resp), "gina", "$users", "public")
	wantStatus(t, f.do("POST", auth.PathSubscribe, `{"channel":"$group1"}`, gina.auth()), 403)
}

func TestCORS(t *testing.T) {
	f := newFixture(t, nil)
	const allowed = "https://app.example"

	resp := f.do("POST", auth.PathLogin, `{"username":"alice","password":"`+password+`"}`, withHeader("Origin", allowed))
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != allowed || h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Vary") != "Origin" {
		t.Errorf("allowed origin: headers %v", h)
	}
	// A refusal from an allowed origin is readable by its script too.
	resp = f.do("POST", auth.PathGetToken, "", withHeader("Origin", allowed))
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("403 for an allowed origin: %s %v", resp.Status, resp.Header)
	}

	for _, origin := range []string{"https://evil.example", "https://app.example.evil", "http://app.example", "null", "https://app.example/"} {
		resp := f.do("POST", auth.PathLogin, `{"username":"alice","password":"`+password+`"}`, withHeader("Origin", origin))
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("origin %q got %s", origin, k)
			}
		}
		if resp.Header.Get("Vary") != "Origin" {
			t.Errorf("origin %q: no Vary: Origin", origin)
		}
	}

	preflight := func(origin string) *http.Response {
		return f.do("OPTIONS", auth.PathGetToken, "", withHeader("Origin", origin),
			withHeader("Access-Control-Request-Method", "POST"),
			withHeader("Access-Control-Request-Headers", "content-type,x-csrftoken"))
	}
	resp = preflight(allowed)
	h = resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowed ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Methods") != "POST" ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), auth.CSRFHeader) ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight from an allowed origin: %s %v", resp.Status, h)
	}
	resp = preflight("https://evil.example")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight from another origin: %s", resp.Status)
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("preflight from another origin got %s", k)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) {
		c.AddressLimit = auth.Limit{Burst: 3, Every: time.Minute}
		c.AddressUsernameLimit = auth.Limit{Burst: 2, Every: 10 * time.Minute}
		c.UsernameLimit = auth.Limit{Burst: 2, Every: 5 * time.Minute}
		c.ClientIPHeader = "X-Real-IP"
	})
	from := func(addr string) reqOpt { return withHeader("X-Real-IP", addr) }
	bad := `{"username":"alice","password":"wrong password"}`
	good := `{"username":"alice","password":"` + password + `"}`

	// Per address: every attempt counts.
	for range 3 {
		wantStatus(t, f.do("POST", auth.PathLogin, `{"username":"gina","password":"`+password+`"}`, from("10.0.0.1")), 200)
	}
	resp := f.do("POST", auth.PathLogin, `{"username":"gina","password":"`+password+`"}`, from("10.0.0.1"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("4th attempt: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	wantStatus(t, f.do("POST", auth.PathLogin, `{"username":"gina","password":"`+password+`"}`, from("10.0.0.2")), 200)
	f.clock.Advance(time.Minute)
	wantStatus(t, f.do("POST", auth.PathLogin, `{"username":"gina","password":"`+password+`"}`, from("10.0.0.1")), 200)

	// Per user name: failures count, from any address; then the right
	// password waits too, from an address that failed...
	wantStatus(t, f.do("POST", auth.PathLogin, bad, from("10.0.1.1")), 403)
	wantStatus(t, f.do("POST", auth.PathLogin, bad, from("10.0.1.2")), 403)
	resp = f.do("POST", auth.PathLogin, good, from("10.0.1.1"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("after 2 failures: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	// ...but not from an address without failures of its own.
	wantStatus(t, f.do("POST", auth.PathLogin, good, from("10.0.1.3")), 200)
	f.clock.Advance(2 * time.Minute)
	if got := f.do("POST", auth.PathLogin, good, from("10.0.1.1")).Header.Get("Retry-After"); got != "180" {
		t.Errorf("Retry-After after 2 minutes: %q, want 180", got)
	}
	f.clock.Advance(3 * time.Minute)
	wantStatus(t, f.do("POST", auth.PathLogin, good, from("10.0.1.1")), 200)

	// Successful logins do not use the user name's budget.
	for i := range 5 {
		wantStatus(t, f.do("POST", auth.PathLogin, `{"username":"sam","password":"`+password+`"}`, from("10.0.2."+string(rune('1'+i)))), 200)
	}
	if got := counter(t, f.reg, "instant_auth_rate_limited_total", "address"); got != 1 {
		t.Errorf("rate limited by address = %v, want 1", got)
	}
	if got := counter(t, f.reg, "instant_auth_rate_limited_total", "username"); got != 2 {
		t.Errorf("rate limited by username = %v, want 2", got)
	}
}

// TestNoSecretsInLogs runs every endpoint and checks that no log line
// holds a password, a token, a cookie or a key.
func TestNoSecretsInLogs(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.Anonymous = true })
	s := f.login("alice")
	f.do("POST", auth.PathLogin, `{"username":"alice","password":"wrong password"}`)
	f.do("POST", auth.PathLogin, `{"username":"`+password+`","password":"`+password+`"}`)
	idTok := signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{"sub": "ext", "exp": f.clock.Now().Add(time.Hour).Unix()})
	expired := signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{"sub": "ext", "exp": f.clock.Now().Add(-time.Hour).Unix()})
	f.do("POST", auth.PathGetToken, "", withHeader("Authorization", "Bearer "+idTok))
	f.do("POST", auth.PathGetToken, "", withHeader("Authorization", "Bearer "+expired))
	f.do("POST", auth.PathSubscribe, `{}`, s.auth())
	f.do("POST", auth.PathLogout, "", s.auth())

	secrets := []string{password, "wrong password", hmacKey, string(identityKey), s.csrf, idTok, expired, s.body.WSToken}
	for _, c := range s.cookies {
		secrets = append(secrets, c.Value)
	}
	if f.logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range f.logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		text := e.Message + " " + string(line)
		for _, sec := range secrets {
			if sec != "" && strings.Contains(text, sec) {
				t.Errorf("log line %q holds a secret", text)
			}
		}
	}
}
