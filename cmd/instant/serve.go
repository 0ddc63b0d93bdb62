package main

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// runService is `instant bridge`, `instant auth` and `instant serve`: the
// long-running parts named by withBridge and withAuth, on one NATS
// connection, until ctx ends.
func runService(ctx context.Context, name string, args []string, env *Env, withBridge, withAuth bool) error {
	if _, err := parseFlags(newFlags(name), args, 0, 0); err != nil {
		return err
	}
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	if err := s.requireAPIKey(); err != nil {
		return err
	}
	if withAuth {
		if err := s.requireAuth(); err != nil {
			return err
		}
	}
	static, err := channelsFile(s)
	if err != nil {
		return err
	}
	log := newLogger(env, s)
	defer func() { _ = log.Sync() }()
	nc, err := connectNATS(s, name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	g, gctx := errgroup.WithContext(ctx)
	if withAuth {
		if err := serveAuth(gctx, g, s, static, nc, log, nil); err != nil {
			return err
		}
	}
	if withBridge {
		g.Go(func() error { return serveBridge(gctx, s, static, nc, log) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return nc.Drain()
}
