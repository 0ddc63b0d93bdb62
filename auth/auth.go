// Package auth is instant's token HTTP service, compatible with the
// endpoints of django-instant: it logs users in (built-in user store,
// session cookie with CSRF token), accepts identity JWTs signed by an
// existing app, and issues the Centrifugo connection and subscription
// tokens for exactly the channels an identity may see (see instant.Allowed). Run
// ends live subscriptions and connections through Centrifugo's server API
// when access is taken away.
//
// Endpoints (all POST; OPTIONS answers CORS preflights):
//
//	/instant/login/      {"username","password"} → tokens + session cookie
//	/instant/get_token/  session or Bearer identity JWT → tokens
//	/instant/subscribe/  {} → {"channels":[…]}; {"channel":"X"} → {"token":"…"}
//	/instant/logout/     session → {"response":"ok"}
//
// where tokens is {"csrf_token","ws_token","channels":[{"name","level","token"}]}.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/instanthq/instant"
)

// Channels is the channel registry as the server reads it.
// *registry.View implements it (cmd/instant wires it).
type Channels interface {
	// Lookup returns the channel named name, whatever its Active flag.
	Lookup(name string) (instant.Channel, bool)
	// All returns every channel, sorted by name.
	All() []instant.Channel
	// Changes returns a new channel of the registry's changes from now on
	// (see instant.Change).
	Changes() <-chan instant.Change[instant.Channel]
}

// Users is the user store as the server uses it. *users.Store implements
// it.
type Users interface {
	// Authenticate returns the user when password is theirs, else an
	// error wrapping instant.ErrBadCredentials (instant.ErrBadEntry for a
	// record that cannot be read).
	Authenticate(ctx context.Context, username, password string) (instant.User, error)
	// Get returns the user, or an error wrapping instant.ErrNotFound
	// (instant.ErrBadEntry for a record that cannot be read).
	Get(ctx context.Context, username string) (instant.User, error)
	// RevokeSessions ends every session of the user (new Epoch); the
	// error wraps instant.ErrNotFound when there is no such user.
	RevokeSessions(ctx context.Context, username string) error
}

// UserView is a live copy of the user store, which Run follows to take
// access away. *users.View (users.Store.Watch) implements it.
type UserView interface {
	// All returns every user.
	All() []instant.User
	// Changes returns a new channel of the store's changes from now on
	// (see instant.Change), closed when the view stops following the
	// store.
	Changes() <-chan instant.Change[instant.User]
}

// Revoker ends access through Centrifugo's server API.
// *centrifugo.Client implements it.
type Revoker interface {
	// Unsubscribe ends user's subscriptions to channel; user "" means
	// the anonymous connections.
	Unsubscribe(ctx context.Context, channel, user string) error
	// Disconnect closes every connection of user, without reconnect.
	Disconnect(ctx context.Context, user string) error
}

// Deps are what a Server works with.
type Deps struct {
	// Channels is required.
	Channels Channels
	// Users is the built-in user store. Nil: nobody can log in; identity
	// JWTs and anonymous access still work.
	Users Users
	// UserView follows Users for Run, which takes access away when a
	// user changes. Nil: changes of users are not revoked (their sessions
	// still end, since every request reads the user from Users).
	UserView UserView
	// Revoker ends access at once when it is taken away (see Run). Nil:
	// access ends when the tokens expire.
	Revoker Revoker
	// Log is the logger; nil logs nothing.
	Log *zap.Logger
	// Metrics are recorded when not nil (see NewMetrics).
	Metrics *Metrics
	// Admin turns the admin API on (see Admin); nil: off.
	Admin *Admin
}

// Server is the auth HTTP service. Its methods are safe for concurrent
// use.
type Server struct {
	cfg        Config
	channels   Channels
	users      Users
	userView   UserView
	revoker    Revoker
	log        *zap.Logger
	metrics    *Metrics
	admin      *Admin
	waiters    revocationWaiters
	tokens     signer
	sessionKey []byte
	identity   []byte // nil: Bearer tokens refused
	rules      IdentityRules
	origins    map[string]bool
	limiter    *loginLimiter

	ready     chan struct{} // closed once Run follows the registry and the users
	readyOnce sync.Once

	mu      sync.Mutex
	tracked map[string]tracked // identity-JWT users with live tokens, by name
}

// tracked is an identity-JWT user the server issued tokens to: it cannot
// be found in the user store, so Run remembers it until its last token
// expires, to unsubscribe it from channels it loses.
type tracked struct {
	id    instant.Identity
	until time.Time
}

// New returns a Server for cfg, which is validated (see Config.Validate);
// errors name the invalid fields. New does no I/O.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if d.Channels == nil {
		return nil, errors.New("auth: Deps.Channels is required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	s := &Server{
		cfg:        cfg,
		channels:   d.Channels,
		users:      d.Users,
		userView:   d.UserView,
		revoker:    d.Revoker,
		log:        d.Log,
		metrics:    d.Metrics,
		admin:      d.Admin,
		tokens:     signer{key: []byte(cfg.HMACKey), ttl: cfg.TokenTTL},
		sessionKey: cfg.sessionKey(),
		origins:    make(map[string]bool, len(cfg.AllowedOrigins)),
		rules:      IdentityRules{MaxTTL: cfg.IdentityMaxTTL, Issuer: cfg.IdentityIssuer, Audience: cfg.IdentityAudience},
		limiter:    newLoginLimiter(cfg),
		ready:      make(chan struct{}),
		tracked:    make(map[string]tracked),
	}
	if cfg.IdentityKey != "" {
		s.identity = []byte(cfg.IdentityKey)
	}
	for _, o := range cfg.AllowedOrigins {
		s.origins[o] = true
	}
	return s, nil
}

// Ready returns a channel that is closed once Run follows the registry
// and the user store, so that every later change is revoked; for
// readiness probes.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// track remembers id, an identity-JWT user, until its tokens issued now
// expire.
func (s *Server) track(id instant.Identity, now time.Time) {
	until := now.Add(s.cfg.TokenTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tracked[id.Username]; ok && now.Before(t.until) {
		// Tokens issued before may carry more access: keep the union.
		id.Groups, _ = instant.NormalizeGroups(append(slices.Clone(t.id.Groups), id.Groups...))
		id.Staff = id.Staff || t.id.Staff
		id.Superuser = id.Superuser || t.id.Superuser
	}
	s.tracked[id.Username] = tracked{id: id, until: until}
}

// trackedIdentities returns the identity-JWT users whose tokens may still
// be valid at now, forgetting the others.
func (s *Server) trackedIdentities(now time.Time) []instant.Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]instant.Identity, 0, len(s.tracked))
	for name, t := range s.tracked {
		if !now.Before(t.until) {
			delete(s.tracked, name)
			continue
		}
		ids = append(ids, t.id)
	}
	return ids
}
