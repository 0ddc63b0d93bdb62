package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/registry"
)

// countingUsers is a user store whose every password is wrong: it counts
// the passwords checked and holds each check until release is closed.
type countingUsers struct {
	checked atomic.Int64
	release chan struct{}
}

func (u *countingUsers) Authenticate(ctx context.Context, _, _ string) (instant.User, error) {
	u.checked.Add(1)
	select {
	case <-u.release:
	case <-ctx.Done():
	}
	return instant.User{}, instant.ErrBadCredentials
}

func (u *countingUsers) Get(context.Context, string) (instant.User, error) {
	return instant.User{}, instant.ErrNotFound
}
func (u *countingUsers) RevokeSessions(context.Context, string) error { return nil }

// TestLoginRateLimitParallel sends wrong guesses in parallel, each held
// inside its password check until all are answered or checked: no more
// than the limit may reach the check.
func TestLoginRateLimitParallel(t *testing.T) {
	tests := []struct {
		name  string
		cfg   auth.Config
		addrs []string // round robin
		limit int64
	}{
		{"one address", auth.Config{
			AddressLimit: auth.Limit{Burst: 1000, Every: time.Second}, AddressUsernameLimit: auth.Limit{Burst: 10, Every: time.Minute},
			UsernameLimit: auth.Limit{Burst: 100, Every: time.Minute},
		}, []string{"10.0.0.1"}, 10},
		{"one address, every attempt", auth.Config{
			AddressLimit: auth.Limit{Burst: 7, Every: time.Minute}, AddressUsernameLimit: auth.Limit{Burst: -1},
			UsernameLimit: auth.Limit{Burst: -1},
		}, []string{"10.0.0.1"}, 7},
		// Each address failed once before: none is let through the name's
		// limit as one without failures.
		{"four addresses", auth.Config{
			AddressLimit: auth.Limit{Burst: 1000, Every: time.Second}, AddressUsernameLimit: auth.Limit{Burst: 100, Every: time.Minute},
			UsernameLimit: auth.Limit{Burst: 10, Every: time.Minute},
		}, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			us := &countingUsers{release: make(chan struct{})}
			cfg := tt.cfg
			cfg.HMACKey = hmacKey
			cfg.ClientIPHeader = "X-Real-IP"
			srv, err := auth.New(cfg, auth.Deps{Channels: registry.Static(testChannels), Users: us})
			if err != nil {
				t.Fatal(err)
			}
			h := srv.Handler()
			post := func(addr string) int {
				r := httptest.NewRequest("POST", auth.PathLogin, strings.NewReader(`{"username":"alice","password":"guess"}`))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("X-Real-IP", addr)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Code
			}
			var before int64
			if len(tt.addrs) > 1 {
				close(us.release)
				for _, a := range tt.addrs {
					if code := post(a); code != http.StatusForbidden {
						t.Fatalf("first failure from %s: %d", a, code)
					}
				}
				before = us.checked.Load()
				us.release = make(chan struct{})
			}
			var limited atomic.Int64
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Go(func() {
					if post(tt.addrs[i%len(tt.addrs)]) == http.StatusTooManyRequests {
						limited.Add(1)
					}
				})
			}
			deadline := time.Now().Add(30 * time.Second)
			for us.checked.Load()-before+limited.Load() < 40 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			close(us.release)
			wg.Wait()
			checked := us.checked.Load() - before
			if want := tt.limit - before; checked > want || checked+limited.Load() != 40 {
				t.Errorf("%d of 40 parallel guesses checked, %d refused with 429; want at most %d checked", checked, limited.Load(), want)
			}
		})
	}
}

// TestLoginNoLockout: failures from one address cannot lock the account
// for its owner at another.
func TestLoginNoLockout(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) {
		c.AddressLimit = auth.Limit{Burst: 100, Every: time.Second}
		c.AddressUsernameLimit = auth.Limit{Burst: 3, Every: 10 * time.Minute}
		c.UsernameLimit = auth.Limit{Burst: 5, Every: 10 * time.Minute}
		c.ClientIPHeader = "X-Real-IP"
	})
	from := func(addr string) reqOpt { return withHeader("X-Real-IP", addr) }
	bad := `{"username":"alice","password":"wrong password"}`
	good := `{"username":"alice","password":"` + password + `"}`
	// The attacker spends the name's budget from two addresses, and then
	// is refused from both.
	for i := range 5 {
		f.do("POST", auth.PathLogin, bad, from("203.0.113."+strconv.Itoa(1+i%2)))
	}
	for _, a := range []string{"203.0.113.1", "203.0.113.2"} {
		wantStatus(t, f.do("POST", auth.PathLogin, bad, from(a)), http.StatusTooManyRequests)
		wantStatus(t, f.do("POST", auth.PathLogin, good, from(a)), http.StatusTooManyRequests)
	}
	// The owner, at an address without failures, logs in, again and again.
	for range 3 {
		wantStatus(t, f.do("POST", auth.PathLogin, good, from("198.51.100.7")), http.StatusOK)
	}
	// After a typo there, the owner waits like everybody else.
	wantStatus(t, f.do("POST", auth.PathLogin, bad, from("198.51.100.7")), http.StatusForbidden)
	wantStatus(t, f.do("POST", auth.PathLogin, good, from("198.51.100.7")), http.StatusTooManyRequests)
	// Every failure is logged at info with the address, never the password.
	failed := f.logs.FilterMessage("login failed").All()
	if len(failed) != 6 {
		t.Errorf("%d failed logins logged, want 6", len(failed))
	}
	for _, e := range failed {
		if e.Level != zapcore.InfoLevel || e.ContextMap()["address"] == nil {
			t.Errorf("failed login logged as %v %v", e.Level, e.ContextMap())
		}
	}
}

// TestLoginCSRF: a cross-site form cannot log a browser in, and every POST
// must be JSON.
func TestLoginCSRF(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"username":"alice","password":"` + password + `"}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		for _, origin := range []string{"https://evil.example", "null", "http://example.com.evil.example"} {
			resp := f.do("POST", auth.PathLogin, body, withHeader("Content-Type", ct), withHeader("Origin", origin))
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
				t.Errorf("cross-site %s form from %s: %s, cookies %v", ct, origin, resp.Status, resp.Cookies())
			}
		}
		// Same origin, or no browser at all: still not JSON.
		for _, origin := range []string{"", "http://example.com"} {
			resp := f.do("POST", auth.PathLogin, body, withHeader("Content-Type", ct), withHeader("Origin", origin))
			if resp.StatusCode != http.StatusUnsupportedMediaType || len(resp.Cookies()) != 0 {
				t.Errorf("%s from origin %q: %s, want 415", ct, origin, resp.Status)
			}
		}
	}
	resp := f.do("POST", auth.PathLogin, body, withHeader("Content-Type", ""))
	wantStatus(t, resp, http.StatusUnsupportedMediaType)
	// JSON from another origin that is not allowed: refused on every
	// endpoint, before anything is read.
	s := f.login("alice")
	for _, path := range []string{auth.PathLogin, auth.PathGetToken, auth.PathSubscribe, auth.PathLogout} {
		resp := f.do("POST", path, body, withHeader("Origin", "https://evil.example"), s.auth())
		wantStatus(t, resp, http.StatusForbidden)
	}
	// Accepted: this server (httptest's Host is example.com), an allowed
	// origin, JSON with a charset.
	wantStatus(t, f.do("POST", auth.PathLogin, body, withHeader("Origin", "http://example.com")), http.StatusOK)
	wantStatus(t, f.do("POST", auth.PathLogin, body, withHeader("Origin", "https://app.example")), http.StatusOK)
	wantStatus(t, f.do("POST", auth.PathLogin, body, withHeader("Content-Type", "application/json; charset=utf-8")), http.StatusOK)
	// Behind a proxy that rewrites Host, the browser's own word that the
	// request is same-origin; a cross-site one stays refused.
	proxied := func(site string) reqOpt {
		return func(r *http.Request) {
			r.Host = "auth:8001"
			r.Header.Set("Origin", "https://www.example.com")
			r.Header.Set("Sec-Fetch-Site", site)
		}
	}
	wantStatus(t, f.do("POST", auth.PathLogin, body, proxied("same-origin")), http.StatusOK)
	wantStatus(t, f.do("POST", auth.PathLogin, body, proxied("same-site")), http.StatusForbidden)
	wantStatus(t, f.do("POST", auth.PathLogin, body, proxied("cross-site")), http.StatusForbidden)
}

// TestDjangoInstantClient replays the requests of djangoinstant 0.5.0
// from an allowed origin: get_token and subscribe with the session
// cookie and no CSRF header; logout still needs it.
func TestDjangoInstantClient(t *testing.T) {
	f := newFixture(t, nil)
	const origin = "https://app.example"
	pre := f.do("OPTIONS", auth.PathGetToken, "", withHeader("Origin", origin),
		withHeader("Access-Control-Request-Method", "POST"), withHeader("Access-Control-Request-Headers", "content-type"))
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != origin ||
		pre.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight: %s %v", pre.Status, pre.Header)
	}
	s := f.login("gina")
	cookieOnly := []reqOpt{withCookies(s.cookies), withHeader("Origin", origin)}
	resp := f.do("POST", auth.PathGetToken, `{}`, cookieOnly...)
	body := decode[tokens](t, resp)
	if body.CSRFToken != s.csrf || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("get_token: csrf_token %q, want %q; headers %v", body.CSRFToken, s.csrf, resp.Header)
	}
	f.checkTokens(body, "gina", "$group1", "$users", "public")
	wantStatus(t, f.do("POST", auth.PathSubscribe, `{"channel":"$group1"}`, cookieOnly...), http.StatusOK)
	wantStatus(t, f.do("POST", auth.PathSubscribe, `{"channel":"$staff"}`, cookieOnly...), http.StatusForbidden)
	wantStatus(t, f.do("POST", auth.PathLogout, `{}`, cookieOnly...), http.StatusForbidden)
	wantStatus(t, f.do("POST", auth.PathLogout, `{}`, append(cookieOnly, withHeader(auth.CSRFHeader, "wrong"))...), http.StatusForbidden)
	wantStatus(t, f.do("POST", auth.PathLogout, `{}`, append(cookieOnly, withHeader(auth.CSRFHeader, s.csrf))...), http.StatusOK)
	wantStatus(t, f.do("POST", auth.PathGetToken, `{}`, cookieOnly...), http.StatusForbidden)
}

// TestNoSniff: every answer tells browsers not to guess its type.
func TestNoSniff(t *testing.T) {
	f := newFixture(t, nil)
	for _, resp := range []*http.Response{
		f.do("POST", auth.PathLogin, `{"username":"alice","password":"`+password+`"}`),
		f.do("POST", auth.PathLogin, `{"username":"alice","password":"wrong password"}`),
		f.do("POST", auth.PathLogin, `{`),
		f.do("POST", auth.PathLogin, `{}`, withHeader("Content-Type", "text/plain")),
		f.do("POST", auth.PathLogin, `{}`, withHeader("Origin", "https://evil.example")),
		f.do("GET", auth.PathGetToken, ``),
		f.do("OPTIONS", auth.PathGetToken, ``),
	} {
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", resp.Status, resp.Header)
		}
	}
}
