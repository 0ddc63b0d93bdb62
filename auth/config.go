package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
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
)

// Default login rate limits.
var (
	// DefaultAddressLimit allows 20 login attempts at once from one client
	// address, then one every 3 seconds.
	DefaultAddressLimit = Limit{Burst: 20, Every: 3 * time.Second}
	// DefaultUsernameLimit allows 10 failed logins at once for one user
	// name, then one every 30 seconds.
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
	// CENTRIFUGO_HMAC_KEY. Required; use at least 32 random bytes.
	HMACKey string
	// TokenTTL is the lifetime of the connection and subscription tokens
	// (INSTANT_TOKEN_TTL). Defaults to DefaultTokenTTL.
	TokenTTL time.Duration
	// AllowedOrigins are the origins ("https://app.example.com", exactly
	// as browsers send them) allowed to call the endpoints from other
	// origins, with credentials (INSTANT_ALLOWED_ORIGINS). Empty: no CORS.
	AllowedOrigins []string
	// IdentityKey verifies identity JWTs (HS256) presented as Bearer
	// tokens (INSTANT_IDENTITY_KEY). Empty: Bearer tokens are refused.
	IdentityKey string
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
	// AddressLimit bounds login attempts per client address; every attempt
	// counts. Defaults to DefaultAddressLimit.
	AddressLimit Limit
	// UsernameLimit bounds failed logins per user name. Defaults to
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
	if c.UsernameLimit == (Limit{}) {
		c.UsernameLimit = DefaultUsernameLimit
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate sets the defaults, then reports every invalid field.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.HMACKey == "" {
		errs = append(errs, errors.New("HMACKey: required (CENTRIFUGO_HMAC_KEY)"))
	}
	if c.TokenTTL < time.Second {
		errs = append(errs, fmt.Errorf("TokenTTL: %s is less than a second", c.TokenTTL))
	}
	if c.SessionTTL < time.Second {
		errs = append(errs, fmt.Errorf("SessionTTL: %s is less than a second", c.SessionTTL))
	}
	if c.MaxBodyBytes < 64 {
		errs = append(errs, fmt.Errorf("MaxBodyBytes: %d is less than 64", c.MaxBodyBytes))
	}
	for _, o := range c.AllowedOrigins {
		if err := validOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("AllowedOrigins: %w", err))
		}
	}
	for _, l := range []struct {
		name  string
		limit Limit
	}{{"AddressLimit", c.AddressLimit}, {"UsernameLimit", c.UsernameLimit}} {
		if !l.limit.off() && (l.limit.Burst == 0 || l.limit.Every <= 0) {
			errs = append(errs, fmt.Errorf("%s: burst %d every %s: want a positive burst and interval", l.name, l.limit.Burst, l.limit.Every))
		}
	}
	if strings.ContainsAny(c.ClientIPHeader, " :\t\r\n") {
		errs = append(errs, fmt.Errorf("ClientIPHeader: %q is not a header name", c.ClientIPHeader))
	}
	return errors.Join(errs...)
}

// validOrigin reports why o is not an origin as browsers send it.
func validOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		o != strings.ToLower(u.Scheme+"://"+u.Host) || strings.HasSuffix(o, ":") {
		return fmt.Errorf("%q is not an origin such as https://app.example.com (lowercase, no path, no trailing slash, no wildcard)", o)
	}
	return nil
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
