package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/instanthq/instant/users"
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
// claims (iat, nbf, aud, iss, jti) are allowed; iat and nbf are checked.
type identityClaims struct {
	Groups    []string `json:"groups"`
	Staff     bool     `json:"staff"`
	Superuser bool     `json:"superuser"`
	jwt.RegisteredClaims
}

// ParseIdentity verifies an identity JWT signed by an existing app with
// key and returns the identity it asserts and when it expires. The token
// must be HS256 (alg none, HS512, RS256 and every other method are
// refused), correctly signed with key, carry exp in the future (at now),
// a sub that is a valid user name (users.ValidUsername), and groups (a
// list of strings), staff and superuser (booleans) when present; iat and
// nbf, when present, must not be in the future. Every error wraps
// ErrBadIdentity.
func ParseIdentity(key []byte, token string, now time.Time) (Identity, time.Time, error) {
	if len(key) == 0 {
		return Identity{}, time.Time{}, fmt.Errorf("%w: no identity key configured", ErrBadIdentity)
	}
	if len(token) > maxIdentityToken {
		return Identity{}, time.Time{}, fmt.Errorf("%w: longer than %d bytes", ErrBadIdentity, maxIdentityToken)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(hs256),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var c identityClaims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("signing method %v", t.Header["alg"])
		}
		return key, nil
	})
	if err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	if err := users.ValidUsername(c.Subject); err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("%w: sub: %w", ErrBadIdentity, err)
	}
	groups, err := users.NormalizeGroups(c.Groups)
	if err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("%w: groups: %w", ErrBadIdentity, err)
	}
	id := Identity{Username: c.Subject, Groups: groups, Staff: c.Staff, Superuser: c.Superuser}
	return id, c.ExpiresAt.Time, nil
}
