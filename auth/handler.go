package auth

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/instanthq/instant"
)

// The endpoint paths, as django-instant's.
const (
	PathLogin     = "/instant/login/"
	PathGetToken  = "/instant/get_token/"
	PathSubscribe = "/instant/subscribe/"
	PathLogout    = "/instant/logout/"
)

// allowedMethods is the Allow header of every endpoint.
const allowedMethods = "OPTIONS, POST"

// Handler returns the HTTP handler of the four endpoints (exact paths,
// see the package documentation); other paths are answered 404. Mount it
// on a mux under "/instant/" next to the monitor endpoints.
//
// Every endpoint answers POST, answers OPTIONS (a CORS preflight for an
// allowed origin) with 204, and any other method with 405 and an Allow
// header. A POST whose Origin header is present and neither this
// server's (its host is the request's Host) nor one of
// Config.AllowedOrigins is answered 403, one whose Content-Type is not
// application/json 415 (so that a cross-site request always needs a CORS
// preflight: no HTML form can send it), a body larger than
// Config.MaxBodyBytes 413, a malformed JSON body 400, and a request that
// is not allowed 403 with an empty body. Responses from an allowed origin
// carry CORS headers with credentials; others get none. Every response
// carries X-Content-Type-Options: nosniff.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(PathLogin+"{$}", s.endpoint(s.login))
	mux.Handle(PathGetToken+"{$}", s.endpoint(s.getToken))
	mux.Handle(PathSubscribe+"{$}", s.endpoint(s.subscribe))
	mux.Handle(PathLogout+"{$}", s.endpoint(s.logout))
	s.adminRoutes(mux)
	return mux
}

// endpoint wraps a POST handler with CORS, method and body-size handling.
func (s *Server) endpoint(post http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.origins[origin]
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		switch r.Method {
		case http.MethodPost:
		case http.MethodOptions:
			if allowed && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "POST")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+CSRFHeader)
				h.Set("Access-Control-Max-Age", "600")
			}
			h.Set("Allow", allowedMethods)
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", allowedMethods)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		h.Set("Cache-Control", "no-store")
		if origin != "" && !allowed && !sameOrigin(origin, r) {
			s.log.Info("cross-origin request refused", zap.String("path", r.URL.Path), zap.String("origin", origin))
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if !jsonContent(r) {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		if r.ContentLength > s.cfg.MaxBodyBytes {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		post(w, r)
	})
}

// sameOrigin reports whether origin, an Origin header, names the server
// r was sent to: the browser says so (Sec-Fetch-Site: same-origin, which
// no page can set), or origin's host (with the port) is r's Host. The
// scheme is not compared, as a proxy terminating TLS hides it; a proxy
// that rewrites Host is covered by the browser's word, or by listing the
// site's origin in Config.AllowedOrigins.
func sameOrigin(origin string, r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && strings.EqualFold(u.Host, r.Host)
}

// jsonContent reports whether r's Content-Type is application/json (with
// any parameters, such as charset).
func jsonContent(r *http.Request) bool {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && t == "application/json"
}

// Request bodies.
type (
	loginRequest struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	subscribeRequest struct {
		Channel *string `json:"channel"` // nil: every channel
	}
)

// Response bodies.
type (
	// tokensResponse is the body of login and get_token.
	tokensResponse struct {
		CSRFToken string         `json:"csrf_token"`
		WSToken   string         `json:"ws_token"`
		Channels  []channelToken `json:"channels"`
	}
	channelToken struct {
		Name  string        `json:"name"`
		Level instant.Level `json:"level"`
		Token string        `json:"token"`
	}
	channelsResponse struct {
		Channels []channelToken `json:"channels"`
	}
	tokenResponse struct {
		Token string `json:"token"`
	}
	logoutResponse struct {
		Response string `json:"response"`
	}
)

// Errors of decodeBody.
var (
	errMalformed = errors.New("malformed JSON body")
	errTooLarge  = errors.New("body too large")
)

// decodeBody reads one JSON object of at most limit bytes from body into
// v by instant's strict JSON rule (instant.DecodeObject), except that
// unknown fields are ignored: invalid UTF-8, trailing data, a value that is
// not an object, duplicate keys, keys differing from a field name only by
// case and fields of the wrong type are errMalformed. An empty (or
// blank) body is errMalformed unless emptyOK, when v stays as it is.
func decodeBody(body io.Reader, limit int64, v any, emptyOK bool) error {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok || int64(len(b)) > limit {
		return errTooLarge
	}
	if err != nil {
		return errMalformed
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		if emptyOK {
			return nil
		}
		return errMalformed
	}
	if b[0] != '{' {
		return errMalformed
	}
	if err := instant.DecodeObject(b, v, true); err != nil {
		return errMalformed
	}
	return nil
}

// readBody decodes the request body into v, answering 400 or 413 itself
// when it cannot; ok is false then.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) (ok bool) {
	switch err := decodeBody(r.Body, s.cfg.MaxBodyBytes, v, emptyOK); {
	case errors.Is(err, errTooLarge):
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
	default:
		return true
	}
	return false
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !s.readBody(w, r, &req, false) {
		return
	}
	now := s.cfg.Now()
	addr := s.clientAddress(r)
	// Charged before the password is checked: parallel attempts cannot
	// all pass a limit that counts them afterwards.
	adm, limited, wait := s.limiter.admit(addr, req.Username, now)
	if limited != "" {
		s.log.Info("login rate-limited", zap.String("address", addr), zap.String("limit", limited))
		s.refuseRateLimited(w, limited, wait)
		return
	}
	if s.users == nil {
		s.metrics.Logins.WithLabelValues("failed").Inc()
		s.log.Info("login failed", zap.String("address", addr))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	u, err := s.users.Authenticate(r.Context(), req.Username, req.Password)
	switch {
	case errors.Is(err, instant.ErrBadCredentials), errors.Is(err, instant.ErrBadEntry):
		s.metrics.Logins.WithLabelValues("failed").Inc()
		// Not the user name: people type their password there.
		s.log.Info("login failed", zap.String("address", addr))
		w.WriteHeader(http.StatusForbidden)
		return
	case err != nil:
		adm.succeeded(now) // not the caller's failure
		s.metrics.Logins.WithLabelValues("error").Inc()
		s.log.Error("login: user store failed", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	adm.succeeded(now)
	sess := session{Username: u.Username, Epoch: u.Epoch, CSRF: newCSRF(), Expires: now.Add(s.cfg.SessionTTL).Unix()}
	body, err := s.tokensFor(u.Identity, sess.CSRF, now)
	if err != nil {
		s.log.Error("login: issuing tokens failed", zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.metrics.Logins.WithLabelValues("ok").Inc()
	s.log.Info("login", zap.String("user", u.Username), zap.String("address", addr))
	s.setSessionCookies(w, r, sess)
	s.writeJSON(w, body)
}

func (s *Server) refuseRateLimited(w http.ResponseWriter, key string, d time.Duration) {
	s.metrics.RateLimited.WithLabelValues(key).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(d)))
	w.WriteHeader(http.StatusTooManyRequests)
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r, false)
	if !ok {
		return
	}
	body, err := s.tokensFor(c.id, c.csrf(), c.now)
	if err != nil {
		s.log.Error("get_token: issuing tokens failed", zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.writeJSON(w, body)
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	var req subscribeRequest
	if !s.readBody(w, r, &req, true) {
		return
	}
	c, ok := s.authenticate(w, r, false)
	if !ok {
		return
	}
	if req.Channel == nil {
		chs, err := s.channelTokens(c.id, c.now)
		if err != nil {
			s.log.Error("subscribe: issuing tokens failed", zap.Error(err))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.writeJSON(w, channelsResponse{Channels: chs})
		return
	}
	ch, found := s.channels.Lookup(*req.Channel)
	if !found || !instant.Allowed(c.id, ch) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	tok, err := s.tokens.subscription(c.id.Username, ch.Name, c.now)
	if err != nil {
		s.log.Error("subscribe: issuing token failed", zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.metrics.Tokens.WithLabelValues("subscription").Inc()
	s.writeJSON(w, tokenResponse{Token: tok})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authenticate(w, r, true)
	if !ok {
		return
	}
	if c.sess == nil {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if err := s.users.RevokeSessions(r.Context(), c.sess.Username); err != nil && !errors.Is(err, instant.ErrNotFound) {
		s.log.Error("logout: user store failed", zap.String("user", c.sess.Username), zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.log.Info("logout", zap.String("user", c.sess.Username))
	s.clearSessionCookies(w, r)
	s.writeJSON(w, logoutResponse{Response: "ok"})
}

// caller is who made a request.
type caller struct {
	id   instant.Identity
	sess *session // the session when authenticated by cookie
	now  time.Time
}

// csrf returns the CSRF token to put in a response: the session's, or ""
// without one.
func (c caller) csrf() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.CSRF
}

// authenticate finds who made r: the subject of a Bearer identity JWT
// (no CSRF token needed), the user of a valid session cookie (whose
// request must carry the session's CSRF token when csrf is set: logout,
// the one state change; get_token and subscribe change nothing and their
// answers are protected by CORS, as in django-instant, whose client calls
// get_token before it knows the token), or else an anonymous visitor when
// the Config allows them. It answers 403 (or 503 when the user store
// fails) itself and returns false when the request is not allowed.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, csrf bool) (caller, bool) {
	c := caller{now: s.cfg.Now()}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || s.identity == nil {
			w.WriteHeader(http.StatusForbidden)
			return c, false
		}
		id, _, err := s.rules.Parse(s.identity, strings.TrimSpace(token), c.now)
		if err != nil {
			s.log.Debug("identity token refused", zap.Error(err))
			w.WriteHeader(http.StatusForbidden)
			return c, false
		}
		s.track(id, c.now)
		c.id = id
		return c, true
	}
	sess, u, status := s.session(r, c.now)
	switch {
	case status != 0:
		w.WriteHeader(status)
		return c, false
	case sess != nil:
		if csrf && !csrfOK(r, *sess) {
			w.WriteHeader(http.StatusForbidden)
			return c, false
		}
		c.sess = sess
		c.id = u.Identity
		return c, true
	case s.cfg.Anonymous:
		c.id = instant.Anonymous
		return c, true
	}
	w.WriteHeader(http.StatusForbidden)
	return c, false
}

// session returns the valid session of r's cookie, nil when there is none
// (no cookie, a bad signature, expired, the user gone or their Epoch
// changed) with the user's current record, or a status to answer when
// the user store fails.
func (s *Server) session(r *http.Request, now time.Time) (*session, instant.User, int) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || s.users == nil {
		return nil, instant.User{}, 0
	}
	sess, err := decodeSession(s.sessionKey, ck.Value, now)
	if err != nil {
		return nil, instant.User{}, 0
	}
	u, err := s.users.Get(r.Context(), sess.Username)
	switch {
	case errors.Is(err, instant.ErrNotFound), errors.Is(err, instant.ErrBadEntry):
		return nil, instant.User{}, 0
	case err != nil:
		s.log.Error("session: user store failed", zap.String("user", sess.Username), zap.Error(err))
		return nil, instant.User{}, http.StatusServiceUnavailable
	}
	if subtle.ConstantTimeCompare([]byte(u.Epoch), []byte(sess.Epoch)) != 1 {
		return nil, instant.User{}, 0
	}
	return &sess, u, 0
}

// tokensFor returns the body of login and get_token for id.
func (s *Server) tokensFor(id instant.Identity, csrf string, now time.Time) (tokensResponse, error) {
	ws, err := s.tokens.connection(id.Username, now)
	if err != nil {
		return tokensResponse{}, err
	}
	s.metrics.Tokens.WithLabelValues("connection").Inc()
	chs, err := s.channelTokens(id, now)
	if err != nil {
		return tokensResponse{}, err
	}
	return tokensResponse{CSRFToken: csrf, WSToken: ws, Channels: chs}, nil
}

// channelTokens returns a subscription token for every channel id may
// see, sorted by name.
func (s *Server) channelTokens(id instant.Identity, now time.Time) ([]channelToken, error) {
	visible := instant.Visible(id, s.channels.All())
	out := make([]channelToken, 0, len(visible))
	for _, ch := range visible {
		tok, err := s.tokens.subscription(id.Username, ch.Name, now)
		if err != nil {
			return nil, err
		}
		out = append(out, channelToken{Name: ch.Name, Level: ch.Level, Token: tok})
	}
	s.metrics.Tokens.WithLabelValues("subscription").Add(float64(len(out)))
	return out, nil
}

func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("writing response failed", zap.Error(err))
	}
}
