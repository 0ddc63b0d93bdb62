package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Cookie names.
const (
	// SessionCookie holds the signed session (HttpOnly).
	SessionCookie = "instant_session"
	// CSRFCookie holds the session's CSRF token for scripts of the same
	// site, which send it back in the X-CSRFToken header (as Django's
	// csrftoken cookie). It is not HttpOnly and grants nothing alone.
	CSRFCookie = "instant_csrftoken"
	// CSRFHeader carries the CSRF token on a cookie-authenticated logout,
	// the one request that changes something (login, get_token and
	// subscribe need none; see Server.Handler for what protects them).
	CSRFHeader = "X-CSRFToken"
)

// sessionPath is the Path of the session cookie: only the auth endpoints
// receive it.
const sessionPath = "/instant/"

// maxCookie bounds the length of a session cookie value we parse.
const maxCookie = 4096

var errBadSession = errors.New("auth: invalid session")

// session is what the session cookie holds: stateless, signed, not
// encrypted (nothing in it is secret from its owner).
type session struct {
	Username string `json:"u"`
	Epoch    string `json:"e"` // the user's instant.User.Epoch at login
	CSRF     string `json:"c"`
	Expires  int64  `json:"x"` // Unix seconds
}

// b64 encodes cookie parts; decoding is strict, so that one value has one
// encoding.
var b64 = base64.RawURLEncoding.Strict()

// newCSRF returns a fresh random CSRF token.
func newCSRF() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails
	return b64.EncodeToString(b)
}

// encodeSession returns the cookie value of s signed with key:
// base64url(JSON) "." base64url(HMAC-SHA256).
func encodeSession(key []byte, s session) string {
	payload, _ := json.Marshal(s) // cannot fail
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(mac(key, p))
}

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// decodeSession verifies the signature of the cookie value v and returns
// the session it holds if it has not expired at now.
func decodeSession(key []byte, v string, now time.Time) (session, error) {
	if len(v) > maxCookie {
		return session{}, errBadSession
	}
	p, sig, ok := bytes.Cut([]byte(v), []byte("."))
	if !ok {
		return session{}, errBadSession
	}
	got, err := b64.DecodeString(string(sig))
	if err != nil || !hmac.Equal(got, mac(key, string(p))) {
		return session{}, errBadSession
	}
	payload, err := b64.DecodeString(string(p))
	if err != nil {
		return session{}, errBadSession
	}
	var s session
	if err := json.Unmarshal(payload, &s); err != nil || s.Username == "" || s.Epoch == "" || s.CSRF == "" {
		return session{}, errBadSession
	}
	if now.Unix() >= s.Expires {
		return session{}, errBadSession
	}
	return s, nil
}

// csrfOK reports whether r carries the session's CSRF token, in constant
// time.
func csrfOK(r *http.Request, s session) bool {
	got := r.Header.Get(CSRFHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// setSessionCookies adds the session and CSRF cookies of s to w.
func (srv *Server) setSessionCookies(w http.ResponseWriter, r *http.Request, s session) {
	secure := srv.cfg.SecureCookies || r.TLS != nil
	maxAge := int(srv.cfg.SessionTTL / time.Second)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: encodeSession(srv.sessionKey, s), Path: sessionPath,
		MaxAge: maxAge, Expires: time.Unix(s.Expires, 0), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	http.SetCookie(w, &http.Cookie{
		Name: CSRFCookie, Value: s.CSRF, Path: "/",
		MaxAge: maxAge, Expires: time.Unix(s.Expires, 0), Secure: secure, SameSite: http.SameSiteLaxMode,
	})
}

// clearSessionCookies tells the browser to drop both cookies.
func (srv *Server) clearSessionCookies(w http.ResponseWriter, r *http.Request) {
	secure := srv.cfg.SecureCookies || r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Path: sessionPath, MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Path: "/", MaxAge: -1, Secure: secure, SameSite: http.SameSiteLaxMode})
}
