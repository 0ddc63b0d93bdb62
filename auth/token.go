package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instanthq/instant"
)

// hs256 is the only signing method accepted or produced anywhere.
var hs256 = []string{jwt.SigningMethodHS256.Alg()}

// maxIdentityToken bounds the length of an identity JWT.
const maxIdentityToken = 8 << 10

// ErrBadIdentity is returned by ParseIdentity for a token that is not a
// valid identity JWT: not HS256, a bad signature, expired or without exp,
// or claims missing or of the wrong type.
var ErrBadIdentity = errors.New("auth: invalid identity token")

// signer issues the Centrifugo tokens.
type signer struct {
	key []byte
	ttl time.Duration
}

// connection returns a connection token {sub, exp, iat} for sub ("" for an
// anonymous visitor) and when it expires.
func (s signer) connection(sub string, now time.Time) (string, error) {
	return s.sign(jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(s.ttl).Unix()})
}

// subscription returns a subscription token {sub, channel, exp, iat}.
func (s signer) subscription(sub, channel string, now time.Time) (string, error) {
	return s.sign(jwt.MapClaims{"sub": sub, "channel": channel, "iat": now.Unix(), "exp": now.Add(s.ttl).Unix()})
}

func (s signer) sign(claims jwt.MapClaims) (string, error) {
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return t, nil
}

// identityClaims are the claims of an identity JWT. Other registered
// claims (iat, nbf, aud, iss, jti) are allowed; iat and nbf are checked,
// iss and aud when IdentityRules ask for them.
type identityClaims struct {
	Groups    []string `json:"groups"`
	Staff     bool     `json:"staff"`
	Superuser bool     `json:"superuser"`
	jwt.RegisteredClaims
}

// knownClaims are the claim names identityClaims reads.
var knownClaims = []string{"sub", "exp", "iat", "nbf", "iss", "aud", "jti", "groups", "staff", "superuser"}

// UnmarshalJSON refuses what encoding/json would let through: a date
// (exp, iat, nbf) that is not a JSON number (a string holding digits
// would be read as one), and a known claim spelt in another case ("EXP"
// would be read as exp).
func (c *identityClaims) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for k, v := range raw {
		for _, known := range knownClaims {
			if k != known && strings.EqualFold(k, known) {
				return fmt.Errorf("claim %q: want %q", k, known)
			}
		}
		switch k {
		case "exp", "iat", "nbf":
			if v = bytes.TrimSpace(v); len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
				return fmt.Errorf("claim %s: %s is not a number", k, v)
			}
		}
	}
	type plain identityClaims
	return json.Unmarshal(b, (*plain)(c))
}

// IdentityRules are what an identity JWT must meet beyond a valid HS256
// signature and well-typed claims (see ParseIdentity).
type IdentityRules struct {
	// MaxTTL is the longest lifetime accepted, from iat (or from now
	// without one) to exp. Defaults to DefaultIdentityMaxTTL.
	MaxTTL time.Duration
	// Issuer, when set, must be the token's iss.
	Issuer string
	// Audience, when set, must be in the token's aud.
	Audience string
}

// ParseIdentity is IdentityRules{}.Parse: the default lifetime, any iss
// and aud.
func ParseIdentity(key []byte, token string, now time.Time) (instant.Identity, time.Time, error) {
	return IdentityRules{}.Parse(key, token, now)
}

// Parse verifies an identity JWT signed by an existing app with key and
// returns the identity it asserts and when it expires. The token must be
// HS256 (alg none, HS512, RS256 and every other method are refused),
// correctly signed with key, carry exp (a JSON number) in the future (at
// now) and at most MaxTTL after its iat and after now, a sub that is a
// valid user name (instant.ValidUsername), and groups (a list of strings),
// staff and superuser (booleans) when present; iat and nbf, when
// present, must be numbers not in the future; iss and aud must match the
// rules that name them. Every error wraps ErrBadIdentity.
func (r IdentityRules) Parse(key []byte, token string, now time.Time) (instant.Identity, time.Time, error) {
	if len(key) == 0 {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: no identity key configured", ErrBadIdentity)
	}
	if len(token) > maxIdentityToken {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: longer than %d bytes", ErrBadIdentity, maxIdentityToken)
	}
	if r.MaxTTL <= 0 {
		r.MaxTTL = DefaultIdentityMaxTTL
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(hs256),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	}
	if r.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(r.Issuer))
	}
	if r.Audience != "" {
		opts = append(opts, jwt.WithAudience(r.Audience))
	}
	var c identityClaims
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("signing method %v", t.Header["alg"])
		}
		return key, nil
	})
	if err != nil {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	exp := c.ExpiresAt.Time
	if exp.Sub(now) > r.MaxTTL || (c.IssuedAt != nil && exp.Sub(c.IssuedAt.Time) > r.MaxTTL) {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: lives longer than %s", ErrBadIdentity, r.MaxTTL)
	}
	if err := instant.ValidUsername(c.Subject); err != nil {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: sub: %w", ErrBadIdentity, err)
	}
	groups, err := instant.NormalizeGroups(c.Groups)
	if err != nil {
		return instant.Identity{}, time.Time{}, fmt.Errorf("%w: groups: %w", ErrBadIdentity, err)
	}
	id := instant.Identity{Username: c.Subject, Groups: groups, Staff: c.Staff, Superuser: c.Superuser}
	return id, exp, nil
}
