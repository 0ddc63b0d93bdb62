package auth

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/backoff"
)

// Revocation tuning.
const (
	// revokeParallel bounds the server API calls in flight at once.
	revokeParallel = 16
	// revokeAttempts bounds the attempts of one call that fails with a
	// temporary error; the wait before each retry is backoff.Delay between
	// revokeWaitMin and revokeWaitMax.
	revokeAttempts = 5
	revokeWaitMin  = 100 * time.Millisecond
	revokeWaitMax  = 800 * time.Millisecond
	// pruneEvery is how often identity-JWT users whose tokens expired are
	// forgotten.
	pruneEvery = time.Minute
)

// Run takes access away at once, through the Revoker, when it is lost,
// until ctx ends; then it returns nil. It follows the user store through
// Deps.UserView, when set. Without a Revoker it only waits for ctx.
//
// What it does, on a change of the registry or of the user store:
//   - a channel deactivated, removed, or whose level or groups changed:
//     every user of the store who could see it before and cannot now is
//     unsubscribed from it (Revoker.Unsubscribe), and so is every
//     identity-JWT user this process issued tokens to that are not expired
//     yet; when a public channel goes, the anonymous connections are
//     unsubscribed too (Unsubscribe with user "");
//   - a user removed from a group or losing the staff or superuser flag:
//     the user is unsubscribed from the channels lost;
//   - a user deleted, their password changed or their sessions revoked
//     (logout): every connection of the user is closed (Revoker.Disconnect).
//
// Limits: Centrifugo OSS cannot revoke a token. A client that kept its
// tokens can connect or subscribe again with them until they expire
// (Config.TokenTTL), though no new token is issued to it. Identity-JWT
// users live in the app that signs their tokens: a change of their
// groups there is only seen when they next ask for tokens, and a restart
// of this process forgets which of them hold tokens, so they keep their
// subscriptions to a channel removed after the restart until the tokens
// expire. A call that keeps failing (Centrifugo down) is logged, counted
// in Metrics.Revocations and not retried after revokeAttempts.
func (s *Server) Run(ctx context.Context) error {
	if s.revoker == nil {
		s.readyOnce.Do(func() { close(s.ready) })
		<-ctx.Done()
		return nil
	}
	channelChanges := s.channels.Changes()
	uv := s.userView
	var userChanges <-chan instant.Change[instant.User]
	if uv != nil {
		userChanges = uv.Changes()
	}
	s.readyOnce.Do(func() { close(s.ready) })
	s.log.Info("revocation started")
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-channelChanges:
			if !ok {
				// A Static registry never changes; a followed one stopped
				// with ctx or the NATS connection.
				channelChanges = nil
				if ctx.Err() == nil {
					s.log.Info("no more channel changes to follow")
				}
				continue
			}
			s.channelChanged(ctx, c, uv)
		case c, ok := <-userChanges:
			if !ok {
				userChanges = nil
				if ctx.Err() == nil {
					s.log.Warn("the user store is no longer followed: user changes are not revoked")
				}
				continue
			}
			s.userChanged(ctx, c)
		case <-prune.C:
			s.trackedIdentities(s.cfg.Now())
		}
	}
}

// revocation is one server API call to make: Unsubscribe when channel is
// set, else Disconnect.
type revocation struct {
	channel, user string
}

// channelChanged unsubscribes the identities that lost channel c.
func (s *Server) channelChanged(ctx context.Context, c instant.Change[instant.Channel], uv UserView) {
	if c.Old == nil {
		s.revoked(channelKey(c.Name), 0)
		return
	}
	lost := func(id instant.Identity) bool {
		return instant.Allowed(id, *c.Old) && (c.New == nil || !instant.Allowed(id, *c.New))
	}
	var todo []revocation
	if uv != nil {
		for _, u := range uv.All() {
			if lost(u.Identity) {
				todo = append(todo, revocation{channel: c.Name, user: u.Username})
			}
		}
	}
	for _, id := range s.trackedIdentities(s.cfg.Now()) {
		if lost(id) {
			todo = append(todo, revocation{channel: c.Name, user: id.Username})
		}
	}
	if lost(instant.Anonymous) {
		todo = append(todo, revocation{channel: c.Name, user: ""})
	}
	if len(todo) > 0 {
		s.log.Info("channel access lost", zap.String("channel", c.Name), zap.Int("unsubscribe", len(todo)))
	}
	s.revoked(channelKey(c.Name), s.revoke(ctx, todo))
}

// userChanged disconnects a user deleted or whose Epoch changed, and
// unsubscribes a user from the channels they lost.
func (s *Server) userChanged(ctx context.Context, c instant.Change[instant.User]) {
	switch {
	case c.Old == nil:
		s.revoked(userKey(c.Name), 0)
		return
	case c.New == nil, c.Old.Epoch != c.New.Epoch:
		s.log.Info("user deleted or signed out", zap.String("user", c.Name))
		s.revoked(userKey(c.Name), s.revoke(ctx, []revocation{{user: c.Name}}))
		return
	}
	before, after := c.Old.Identity, c.New.Identity
	var todo []revocation
	for _, ch := range s.channels.All() {
		if instant.Allowed(before, ch) && !instant.Allowed(after, ch) {
			todo = append(todo, revocation{channel: ch.Name, user: c.Name})
		}
	}
	if len(todo) > 0 {
		s.log.Info("user access lost", zap.String("user", c.Name), zap.Int("unsubscribe", len(todo)))
	}
	s.revoked(userKey(c.Name), s.revoke(ctx, todo))
}

// revoke makes the calls, a few at a time, and returns how many succeeded
// when all are done.
func (s *Server) revoke(ctx context.Context, todo []revocation) int {
	if len(todo) == 0 {
		return 0
	}
	var g errgroup.Group
	g.SetLimit(revokeParallel)
	var ok atomic.Int64
	for _, r := range todo {
		g.Go(func() error {
			if s.call(ctx, r) {
				ok.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	return int(ok.Load())
}

// call makes one call, retrying temporary failures, records the outcome
// and reports whether it succeeded.
func (s *Server) call(ctx context.Context, r revocation) bool {
	kind := "disconnect"
	if r.channel != "" {
		kind = "unsubscribe"
	}
	var err error
	for attempt := 1; ; attempt++ {
		if r.channel != "" {
			err = s.revoker.Unsubscribe(ctx, r.channel, r.user)
		} else {
			err = s.revoker.Disconnect(ctx, r.user)
		}
		if err == nil || attempt == revokeAttempts || !centrifugo.Temporary(err) || ctx.Err() != nil {
			break
		}
		_ = backoff.Wait(ctx, attempt, revokeWaitMin, revokeWaitMax) // if ctx ends, the next call fails and ends the loop
	}
	if err != nil {
		s.metrics.Revocations.WithLabelValues(kind, "error").Inc()
		s.log.Error("revocation failed", zap.String("kind", kind), zap.String("channel", r.channel),
			zap.String("user", r.user), zap.Error(err))
		return false
	}
	s.metrics.Revocations.WithLabelValues(kind, "ok").Inc()
	s.log.Debug("access revoked", zap.String("kind", kind), zap.String("channel", r.channel), zap.String("user", r.user))
	return true
}

// compile-time check that the Centrifugo client can revoke.
var _ Revoker = (*centrifugo.Client)(nil)
