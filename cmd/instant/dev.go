package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/localnats"
	"github.com/instanthq/instant/registry"
)

// defaultChannels are registered by `instant dev` when missing.
var defaultChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "$superuser", Level: instant.LevelSuperuser, Active: true},
}

// devSecrets are the local stack's secrets, kept in the data folder.
type devSecrets struct {
	APIKey  string `json:"api_key"`
	HMACKey string `json:"hmac_key"`
}

// runDev is `instant dev`: embedded NATS, Centrifugo as a child process and
// the bridge, until ctx ends.
func runDev(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("dev")
	dataDir := fs.String("data", "data", "folder for NATS data, secrets and the Centrifugo config (kept across runs)")
	natsPort := fs.Int("nats-port", 4222, "NATS port")
	centPort := fs.Int("centrifugo-port", 8000, "Centrifugo port")
	centBin := fs.String("centrifugo", "", "Centrifugo binary (default: bin/centrifugo next to instant, then PATH)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("dev", pos, 0, 0); err != nil {
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
	secrets, err := loadDevSecrets(*dataDir)
	if err != nil {
		return err
	}
	confPath, err := writeDevCentrifugoConfig(*dataDir, *centPort, secrets)
	if err != nil {
		return err
	}
	log := newLogger(env)
	defer func() { _ = log.Sync() }()

	srv, err := localnats.Start(localnats.Options{Port: *natsPort, StoreDir: filepath.Join(*dataDir, "nats")})
	if err != nil {
		return usagef("--nats-port %d: %v", *natsPort, err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := connectNATS(srv.ClientURL(), "instant dev", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := ensureChannels(ctx, nc, defaultChannels); err != nil {
		return err
	}

	s.NATSURL = srv.ClientURL()
	s.CentrifugoURL = fmt.Sprintf("http://127.0.0.1:%d", *centPort)
	s.APIKey = secrets.APIKey
	g, ctx := errgroup.WithContext(ctx)
	child, err := startChild(ctx, g, bin, []string{"--config", confPath}, env.Stderr)
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, s.CentrifugoURL+"/health", child); err != nil {
		return err
	}
	printDevBanner(env.Stdout, s)
	g.Go(func() error { return serveBridge(ctx, s, nil, nc, log) })
	return g.Wait()
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

// loadDevSecrets reads dir/secrets.json, creating it with fresh random
// secrets on the first run.
func loadDevSecrets(dir string) (devSecrets, error) {
	path := filepath.Join(dir, "secrets.json")
	var sec devSecrets
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &sec); err != nil || sec.APIKey == "" || sec.HMACKey == "" {
			return sec, fmt.Errorf("%s is damaged: remove it to get new secrets", path)
		}
		return sec, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return sec, err
	}
	if sec.APIKey, err = randomHex(32); err != nil {
		return sec, err
	}
	if sec.HMACKey, err = randomHex(32); err != nil {
		return sec, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sec, err
	}
	b, _ = json.MarshalIndent(sec, "", "  ")
	return sec, os.WriteFile(path, b, 0o600)
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func writeDevCentrifugoConfig(dir string, port int, sec devSecrets) (string, error) {
	conf, err := centrifugo.ServerConfig{
		Address: "127.0.0.1", Port: port, APIKey: sec.APIKey, HMACKey: sec.HMACKey,
		AllowedOrigins: []string{fmt.Sprintf("http://localhost:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)},
		HistorySize:    1000, HistoryTTL: "300s",
	}.JSON()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "centrifugo.json")
	return path, os.WriteFile(path, conf, 0o600)
}

// ensureChannels registers chs that the registry does not hold yet.
func ensureChannels(ctx context.Context, nc *natsConn, chs []instant.Channel) error {
	store, err := openStore(ctx, nc)
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

// child is a process the stack depends on.
type child struct {
	name   string
	exited chan struct{} // closed when the process ended
}

// startChild starts bin as a child process whose output goes to out, each
// line prefixed with its name. When ctx ends it is stopped (SIGTERM, then
// SIGKILL after 10s); if it dies before, the group fails.
func startChild(ctx context.Context, g *errgroup.Group, bin string, args []string, out io.Writer) (*child, error) {
	name := filepath.Base(bin)
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	setParentDeathSignal(cmd)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	c := &child{name: name, exited: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintf(out, "%s | %s\n", name, sc.Text())
		}
	}()
	g.Go(func() error {
		<-copied
		err := cmd.Wait()
		close(c.exited)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s exited unexpectedly (%v): see its output above", name, err)
	})
	g.Go(func() error {
		select {
		case <-c.exited:
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		return nil
	})
	return c, nil
}

// childEnv is this process's environment without CENTRIFUGO_* variables,
// which Centrifugo would read as its own settings.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CENTRIFUGO_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitHealthy polls url until it answers 200, the child dies or 30s pass.
func waitHealthy(ctx context.Context, url string, c *child) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("%s exited at start: see its output above (port in use?)", c.name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer %s within 30s", c.name, url)
}

func printDevBanner(w io.Writer, s settings) {
	fmt.Fprintf(w, `
instant dev is running (Ctrl-C stops everything)
  NATS        %s
  Centrifugo  %s  (websocket %s/connection/websocket)
  channels    public, $users, $staff, $superuser

Publish from another terminal:
  bin/nats --server %s pub instant.publish.public "Message for everyone"
  bin/nats --server %s req instant.request.public "hello"
  NATS_URL=%s bin/instant publish public "hello" --wait

`, s.NATSURL, s.CentrifugoURL, strings.Replace(s.CentrifugoURL, "http", "ws", 1), s.NATSURL, s.NATSURL, s.NATSURL)
}
