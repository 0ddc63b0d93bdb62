package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/child"
	"github.com/instanthq/instant/internal/localnats"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
	"github.com/instanthq/instant/web"
)

// defaultChannels are registered by `instant dev` when missing.
var defaultChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "$superuser", Level: instant.LevelSuperuser, Active: true},
}

// demoUser is the staff user `instant dev` creates on its first run.
const demoUser = "demo"

// devPorts are the loopback ports of `instant dev`, each with its flag.
type devPorts struct {
	NATS, Centrifugo, Auth, Metrics int
}

// runDev is `instant dev`: embedded NATS, Centrifugo as a child process,
// the bridge and the auth module with the demo page, until ctx ends or a
// part fails.
func runDev(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("dev")
	dataDir := fs.String("data", "data", "folder for NATS data, secrets, users and the Centrifugo config (kept across runs)")
	var ports devPorts
	fs.IntVar(&ports.NATS, "nats-port", defaultNATSPort, "NATS port")
	fs.IntVar(&ports.Centrifugo, "centrifugo-port", defaultCentrifugoPort, "Centrifugo port")
	fs.IntVar(&ports.Auth, "auth-port", defaultAuthPort, "auth module and demo page port")
	fs.IntVar(&ports.Metrics, "metrics-port", defaultMetricsPort, "the bridge's /metrics, /healthz and /readyz port")
	centBin := fs.String("centrifugo", "", "Centrifugo binary (default: bin/centrifugo next to instant, then PATH)")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	bin, err := findCentrifugo(*centBin)
	if err != nil {
		return err
	}
	if err := ports.checkFree(); err != nil {
		return err
	}
	in, err := devInstallation(*dataDir, ports)
	if err != nil {
		return err
	}
	s.configureDev(in, ports)
	if err := s.requireAuth(); err != nil {
		return err
	}
	log := newLogger(env, s)
	defer func() { _ = log.Sync() }()

	srv, err := localnats.Start(localnats.Options{Port: ports.NATS, StoreDir: filepath.Join(*dataDir, "nats")})
	if err != nil {
		return fmt.Errorf("embedded NATS on port %d: %w", ports.NATS, err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	s.NATSURL = srv.ClientURL()
	nc, err := connectNATS(s, "dev", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := ensureChannels(ctx, nc, defaultChannels); err != nil {
		return err
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	err = startDevParts(ctx, g, s, ports, *dataDir, bin, nc, log, env)
	if err != nil {
		cancel() // stops what started, Centrifugo included
	}
	if werr := g.Wait(); werr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = werr // the failure that ended the group, not its consequence
	}
	switch {
	case parent.Err() != nil && errors.Is(err, context.Canceled):
		return nil // Ctrl-C while starting
	case err != nil:
		return err
	}
	return nc.Drain()
}

// startDevParts starts Centrifugo, waits until it is healthy, then serves
// the auth module with the demo page and the bridge, all in g, and prints
// the banner.
func startDevParts(ctx context.Context, g *errgroup.Group, s settings, ports devPorts, dataDir, bin string, nc *natsConn, log *zap.Logger, env *Env) error {
	password, err := ensureDemoUser(ctx, nc)
	if err != nil {
		return err
	}
	if err := startCentrifugo(ctx, g, bin, filepath.Join(dataDir, centrifugoConfigFile), s.CentrifugoURL, env.Stderr); err != nil {
		return err
	}
	s.WebsocketURL = fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", ports.Centrifugo)
	demo, err := web.Demo(web.DemoConfig{WebsocketURL: s.WebsocketURL})
	if err != nil {
		return err
	}
	if err := serveAuth(ctx, g, s, nil, nc, log, demo); err != nil {
		return err
	}
	g.Go(func() error { return serveBridge(ctx, s, nil, nc, log) })
	channels, err := channelNames(ctx, nc)
	if err != nil {
		return err
	}
	printDevBanner(env.Stdout, s, password, channels)
	return nil
}

// channelNames lists the registry's channels, each with its level.
func channelNames(ctx context.Context, nc *natsConn) ([]string, error) {
	store, err := openStore(ctx, nc, 1)
	if err != nil {
		return nil, err
	}
	chs, err := store.List(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range chs {
		name := c.Name
		switch {
		case c.Level == instant.LevelGroups:
			name += " (groups: " + strings.Join(c.Groups, ", ") + ")"
		case c.Level != instant.LevelPublic && c.Level != instant.Level(strings.TrimPrefix(c.Name, "$")):
			name += " (" + string(c.Level) + ")"
		}
		if !c.Active {
			name += " (inactive)"
		}
		names = append(names, name)
	}
	return names, nil
}

// checkFree fails with one line naming the first port something already
// listens on.
func (p devPorts) checkFree() error {
	for _, c := range []struct {
		port int
		flag string
	}{{p.NATS, "nats-port"}, {p.Centrifugo, "centrifugo-port"}, {p.Auth, "auth-port"}, {p.Metrics, "metrics-port"}} {
		if !validPort(c.port) {
			return usagef("dev: --%s %d is not a port", c.flag, c.port)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.port))
		if err != nil {
			return usagef("dev: port %d is in use (stop what listens there, or choose another with --%s)", c.port, c.flag)
		}
		l.Close()
	}
	return nil
}

// devInstallation returns the secrets kept in dir's settings file,
// creating it on the first run, and (re)writes dir's Centrifugo config
// for ports.
func devInstallation(dir string, ports devPorts) (installation, error) {
	in, err := loadInstallation(dir)
	if errors.Is(err, os.ErrNotExist) {
		in, err = newInstallation(ports.Centrifugo, nil)
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err == nil {
			err = writePrivate(filepath.Join(dir, settingsFile), []byte(in.settings()))
		}
	}
	if err != nil {
		return in, err
	}
	in.Address = "127.0.0.1"
	in.Port = ports.Centrifugo
	in.AllowedOrigins = []string{
		fmt.Sprintf("http://localhost:%d", ports.Auth), fmt.Sprintf("http://127.0.0.1:%d", ports.Auth),
	}
	conf, err := in.centrifugoConfig()
	if err != nil {
		return in, err
	}
	return in, writePrivate(filepath.Join(dir, centrifugoConfigFile), conf)
}

// configureDev points s at the local stack: everything on loopback.
func (s *settings) configureDev(in installation, ports devPorts) {
	s.CentrifugoURL = fmt.Sprintf("http://127.0.0.1:%d", ports.Centrifugo)
	s.APIKey = in.APIKey
	s.Auth.HMACKey = in.HMACKey
	s.AuthAddr = fmt.Sprintf("127.0.0.1:%d", ports.Auth)
	s.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports.Metrics)
	s.AuthMetricsAddr = "" // one metrics port: the bridge's
}

// ensureDemoUser creates the demo user with a random password on the
// first run and returns that password, or "" when the user exists.
func ensureDemoUser(ctx context.Context, nc *natsConn) (string, error) {
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		return "", err
	}
	store, err := users.Open(ctx, js, users.DefaultBucket)
	if err != nil {
		return "", err
	}
	if _, err := store.Get(ctx, demoUser); !errors.Is(err, users.ErrNotFound) {
		return "", err
	}
	password, err := randomHex(8)
	if err != nil {
		return "", err
	}
	return password, store.Add(ctx, instant.User{Identity: instant.Identity{Username: demoUser, Staff: true}}, password)
}

// findCentrifugo locates the Centrifugo binary.
func findCentrifugo(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "centrifugo"); fileExists(p) {
			return p, nil
		}
	}
	if p := filepath.Join("bin", "centrifugo"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("centrifugo"); err == nil {
		return p, nil
	}
	return "", usagef("Centrifugo not found: run `make run` (it installs bin/centrifugo v6.9.1) or pass --centrifugo PATH")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// ensureChannels registers chs that the registry does not hold yet.
func ensureChannels(ctx context.Context, nc *natsConn, chs []instant.Channel) error {
	store, err := openStore(ctx, nc, 1)
	if err != nil {
		return err
	}
	for _, c := range chs {
		_, err := store.Get(ctx, c.Name)
		if errors.Is(err, registry.ErrNotFound) {
			err = store.Put(ctx, c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// startCentrifugo starts Centrifugo with the config file conf, its output
// on out with each line prefixed "centrifugo | ", and waits (30s at most)
// until url/health answers. When ctx ends it is stopped (SIGTERM, then
// SIGKILL after 10s); if it dies before, g fails.
func startCentrifugo(ctx context.Context, g *errgroup.Group, bin, conf, url string, out io.Writer) error {
	p, err := child.Start(bin, []string{"--config", conf}, child.Options{
		Output: out,
		Prefix: "centrifugo | ",
		// Centrifugo would read CENTRIFUGO_* variables as its own settings.
		ScrubEnv: []string{"CENTRIFUGO_"},
		// SIGTERM, not SIGKILL, so that it closes its clients when instant
		// dies without stopping it.
		ParentDeath: syscall.SIGTERM,
	})
	if err != nil {
		return err
	}
	g.Go(func() error {
		select {
		case <-p.Done():
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s exited unexpectedly (%v): see its output above", p.Name, p.Err())
		case <-ctx.Done():
			p.Stop(10 * time.Second)
			return nil
		}
	})
	health := child.HealthOK(&http.Client{Timeout: 2 * time.Second}, url+"/health")
	err = p.WaitReady(ctx, 30*time.Second, health)
	if errors.Is(err, child.ErrExited) {
		return fmt.Errorf("%s exited at start: see its output above (port in use?)", p.Name)
	}
	return err
}

// printDevBanner tells what runs and what to try; password is the demo
// user's, shown on the run that created it only; channels are the
// registry's.
func printDevBanner(w io.Writer, s settings, password string, channels []string) {
	login := fmt.Sprintf("%s / %s  (staff; shown this once: change it with `instant users passwd %s`)", demoUser, password, demoUser)
	if password == "" {
		login = fmt.Sprintf("%s / the password shown on the first run (reset it with `NATS_URL=%s bin/instant users passwd %s`)", demoUser, s.NATSURL, demoUser)
	}
	fmt.Fprintf(w, `
instant dev is running (Ctrl-C stops everything)
  demo page   http://%s/
  login       %s
  NATS        %s
  Centrifugo  %s  (websocket %s/connection/websocket)
  metrics     http://%s/metrics
  channels    %s

Publish from another terminal and watch it arrive on the demo page:
  bin/nats --server %s pub instant.publish.public "Message for everyone"
  bin/nats --server %s req instant.request.public "hello"
  NATS_URL=%s bin/instant publish public "hello" --wait

`, s.AuthAddr, login, s.NATSURL, s.CentrifugoURL, strings.Replace(s.CentrifugoURL, "http", "ws", 1), s.MetricsAddr,
		strings.Join(channels, ", "), s.NATSURL, s.NATSURL, s.NATSURL)
}
