package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
)

// Files written by `instant init` (and by `instant dev` into its data
// folder), both readable only by their owner.
const (
	centrifugoConfigFile = "centrifugo.json"
	settingsFile         = "instant.env"
)

// secretBytes is the size of each generated secret, before hex encoding.
const secretBytes = 32

// installation is what `instant init` generates: the Centrifugo server's
// address and origins and the secrets it shares with instant.
type installation struct {
	Address        string // Centrifugo listen address; "" for all interfaces
	Port           int
	AllowedOrigins []string
	APIKey         string
	HMACKey        string
}

// newInstallation returns an installation with fresh random secrets.
func newInstallation(port int, origins []string) (installation, error) {
	in := installation{Port: port, AllowedOrigins: origins}
	var err error
	if in.APIKey, err = randomHex(secretBytes); err != nil {
		return in, err
	}
	in.HMACKey, err = randomHex(secretBytes)
	return in, err
}

// centrifugoConfig is the Centrifugo v6 configuration of in.
func (in installation) centrifugoConfig() ([]byte, error) {
	return centrifugo.ServerConfig{
		Address: in.Address, Port: in.Port, APIKey: in.APIKey, HMACKey: in.HMACKey,
		AllowedOrigins: in.AllowedOrigins, HistorySize: 1000, HistoryTTL: "300s",
	}.JSON()
}

// settings is the instant settings file of in: environment variables in
// the KEY=value form that `set -a; . FILE`, systemd's EnvironmentFile= and
// docker's --env-file all read.
func (in installation) settings() string {
	return fmt.Sprintf(`# instant settings written by `+"`instant init`"+`. Keep this file secret:
# it holds the keys that match %s. Load it with
#   set -a; . ./%s; set +a
# (or systemd's EnvironmentFile=, docker's --env-file). See README.md for
# every setting.
NATS_URL=%s
CENTRIFUGO_HOST=%s
CENTRIFUGO_PORT=%d
CENTRIFUGO_API_KEY=%s
CENTRIFUGO_HMAC_KEY=%s
SITE_NAME=%s
`, centrifugoConfigFile, settingsFile, defaultNATSURL, defaultCentrifugoHost, in.Port, in.APIKey, in.HMACKey, bridge.DefaultSite)
}

// runInit is `instant init [DIR]`.
func runInit(_ context.Context, args []string, env *Env) error {
	fs := newFlags("init")
	force := fs.Bool("force", false, "overwrite existing files")
	port := fs.Int("centrifugo-port", defaultCentrifugoPort, "Centrifugo's HTTP port")
	origins := fs.String("origins", fmt.Sprintf("http://localhost:%d", defaultAuthPort), "comma-separated origins of the pages that connect to Centrifugo")
	pos, err := parseFlags(fs, args, 0, 1)
	if err != nil {
		return err
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	if !validPort(*port) {
		return usagef("init: --centrifugo-port %d is not a port", *port)
	}
	in, err := newInstallation(*port, splitList(*origins))
	if err != nil {
		return err
	}
	if err := writeInstallation(dir, in, *force); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Wrote %s (Centrifugo v6) and %s (instant), readable only by you:\n\n",
		filepath.Join(dir, centrifugoConfigFile), filepath.Join(dir, settingsFile))
	fmt.Fprintln(env.Stdout, settingLines(in.settings()))
	fmt.Fprintf(env.Stdout, `Next:
  bin/centrifugo --config %s
  set -a; . %s; set +a
  bin/instant serve
`, filepath.Join(dir, centrifugoConfigFile), sourceablePath(filepath.Join(dir, settingsFile)))
	return nil
}

// sourceablePath is path as the shell's "." command finds it: a bare
// file name is looked up in PATH, so it gets a "./".
func sourceablePath(path string) string {
	if !strings.ContainsRune(path, filepath.Separator) {
		return "." + string(filepath.Separator) + path
	}
	return path
}

// settingLines is the settings file without its comments.
func settingLines(file string) string {
	var b strings.Builder
	for _, line := range strings.Split(file, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// writeInstallation writes both files of in into dir (created if missing).
// Unless force, it refuses when either file exists, writing nothing.
func writeInstallation(dir string, in installation, force bool) error {
	conf, err := in.centrifugoConfig()
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{centrifugoConfigFile, conf}, {settingsFile, []byte(in.settings())}}
	if !force {
		for _, f := range files {
			if p := filepath.Join(dir, f.name); fileExists(p) {
				return fmt.Errorf("%s exists: keep it, or pass --force to replace it and its secrets", p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writePrivate(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return nil
}

// writePrivate replaces path with data, atomically and with mode 0600
// whatever the mode of a file it replaces.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readSettingsFile parses a KEY=value settings file as written by
// `instant init`: blank lines and lines starting with # are ignored.
func readSettingsFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: not a KEY=value line", path, n)
		}
		vars[k] = v
	}
	return vars, sc.Err()
}

// loadInstallation reads the secrets of dir's settings file into an
// installation; errors wrap os.ErrNotExist when the file is missing.
func loadInstallation(dir string) (installation, error) {
	path := filepath.Join(dir, settingsFile)
	vars, err := readSettingsFile(path)
	if err != nil {
		return installation{}, err
	}
	in := installation{APIKey: vars["CENTRIFUGO_API_KEY"], HMACKey: vars["CENTRIFUGO_HMAC_KEY"]}
	if in.APIKey == "" || in.HMACKey == "" {
		return in, errors.New(path + " lacks CENTRIFUGO_API_KEY or CENTRIFUGO_HMAC_KEY: remove it to get new secrets")
	}
	return in, nil
}
