package auth_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/instanthq/instant/auth"
)

// TestTrustedProxies checks that the client address header counts only
// when the peer is a trusted proxy: httptest's requests come from
// 192.0.2.1.
func TestTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name     string
		proxies  []netip.Prefix
		believed bool
	}{
		{"peer trusted", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, true},
		{"peer not trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}, false},
		{"no list: every peer", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *auth.Config) {
				c.AddressLimit = auth.Limit{Burst: 1, Every: time.Minute}
				c.ClientIPHeader = "X-Forwarded-For"
				c.TrustedProxies = tc.proxies
			})
			login := `{"username":"gina","password":"` + password + `"}`
			wantStatus(t, f.do("POST", auth.PathLogin, login, withHeader("X-Forwarded-For", "198.51.100.1")), 200)
			// Another forged client address: a new budget only when the
			// header is believed.
			resp := f.do("POST", auth.PathLogin, login, withHeader("X-Forwarded-For", "198.51.100.2"))
			want := http.StatusTooManyRequests
			if tc.believed {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("second login with another header value: %s, want %d", resp.Status, want)
			}
		})
	}
}
