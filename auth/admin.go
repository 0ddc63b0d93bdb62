package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
)

// The admin API's paths (see Admin). Reads are GET, changes POST.
const (
	PathAdmin              = "/instant/admin/"
	PathAdminMe            = PathAdmin + "me/"
	PathAdminChannels      = PathAdmin + "channels/"
	PathAdminChannelName   = PathAdmin + "channels/name/"
	PathAdminChannelRemove = PathAdmin + "channels/remove/"
	PathAdminUsers         = PathAdmin + "users/"
	PathAdminUserUpdate    = PathAdmin + "users/update/"
	PathAdminUserPassword  = PathAdmin + "users/password/"
	PathAdminUserRemove    = PathAdmin + "users/remove/"
	PathAdminDead          = PathAdmin + "dead/"
	PathAdminDeadRepublish = PathAdmin + "dead/republish/"
	PathAdminDeadPurge     = PathAdmin + "dead/purge/"
	PathAdminTraffic       = PathAdmin + "traffic/"
)

// ChannelStore changes the channel registry. *registry.Store implements
// it.
type ChannelStore interface {
	// Put adds or replaces a channel.
	Put(ctx context.Context, c instant.Channel) error
	// Delete removes a channel; the error wraps instant.ErrNotFound when
	// there is none.
	Delete(ctx context.Context, name string) error
}

// UserStore manages the built-in users. *users.Store implements it.
// Errors wrap instant.ErrNotFound, instant.ErrExists (Add),
// instant.ErrBadUsername, instant.ErrBadGroup or instant.ErrBadPassword.
type UserStore interface {
	List(ctx context.Context) ([]instant.User, error)
	Get(ctx context.Context, username string) (instant.User, error)
	Add(ctx context.Context, u instant.User, password string) error
	Update(ctx context.Context, u instant.User) error
	SetPassword(ctx context.Context, username, password string) error
	Delete(ctx context.Context, username string) error
}

// ChannelStats tells what Centrifugo knows of the channels.
// *centrifugo.Client implements it.
type ChannelStats interface {
	// Subscribers returns the distinct users subscribed, by channel.
	Subscribers(ctx context.Context) (map[string]int, error)
	// Positions returns the history position of the channels that keep
	// history.
	Positions(ctx context.Context, channels []string) (map[string]centrifugo.Position, error)
}

// Admin is what the admin API works with: the JSON endpoints under
// PathAdmin that the operator console (and scripts) call. Staff and
// superusers read; only superusers change anything (channels, users,
// dead letters) or see the users. Every other caller gets 403 with an
// empty body. Nil fields turn their part off.
type Admin struct {
	// Registry changes channels: the same store as `instant channels`.
	// Nil: channels are read-only (INSTANT_CHANNELS_FILE).
	Registry ChannelStore
	// Users manages users: the same store as `instant users`. Nil: no
	// user management.
	Users UserStore
	// Stats tells subscriber counts and history positions. Nil: unknown.
	Stats ChannelStats
	// DeadLetters lists, re-publishes and purges rejected envelopes. Nil:
	// none are kept (core mode: they are published on the dead-letter
	// subject only).
	DeadLetters DeadLetters
	// Traffic reads the bridge's counters. Nil: no traffic chart.
	Traffic TrafficSource
}

// role is what an admin endpoint requires.
type role int

const (
	roleStaff     role = iota // staff or superuser
	roleSuperuser             // superuser
)

func (r role) allows(id instant.Identity) bool {
	if id.IsAnonymous() {
		return false
	}
	if r == roleStaff {
		return id.Staff || id.Superuser
	}
	return id.Superuser
}

// adminWait bounds how long a change waits until it is live (the
// registry view shows it, the revocations are made).
const adminWait = 5 * time.Second

// statsTimeout bounds the Centrifugo calls of a channel listing.
const statsTimeout = 2 * time.Second

// adminRoutes registers the admin API on mux when it is configured.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	if s.admin == nil {
		return
	}
	methods := map[string][]string{}
	read := func(path string, need role, h adminHandler) {
		mux.Handle("GET "+path+"{$}", s.adminRead(need, h))
		methods[path] = append(methods[path], http.MethodGet, http.MethodHead)
	}
	change := func(path string, h adminHandler) {
		mux.Handle(path+"{$}", s.endpoint(s.adminChange(h)))
		methods[path] = append(methods[path], http.MethodPost)
	}
	defer func() {
		for path, m := range methods {
			mux.Handle("OPTIONS "+path+"{$}", s.adminPreflight(append(m, http.MethodOptions)))
		}
	}()
	read(PathAdminMe, roleStaff, s.adminMe)
	read(PathAdminChannels, roleStaff, s.adminChannels)
	read(PathAdminChannelName, roleStaff, s.adminChannelName)
	change(PathAdminChannels, s.adminPutChannel)
	change(PathAdminChannelRemove, s.adminRemoveChannel)
	read(PathAdminUsers, roleSuperuser, s.adminUsers)
	change(PathAdminUsers, s.adminAddUser)
	change(PathAdminUserUpdate, s.adminUpdateUser)
	change(PathAdminUserPassword, s.adminResetPassword)
	change(PathAdminUserRemove, s.adminRemoveUser)
	read(PathAdminDead, roleStaff, s.adminDead)
	change(PathAdminDeadRepublish, s.adminRepublish)
	change(PathAdminDeadPurge, s.adminPurge)
	read(PathAdminTraffic, roleStaff, s.adminTraffic)
}

// adminHandler answers an admin request of caller c.
type adminHandler func(w http.ResponseWriter, r *http.Request, c caller)

// adminRead wraps a GET endpoint: the CORS and Origin rules of the POST
// endpoints, then the caller must have need.
func (s *Server) adminRead(need role, h adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		hd.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		switch {
		case origin == "":
		case s.origins[origin]:
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Access-Control-Allow-Credentials", "true")
		case !sameOrigin(origin, r):
			w.WriteHeader(http.StatusForbidden)
			return
		}
		c, ok := s.adminCaller(w, r, need, false)
		if ok {
			h(w, r, c)
		}
	})
}

// adminPreflight answers OPTIONS: a CORS preflight from an allowed
// origin gets the methods and headers it may use.
func (s *Server) adminPreflight(methods []string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" && s.origins[origin] && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+CSRFHeader)
			h.Set("Access-Control-Max-Age", "600")
		}
		h.Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
	})
}

// adminChange wraps a POST handler (see endpoint): every change needs a
// superuser and, with a session cookie, the CSRF token.
func (s *Server) adminChange(h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := s.adminCaller(w, r, roleSuperuser, true)
		if ok {
			h(w, r, c)
		}
	}
}

// adminCaller authenticates r (see authenticate; with a session cookie a
// change needs the CSRF token, a read does not: no other site can read
// the answer) and checks that the caller has need; it answers 403 with an
// empty body itself otherwise.
func (s *Server) adminCaller(w http.ResponseWriter, r *http.Request, need role, change bool) (caller, bool) {
	c, ok := s.authenticate(w, r, change)
	if !ok {
		return c, false
	}
	if !need.allows(c.id) {
		s.log.Debug("admin: refused", zap.String("user", c.id.Username), zap.String("path", r.URL.Path))
		w.WriteHeader(http.StatusForbidden)
		return c, false
	}
	return c, true
}

// adminError answers status with {"error": msg}, for the mistakes a user
// can fix (a taken name, an invalid level).
func (s *Server) adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	s.writeJSON(w, struct {
		Error string `json:"error"`
	}{msg})
}

// adminFailed logs err, which the caller cannot fix, and answers 503.
func (s *Server) adminFailed(w http.ResponseWriter, what string, c caller, err error) {
	s.log.Error("admin: "+what+" failed", zap.String("by", c.id.Username), zap.Error(err))
	w.WriteHeader(http.StatusServiceUnavailable)
}

// meResponse tells the console who is there and what it may show.
type meResponse struct {
	Username  string `json:"username"`
	Staff     bool   `json:"staff"`
	Superuser bool   `json:"superuser"`
	// CanEdit: the caller may change channels (and the registry is not
	// read-only).
	CanEdit bool `json:"can_edit"`
	// Users: the caller may manage users.
	Users bool `json:"users"`
	// DeadLetters: dead letters are kept (JetStream mode).
	DeadLetters bool `json:"dead_letters"`
	// Traffic: the bridge's counters can be read.
	Traffic bool `json:"traffic"`
}

func (s *Server) adminMe(w http.ResponseWriter, _ *http.Request, c caller) {
	a := s.admin
	s.writeJSON(w, meResponse{
		Username: c.id.Username, Staff: c.id.Staff, Superuser: c.id.Superuser,
		CanEdit:     c.id.Superuser && a.Registry != nil,
		Users:       c.id.Superuser && a.Users != nil,
		DeadLetters: a.DeadLetters != nil,
		Traffic:     a.Traffic != nil,
	})
}

// adminChannel is a channel as the admin API shows it.
type adminChannel struct {
	Name   string        `json:"name"`
	Level  instant.Level `json:"level"`
	Active bool          `json:"active"`
	Groups []string      `json:"groups"`
	// Subscribers is the number of distinct users subscribed now; absent
	// when Centrifugo could not be asked.
	Subscribers *int `json:"subscribers,omitempty"`
	// History is the position of the channel's history: Offset counts
	// its publications in the current epoch. Absent when Centrifugo keeps
	// no history for it or could not be asked. Centrifugo keeps no
	// publication times.
	History *centrifugo.Position `json:"history,omitempty"`
}

func toAdminChannel(c instant.Channel) adminChannel {
	groups := c.Groups
	if groups == nil {
		groups = []string{}
	}
	return adminChannel{Name: c.Name, Level: c.Level, Active: c.Active, Groups: groups}
}

func (s *Server) adminChannels(w http.ResponseWriter, r *http.Request, _ caller) {
	all := s.channels.All()
	out := make([]adminChannel, len(all))
	names := make([]string, len(all))
	for i, c := range all {
		out[i] = toAdminChannel(c)
		names[i] = c.Name
	}
	stats := "unavailable"
	if st := s.admin.Stats; st != nil {
		ctx, cancel := context.WithTimeout(r.Context(), statsTimeout)
		defer cancel()
		subs, err1 := st.Subscribers(ctx)
		pos, err2 := st.Positions(ctx, names)
		if err := errors.Join(err1, err2); err != nil {
			s.log.Debug("admin: channel stats", zap.Error(err))
		} else {
			stats = "ok"
			for i := range out {
				n := subs[out[i].Name]
				out[i].Subscribers = &n
				if p, ok := pos[out[i].Name]; ok {
					out[i].History = &p
				}
			}
		}
	}
	s.writeJSON(w, struct {
		Channels []adminChannel `json:"channels"`
		Stats    string         `json:"stats"`
	}{out, stats})
}

// adminChannelName applies the naming rule for the console as the user
// types: ?name=N&level=L → {"name"} or {"name","error"}.
func (s *Server) adminChannelName(w http.ResponseWriter, r *http.Request, _ caller) {
	q := r.URL.Query()
	var resp struct {
		Name  string `json:"name"`
		Error string `json:"error,omitempty"`
	}
	c, err := instant.NewChannel(q.Get("name"), instant.Level(q.Get("level")), nil)
	resp.Name = c.Name
	if err != nil {
		resp.Error = err.Error()
		if resp.Name == "" && instant.ValidChannelName(q.Get("name")) == nil {
			resp.Name = instant.ChannelName(q.Get("name"), instant.Level(q.Get("level")))
		}
	}
	s.writeJSON(w, resp)
}

type putChannelRequest struct {
	Name   string   `json:"name"`
	Level  string   `json:"level"`
	Groups []string `json:"groups"`
	Active *bool    `json:"active"` // nil: true
}

func (s *Server) adminPutChannel(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[putChannelRequest](s, w, r, s.channelsOff())
	if !ok {
		return
	}
	ch, err := instant.NewChannel(req.Name, instant.Level(req.Level), req.Groups)
	if err != nil {
		s.adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Active != nil {
		ch.Active = *req.Active
	}
	old, existed := s.channels.Lookup(ch.Name)
	if existed && sameChannel(old, ch) {
		s.writeJSON(w, changeResponse{Channel: ptr(toAdminChannel(ch))})
		return
	}
	wait, ok := s.revocable(w, c, "channel put", channelKey(ch.Name), func() error { return s.admin.Registry.Put(r.Context(), ch) })
	if !ok {
		return
	}
	s.log.Info("admin: channel saved", zap.String("by", c.id.Username), zap.String("channel", ch.Name),
		zap.String("level", string(ch.Level)), zap.Strings("groups", ch.Groups), zap.Bool("active", ch.Active), zap.Bool("new", !existed))
	s.waitView(r.Context(), ch.Name, func(got instant.Channel, ok bool) bool { return ok && sameChannel(got, ch) })
	revoked := wait.result(r.Context(), existed)
	s.writeJSON(w, changeResponse{Channel: ptr(toAdminChannel(ch)), Created: !existed, Revocations: revoked})
}

type nameRequest struct {
	Name string `json:"name"`
}

func (s *Server) adminRemoveChannel(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[nameRequest](s, w, r, s.channelsOff())
	if !ok {
		return
	}
	wait, ok := s.revocable(w, c, "channel remove", channelKey(req.Name), func() error { return s.admin.Registry.Delete(r.Context(), req.Name) })
	if !ok {
		return
	}
	s.log.Info("admin: channel removed", zap.String("by", c.id.Username), zap.String("channel", req.Name))
	s.waitView(r.Context(), req.Name, func(_ instant.Channel, ok bool) bool { return !ok })
	s.writeJSON(w, changeResponse{Revocations: wait.result(r.Context(), true)})
}

// changeResponse is the answer to a change.
type changeResponse struct {
	Channel *adminChannel `json:"channel,omitempty"`
	User    *instant.User `json:"user,omitempty"`
	Created bool          `json:"created,omitempty"`
	// Password is a generated password, shown once.
	Password string `json:"password,omitempty"`
	// Revocations counts the Centrifugo calls that ended access because
	// of the change (one Disconnect ends every connection of a user, one
	// Unsubscribe a user's subscriptions to one channel); absent when it
	// is not known (no revocation, or it took too long).
	Revocations *int `json:"revocations,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func sameChannel(a, b instant.Channel) bool {
	return a.Name == b.Name && a.Level == b.Level && a.Active == b.Active && slices.Equal(a.Groups, b.Groups)
}

// waitView waits until the registry view's entry of name satisfies done,
// at most adminWait: the change is live for the bridge and token issuing
// once this process sees it.
func (s *Server) waitView(ctx context.Context, name string, done func(instant.Channel, bool) bool) {
	ctx, cancel := context.WithTimeout(ctx, adminWait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !done(s.channels.Lookup(name)) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminUsers lists the users: instant.User holds no password, and its
// Epoch is not in its JSON form.
func (s *Server) adminUsers(w http.ResponseWriter, r *http.Request, c caller) {
	if s.admin.Users == nil {
		s.writeJSON(w, struct {
			Users []instant.User `json:"users"`
		}{[]instant.User{}})
		return
	}
	list, err := s.admin.Users.List(r.Context())
	if err != nil {
		s.adminFailed(w, "user list", c, err)
		return
	}
	s.writeJSON(w, struct {
		Users []instant.User `json:"users"`
	}{list})
}

type userRequest struct {
	Username  string   `json:"username"`
	Groups    []string `json:"groups"`
	Staff     bool     `json:"staff"`
	Superuser bool     `json:"superuser"`
}

// readChange reads the body of a change into a T and normalizes its
// groups when it has some (groupsRequest), then answers 409 with off when
// it is not "" (see usersOff, channelsOff): the store the change needs is
// not here. It answers itself and returns false when the change cannot
// go on.
func readChange[T any](s *Server, w http.ResponseWriter, r *http.Request, off string) (T, bool) {
	var req T
	if !s.readBody(w, r, &req, false) {
		return req, false
	}
	if g, ok := any(&req).(groupsRequest); ok {
		groups, err := instant.NormalizeGroups(*g.groups())
		if err != nil {
			s.adminError(w, http.StatusBadRequest, err.Error())
			return req, false
		}
		*g.groups() = groups
	}
	if off != "" {
		s.adminError(w, http.StatusConflict, off)
		return req, false
	}
	return req, true
}

// groupsRequest is a change that names groups.
type groupsRequest interface{ groups() *[]string }

func (r *putChannelRequest) groups() *[]string { return &r.Groups }
func (r *userRequest) groups() *[]string       { return &r.Groups }

// usersOff and channelsOff tell why users or channels cannot be changed
// here, or "" when they can.
func (s *Server) usersOff() string {
	if s.admin.Users == nil {
		return "no user store here"
	}
	return ""
}

func (s *Server) channelsOff() string {
	if s.admin.Registry == nil {
		return "the channels are read-only here (INSTANT_CHANNELS_FILE)"
	}
	return ""
}

// storeError answers the error of a store call: the mistakes a user can
// fix with their status and the store's message, others with adminFailed.
func (s *Server) storeError(w http.ResponseWriter, what string, c caller, err error) {
	switch {
	case errors.Is(err, instant.ErrNotFound):
		s.adminError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, instant.ErrExists):
		s.adminError(w, http.StatusConflict, err.Error())
	case errors.Is(err, instant.ErrBadUsername), errors.Is(err, instant.ErrBadGroup), errors.Is(err, instant.ErrBadPassword),
		errors.Is(err, instant.ErrBadChannel), errors.Is(err, instant.ErrBadLevel):
		s.adminError(w, http.StatusBadRequest, err.Error())
	default:
		s.adminFailed(w, what, c, err)
	}
}

// revocable makes change, a store call that can end access under key
// (userKey, channelKey), and returns the wait for the revocations it
// causes. When change fails, it drops the wait, answers the error
// (storeError) and returns false.
func (s *Server) revocable(w http.ResponseWriter, c caller, what, key string, change func() error) (revocationWait, bool) {
	wait := s.awaitRevocations(key)
	if err := change(); err != nil {
		wait.cancel()
		s.storeError(w, what, c, err)
		return wait, false
	}
	return wait, true
}

// newPassword returns a fresh random password: 24 characters, 144 bits.
func newPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[userRequest](s, w, r, s.usersOff())
	if !ok {
		return
	}
	pw := newPassword()
	u := instant.User{Identity: instant.Identity{Username: req.Username, Groups: req.Groups, Staff: req.Staff, Superuser: req.Superuser}}
	err := s.admin.Users.Add(r.Context(), u, pw)
	if err == nil {
		u, err = s.admin.Users.Get(r.Context(), u.Username) // as stored: groups sorted
	}
	if err != nil {
		s.storeError(w, "user add", c, err)
		return
	}
	s.log.Info("admin: user added", zap.String("by", c.id.Username), zap.String("user", u.Username),
		zap.Strings("groups", u.Groups), zap.Bool("staff", u.Staff), zap.Bool("superuser", u.Superuser))
	s.writeJSON(w, changeResponse{User: &u, Created: true, Password: pw})
}

func (s *Server) adminUpdateUser(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[userRequest](s, w, r, s.usersOff())
	if !ok {
		return
	}
	old, err := s.admin.Users.Get(r.Context(), req.Username)
	if err != nil {
		s.storeError(w, "user update", c, err)
		return
	}
	u := instant.User{Identity: instant.Identity{Username: req.Username, Groups: req.Groups, Staff: req.Staff, Superuser: req.Superuser}}
	if old.Staff == u.Staff && old.Superuser == u.Superuser && slices.Equal(old.Groups, u.Groups) {
		u.Groups = old.Groups
		s.writeJSON(w, changeResponse{User: &u})
		return
	}
	wait, ok := s.revocable(w, c, "user update", userKey(u.Username), func() error { return s.admin.Users.Update(r.Context(), u) })
	if !ok {
		return
	}
	s.log.Info("admin: user changed", zap.String("by", c.id.Username), zap.String("user", u.Username),
		zap.Strings("groups", u.Groups), zap.Bool("staff", u.Staff), zap.Bool("superuser", u.Superuser))
	if u.Groups == nil {
		u.Groups = []string{}
	}
	s.writeJSON(w, changeResponse{User: &u, Revocations: wait.result(r.Context(), true)})
}

type usernameRequest struct {
	Username string `json:"username"`
}

func (s *Server) adminResetPassword(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[usernameRequest](s, w, r, s.usersOff())
	if !ok {
		return
	}
	pw := newPassword()
	wait, ok := s.revocable(w, c, "password reset", userKey(req.Username), func() error { return s.admin.Users.SetPassword(r.Context(), req.Username, pw) })
	if !ok {
		return
	}
	s.log.Info("admin: password reset", zap.String("by", c.id.Username), zap.String("user", req.Username))
	s.writeJSON(w, changeResponse{Password: pw, Revocations: wait.result(r.Context(), true)})
}

func (s *Server) adminRemoveUser(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := readChange[usernameRequest](s, w, r, s.usersOff())
	if !ok {
		return
	}
	if req.Username == c.id.Username {
		s.adminError(w, http.StatusConflict, "you cannot remove yourself")
		return
	}
	wait, ok := s.revocable(w, c, "user remove", userKey(req.Username), func() error { return s.admin.Users.Delete(r.Context(), req.Username) })
	if !ok {
		return
	}
	s.log.Info("admin: user removed", zap.String("by", c.id.Username), zap.String("user", req.Username))
	s.writeJSON(w, changeResponse{Revocations: wait.result(r.Context(), true)})
}
