package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/monitor"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
	"github.com/instanthq/instant/web"
)

// authStores are the buckets auth reads and their live views.
type authStores struct {
	registry *registry.Store
	channels *registry.View
	users    *users.Store
	userView *users.View
}

// open opens what is not open yet, so that bridge.UntilReady may call it
// again after a transient failure without starting a second view (a view
// watches until ctx ends).
func (a *authStores) open(ctx context.Context, nc *natsConn, js jetstream.JetStream, replicas int) error {
	if a.registry == nil {
		store, err := openStore(ctx, nc, replicas)
		if err != nil {
			return err
		}
		a.registry = store
	}
	if a.channels == nil {
		v, err := a.registry.Watch(ctx)
		if err != nil {
			return err
		}
		a.channels = v
	}
	if a.users == nil {
		us, err := users.Open(ctx, js, users.DefaultBucket)
		if err != nil {
			return err
		}
		a.users = us
	}
	if a.userView == nil {
		v, err := a.users.Watch(ctx)
		if err != nil {
			return err
		}
		a.userView = v
	}
	return nil
}

// serveAuth starts the auth HTTP module (with the browser client at
// /instant/static/, /healthz and /readyz, and demo at "/" unless nil) on
// INSTANT_AUTH_ADDR, its /metrics, /healthz and /readyz on
// INSTANT_AUTH_METRICS_ADDR (not on the public port) unless empty, and
// its revocation loop in g. Without static, it first waits, logging,
// while JetStream is not ready (a NATS cluster electing its leader).
func serveAuth(ctx context.Context, g *errgroup.Group, s settings, static *registry.View, nc *natsConn, log *zap.Logger, demo http.Handler) error {
	deps := auth.Deps{Log: log.Named("auth")}
	console, err := web.Console(web.ConsoleConfig{WebsocketURL: s.WebsocketURL})
	if err != nil {
		return settingf("INSTANT_WEBSOCKET_URL", "%v", err)
	}
	relay, err := s.centrifugoClient()
	if err != nil {
		return err
	}
	admin := &auth.Admin{Stats: relay}
	if u := s.bridgeMetricsURL(); u != "" {
		admin.Traffic = &auth.BridgeMetrics{URL: u}
	}
	if static != nil {
		deps.Channels = static
	} else {
		js, err := jetstream.New(nc.Conn)
		if err != nil {
			return err
		}
		// A NATS cluster just started answers once it has a leader.
		var st authStores
		err = bridge.UntilReady(ctx, deps.Log, func(ctx context.Context) error { return st.open(ctx, nc, js, s.Replicas) })
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while waiting
			}
			return err
		}
		deps.Channels, deps.UserView = st.channels, st.userView
		deps.Users, admin.Users, admin.Registry = st.users, st.users, st.registry
		if s.Bridge.Mode != bridge.ModeCore {
			admin.DeadLetters = &auth.JetStreamDeadLetters{JS: js, Conn: nc.Conn, Stream: s.Bridge.DeadStream,
				Subject: s.Bridge.Subject, RequestSubject: s.Bridge.RequestSubject}
		}
	}
	deps.Admin = admin
	deps.Revoker = relay
	reg := prometheus.NewRegistry()
	deps.Metrics = auth.NewMetrics(reg)
	srv, err := auth.New(s.Auth, deps)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// Responses by status code, for the 5xx alert of deploy/monitoring.
	mux.Handle("/instant/", monitor.CountResponses(reg, "auth", srv.Handler()))
	mux.Handle(web.StaticPrefix, web.Static())
	mux.Handle(web.ConsolePrefix, console)
	if demo != nil {
		mux.Handle("/", demo)
	}
	// Ready means able to serve its own requests: logins and tokens need
	// NATS and the buckets, not Centrifugo (only revocation calls it, and
	// retries), so a Centrifugo outage does not take auth out of its
	// load balancer.
	checks := []monitor.Check{natsCheck(nc.Conn),
		{Name: "auth", Func: func(context.Context) error { return readyErr(srv.Ready()) }}}
	if static == nil {
		checks = append(checks, bucketsCheck(nc, registry.DefaultBucket, users.DefaultBucket))
	}
	monitor.RegisterHealth(mux, checks...)
	if err := serveHTTP(ctx, g, s.AuthAddr, "INSTANT_AUTH_ADDR", mux, log, s.HTTP); err != nil {
		return err
	}
	if s.AuthMetricsAddr != "" {
		metrics := http.NewServeMux()
		monitor.Register(metrics, reg, checks...)
		if err := serveHTTP(ctx, g, s.AuthMetricsAddr, "INSTANT_AUTH_METRICS_ADDR", metrics, log, s.HTTP); err != nil {
			return err
		}
	}
	g.Go(func() error { return srv.Run(ctx) })
	return nil
}

// The stores satisfy the interfaces auth declares.
var (
	_ auth.Channels     = (*registry.View)(nil)
	_ auth.Users        = (*users.Store)(nil)
	_ auth.UserView     = (*users.View)(nil)
	_ auth.ChannelStore = (*registry.Store)(nil)
	_ auth.UserStore    = (*users.Store)(nil)
)

// bucketsCheck is ready when the KV buckets answer (a stream info
// request each: a JetStream without quorum fails it).
func bucketsCheck(nc *natsConn, buckets ...string) monitor.Check {
	return monitor.Check{Name: "buckets", Func: func(ctx context.Context) error {
		js, err := jetstream.New(nc.Conn)
		if err != nil {
			return err
		}
		for _, b := range buckets {
			if _, err := js.KeyValue(ctx, b); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		return nil
	}}
}

// errNotFollowing is the readiness error before the auth module follows
// the registry and the user store.
var errNotFollowing = errors.New("not yet following the registry and users")

func readyErr(ready <-chan struct{}) error {
	select {
	case <-ready:
		return nil
	default:
		return errNotFollowing
	}
}
