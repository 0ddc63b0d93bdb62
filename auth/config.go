package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/instanthq/instant"
)

// Defaults of Config.
const (
	// DefaultTokenTTL is the lifetime of the Centrifugo tokens. It also
	// bounds how long a client that kept a token can subscribe again after
	// a revocation (see Server.Run), so keep it short.
	DefaultTokenTTL = time.Hour
	// DefaultSessionTTL is the lifetime of a login session, as Django's
	// SESSION_COOKIE_AGE.
	DefaultSessionTTL = 14 * 24 * time.Hour
	// DefaultMaxBodyBytes bounds request bodies.
	DefaultMaxBodyBytes = 8 << 10
	// DefaultIdentityMaxTTL is the longest lifetime of an identity JWT
	// accepted: from its iat, or from now without one, to its exp.
	DefaultIdentityMaxTTL = time.Hour
	// MinKeyLength is the shortest HMACKey and IdentityKey, in bytes: the
	// size of an HS256 hash, as RFC 7518 asks.
	MinKeyLength = 32
)

// Default login rate limits.
var (
	// DefaultAddressLimit allows 20 login attempts at once from one client
	// address, then one every 3 seconds.
	DefaultAddressLimit = Limit{Burst: 20, Every: 3 * time.Second}
	// DefaultAddressUsernameLimit allows 5 failed logins at once for one
	// user name from one client address, then one a minute.
	DefaultAddressUsernameLimit = Limit{Burst: 5, Every: time.Minute}
	// DefaultUsernameLimit allows 10 failed logins at once for one user
	// name from all addresses, then one every 30 seconds.
	DefaultUsernameLimit = Limit{Burst: 10, Every: 30 * time.Second}
)

// Limit is a token bucket: Burst attempts at once, then one more every
// Every. The zero Limit means the default; a negative Burst turns the
// limit off.
type Limit struct {
	Burst int
	Every time.Duration
}

func (l Limit) off() bool { return l.Burst < 0 }

// Config configures a Server. The zero value of a field means its
// default.
type Config struct {
	// HMACKey signs the Centrifugo tokens (HS256, the bytes of the string
	// as they are): Centrifugo's client.token.hmac_secret_key,
	// CENTRIFUGO_HMAC_KEY. Required: at least MinKeyLength bytes (use
	// random ones).
	HMACKey string
	// TokenTTL is the lifetime of the connection and subscription tokens
	// (INSTANT_TOKEN_TTL). Defaults to DefaultTokenTTL.
	TokenTTL time.Duration
	// AllowedOrigins are the origins ("https://app.example.com", exactly
	// as browsers send them) allowed to call the endpoints from other
	// origins, with credentials (INSTANT_ALLOWED_ORIGINS). Empty: no CORS.
	AllowedOrigins []string
	// IdentityKey verifies identity JWTs (HS256) presented as Bearer
	// tokens (INSTANT_IDENTITY_KEY): at least MinKeyLength bytes, and not
	// HMACKey (or a Centrifugo token would pass for an identity). Empty:
	// Bearer tokens are refused.
	IdentityKey string
	// IdentityMaxTTL is the longest lifetime of an identity JWT, from its
	// iat (or from now without one) to its exp; a longer one is refused
	// (INSTANT_IDENTITY_MAX_TTL). Defaults to DefaultIdentityMaxTTL.
	IdentityMaxTTL time.Duration
	// IdentityIssuer, when set, is the iss every identity JWT must carry
	// (INSTANT_IDENTITY_ISSUER).
	IdentityIssuer string
	// IdentityAudience, when set, must be in the aud of every identity
	// JWT (INSTANT_IDENTITY_AUDIENCE).
	IdentityAudience string
	// Anonymous lets visitors who are not logged in get tokens for the
	// public channels (INSTANT_ANONYMOUS).
	Anonymous bool
	// SessionKey signs the session cookies. Defaults to a key derived from
	// HMACKey; set it to end every session without changing HMACKey.
	SessionKey string
	// SessionTTL is the lifetime of a login session. Defaults to
	// DefaultSessionTTL.
	SessionTTL time.Duration
	// SecureCookies marks the cookies Secure on every response, for a
	// server behind a proxy that terminates TLS. Without it they are
	// Secure when the request came over TLS.
	SecureCookies bool
	// ClientIPHeader names a request header holding the client address,
	// set by a trusted reverse proxy ("X-Real-IP", or "X-Forwarded-For",
	// whose last address is used). Empty: the connection's address.
	ClientIPHeader string
	// TrustedProxies are the peers whose ClientIPHeader is believed
	// (INSTANT_TRUSTED_PROXIES): a request from any other address is
	// counted by its connection's address, so a client reaching auth
	// directly cannot forge the header. Empty: every peer (set it
	// wherever auth is reachable other than through the proxy).
	TrustedProxies []netip.Prefix
	// AddressLimit bounds login attempts per client address; every attempt
	// counts. Defaults to DefaultAddressLimit.
	AddressLimit Limit
	// AddressUsernameLimit bounds failed logins per client address and
	// user name. Defaults to DefaultAddressUsernameLimit.
	AddressUsernameLimit Limit
	// UsernameLimit bounds failed logins per user name, from addresses
	// that have failed for that name themselves: an address without a
	// failure of its own for the name still gets its attempt checked, so
	// that nobody can lock an account from elsewhere. Defaults to
	// DefaultUsernameLimit.
	UsernameLimit Limit
	// MaxBodyBytes bounds request bodies; a larger one is answered 413.
	// Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now returns the current time. Defaults to time.Now; tests set it.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.AddressLimit == (Limit{}) {
		c.AddressLimit = DefaultAddressLimit
	}
	if c.AddressUsernameLimit == (Limit{}) {
		c.AddressUsernameLimit = DefaultAddressUsernameLimit
	}
	if c.UsernameLimit == (Limit{}) {
		c.UsernameLimit = DefaultUsernameLimit
	}
	if c.IdentityMaxTTL == 0 {
		c.IdentityMaxTTL = DefaultIdentityMaxTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// settings are the environment variables of the instant command that
// set Config's fields, for the errors of Validate.
var settings = map[string]string{
	"HMACKey":        "CENTRIFUGO_HMAC_KEY",
	"TokenTTL":       "INSTANT_TOKEN_TTL",
	"AllowedOrigins": "INSTANT_ALLOWED_ORIGINS",
	"IdentityKey":    "INSTANT_IDENTITY_KEY",
	"IdentityMaxTTL": "INSTANT_IDENTITY_MAX_TTL",
	"ClientIPHeader": "INSTANT_CLIENT_IP_HEADER",
}

// Validate sets the defaults, then reports every invalid field: the
// error joins one *instant.SettingError per problem, naming the
// environment variable of the instant command that sets the field
// (INSTANT_TOKEN_TTL (TokenTTL): …) or the field alone.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, instant.SettingErrorf(settings[field], field, format, args...))
	}
	switch {
	case c.HMACKey == "":
		bad("HMACKey", "required: set it to Centrifugo's client.token.hmac_secret_key")
	case len(c.HMACKey) < MinKeyLength:
		bad("HMACKey", "%d bytes, want at least %d (instant init writes random ones)", len(c.HMACKey), MinKeyLength)
	}
	switch {
	case c.IdentityKey == "":
	case len(c.IdentityKey) < MinKeyLength:
		bad("IdentityKey", "%d bytes, want at least %d", len(c.IdentityKey), MinKeyLength)
	case c.IdentityKey == c.HMACKey:
		bad("IdentityKey", "equals HMACKey (CENTRIFUGO_HMAC_KEY): a Centrifugo token would pass for an identity; use another key")
	}
	if c.TokenTTL < time.Second {
		bad("TokenTTL", "%s is less than a second", c.TokenTTL)
	}
	if c.SessionTTL < time.Second {
		bad("SessionTTL", "%s is less than a second", c.SessionTTL)
	}
	if c.IdentityMaxTTL < time.Second {
		bad("IdentityMaxTTL", "%s is less than a second", c.IdentityMaxTTL)
	}
	if c.MaxBodyBytes < 64 {
		bad("MaxBodyBytes", "%d is less than 64", c.MaxBodyBytes)
	}
	for _, o := range c.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			bad("AllowedOrigins", "%w", err)
		}
	}
	for _, l := range []struct {
		name  string
		limit Limit
	}{{"AddressLimit", c.AddressLimit}, {"AddressUsernameLimit", c.AddressUsernameLimit}, {"UsernameLimit", c.UsernameLimit}} {
		if !l.limit.off() && (l.limit.Burst == 0 || l.limit.Every <= 0) {
			bad(l.name, "burst %d every %s: want a positive burst and interval", l.limit.Burst, l.limit.Every)
		}
	}
	if strings.ContainsAny(c.ClientIPHeader, " :\t\r\n") {
		bad("ClientIPHeader", "%q is not a header name", c.ClientIPHeader)
	}
	return errors.Join(errs...)
}

// validOrigin reports why o is not an origin as browsers send it.
func validOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		o != strings.ToLower(u.Scheme+"://"+u.Host) || strings.HasSuffix(o, ":") || !validHost(u.Host) {
		return fmt.Errorf("%q is not an origin such as https://app.example.com (lowercase, no path, no trailing slash, no wildcard: list each origin)", o)
	}
	return nil
}

// validHost reports whether h is a host name or IP address, with an
// optional port, as an Origin header carries it: a wildcard such as
// *.example.com never matches one.
func validHost(h string) bool {
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
	}
	for _, r := range port {
		if r < '0' || r > '9' {
			return false
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		return net.ParseIP(host[1:len(host)-1]) != nil
	}
	for _, r := range host {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return host != ""
}

// sessionKey returns the key that signs session cookies.
func (c *Config) sessionKey() []byte {
	if c.SessionKey != "" {
		return []byte(c.SessionKey)
	}
	m := hmac.New(sha256.New, []byte(c.HMACKey))
	m.Write([]byte("instant auth session key v1"))
	return m.Sum(nil)
}
