package deploy_test

import (
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/instanthq/instant/internal/stacktest"
)

const composeFile = "docker-compose.yaml"

// composeService is the part of a docker-compose service the tests check.
type composeService struct {
	Image           string                                `yaml:"image"`
	Build           any                                   `yaml:"build"`
	PullPolicy      string                                `yaml:"pull_policy"`
	Command         []string                              `yaml:"command"`
	Environment     map[string]string                     `yaml:"environment"`
	Ports           []string                              `yaml:"ports"`
	Volumes         []string                              `yaml:"volumes"`
	DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck     *struct{ Test []string }              `yaml:"healthcheck"`
	Restart         string                                `yaml:"restart"`
	StopGracePeriod string                                `yaml:"stop_grace_period"`
}

type compose struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, composeFile)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestComposeStructure checks the compose file without Docker (no engine
// here): every service runs something, waits only for services that
// exist, has a health check unless it is a one-shot, and mounts what
// exists.
func TestComposeStructure(t *testing.T) {
	c := loadCompose(t)
	for _, want := range []string{"nats-1", "nats-2", "nats-3", "redis", "centrifugo", "bridge", "auth"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("service %s missing", want)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is no service", name, dep)
			}
		}
		if s.Restart != "no" && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("%s: long-running service without healthcheck", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts the volume %s, which is not declared", name, src)
			}
		}
	}
	for i := 1; i <= 3; i++ {
		n := c.Services["nats-"+strconv.Itoa(i)]
		conf := "/etc/nats/nats-" + strconv.Itoa(i) + ".conf"
		if !slices.Contains(n.Command, conf) || !slices.Contains(n.Volumes, "./nats:/etc/nats:ro") {
			t.Errorf("nats-%d: command %q, volumes %q: want %s from ./nats", i, n.Command, n.Volumes, conf)
		}
	}
	if got := c.Services["centrifugo"].Image; got != "centrifugo/centrifugo:v6.9.1" {
		t.Errorf("centrifugo image %q, want the version bin/centrifugo is tested with", got)
	}

	// The instant image is built once: one service builds and tags it,
	// the others run that tag without a build or a pull of their own.
	var builders []string
	for name, s := range c.Services {
		if s.Build != nil {
			builders = append(builders, name)
		}
	}
	if len(builders) != 1 || c.Services[builders[0]].Image != "instant:latest" {
		t.Fatalf("services with a build: %v, want one, tagging instant:latest", builders)
	}
	for name, s := range c.Services {
		if s.Image != "instant:latest" || s.Build != nil {
			continue
		}
		if s.PullPolicy != "never" {
			t.Errorf("%s runs instant:latest with pull_policy %q, want never (the image is built here)", name, s.PullPolicy)
		}
		if !dependsOn(c, name, builders[0]) {
			t.Errorf("%s runs instant:latest but does not wait for %s, which builds it", name, builders[0])
		}
	}
}

// dependsOn reports whether service from waits for service to, directly
// or through other services.
func dependsOn(c compose, from, to string) bool {
	for dep := range c.Services[from].DependsOn {
		if dep == to || dependsOn(c, dep, to) {
			return true
		}
	}
	return false
}

// TestComposeCentrifugoPorts checks that Centrifugo publishes its client
// port only and that its health check asks the internal port, where
// /health is.
func TestComposeCentrifugoPorts(t *testing.T) {
	settings := loadCentrifugoSettings(t)
	s := loadCompose(t).Services["centrifugo"]
	want := "127.0.0.1:" + settings.HTTPServer.Port + ":" + settings.HTTPServer.Port
	if !slices.Equal(s.Ports, []string{want}) {
		t.Errorf("centrifugo publishes %q, want only the client port %q", s.Ports, want)
	}
	health := "http://127.0.0.1:" + settings.HTTPServer.InternalPort + "/health"
	if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, health) {
		t.Errorf("centrifugo healthcheck %v does not ask %s", s.Healthcheck, health)
	}
}

// TestComposeInstantSettings checks that bridge and auth get the settings
// they require, that their secrets are the ones Centrifugo and NATS are
// configured with, and that health checks and ports hit what they serve.
func TestComposeInstantSettings(t *testing.T) {
	c := loadCompose(t)
	centrifugo := loadCentrifugoSettings(t)
	natsUsers := natsPasswords(t)
	for name, addrSetting := range map[string]string{"bridge": "INSTANT_METRICS_ADDR", "auth": "INSTANT_AUTH_ADDR"} {
		t.Run(name, func(t *testing.T) {
			s := c.Services[name]
			env := s.Environment
			if !slices.Equal(s.Command, []string{name}) {
				t.Errorf("command %q, want [%s]", s.Command, name)
			}
			want := map[string]string{
				"CENTRIFUGO_API_KEY": centrifugo.HTTPAPI.Key,
				"CENTRIFUGO_PORT":    centrifugo.HTTPServer.InternalPort, // the API's port
				"CENTRIFUGO_HOST":    "http://centrifugo",
			}
			if name == "auth" {
				want["CENTRIFUGO_HMAC_KEY"] = centrifugo.Client.Token.HMACSecretKey
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s = %q, want %q (Centrifugo's config)", k, env[k], v)
				}
			}
			checkNATSURL(t, env["NATS_URL"], name, natsUsers, c)

			_, port, err := net.SplitHostPort(env[addrSetting])
			if err != nil {
				t.Fatalf("%s = %q: %v", addrSetting, env[addrSetting], err)
			}
			if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, "http://127.0.0.1:"+port+"/readyz") {
				t.Errorf("healthcheck %v does not ask /readyz on port %s (%s)", s.Healthcheck, port, addrSetting)
			}
			for _, p := range s.Ports {
				if container := parsePort(t, p).container; container != port {
					t.Errorf("publishes %s, but %s serves on %s", p, name, port)
				}
			}
			shutdown, grace := 10*time.Second, 10*time.Second // the defaults of instant and compose
			if v := env["INSTANT_SHUTDOWN_TIMEOUT"]; v != "" {
				shutdown, err = time.ParseDuration(v)
				if err != nil {
					t.Fatal(err)
				}
			}
			if s.StopGracePeriod != "" {
				if grace, err = time.ParseDuration(s.StopGracePeriod); err != nil {
					t.Fatal(err)
				}
			}
			if grace <= shutdown {
				t.Errorf("stop_grace_period %v is not above INSTANT_SHUTDOWN_TIMEOUT %v", grace, shutdown)
			}
		})
	}
}

// publishedPort is a "HOST_IP:HOST_PORTS:CONTAINER_PORT" of compose.
type publishedPort struct{ ip, host, container string }

func parsePort(t *testing.T, p string) publishedPort {
	t.Helper()
	f := strings.Split(p, ":")
	if len(f) != 3 {
		t.Fatalf("port %q: want HOST_IP:HOST_PORT:CONTAINER_PORT", p)
	}
	return publishedPort{f[0], f[1], f[2]}
}

// TestComposePortsOnLoopback checks that every published port listens on
// the host's loopback only, and that a service meant to scale (bridge,
// auth) has no single fixed host port.
func TestComposePortsOnLoopback(t *testing.T) {
	published := 0
	for name, s := range loadCompose(t).Services {
		for _, p := range s.Ports {
			published++
			pp := parsePort(t, p)
			if pp.ip != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1 (a reverse proxy exposes what must be public)", name, p, pp.ip)
			}
			if (name == "auth" || name == "bridge") && !strings.Contains(pp.host, "-") {
				t.Errorf("%s publishes the fixed host port %s: `--scale %s=2` would fail; give a range", name, p, name)
			}
		}
	}
	if published == 0 {
		t.Fatal("no published port found")
	}
}

// TestComposePlaceholdersRefused runs bridge and auth with their
// settings from docker-compose.yaml as shipped: both refuse the
// placeholder secrets, exit 2 naming a setting, before connecting.
// With the copy secrets.sh writes, no placeholder is left.
func TestComposePlaceholdersRefused(t *testing.T) {
	bin := instantBinary(t)
	for _, name := range []string{"bridge", "auth"} {
		s := loadCompose(t).Services[name]
		cmd := exec.Command(bin, s.Command...)
		for k, v := range s.Environment {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !regexp.MustCompile(`(NATS_URL|CENTRIFUGO_\w+): holds a placeholder`).Match(out) {
			t.Errorf("%s with the shipped settings: %v, %s; want exit 2 naming the placeholder", name, err, out)
		}
	}
	dir := runSecrets(t)
	if out, err := exec.Command("grep", "-rlE", "change-me-[a-z0-9]", dir).CombinedOutput(); err == nil {
		t.Errorf("secrets.sh left placeholders in:\n%s", out)
	}
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(dir, composeFile))), &c); err != nil {
		t.Fatal(err)
	}
	if c.Services["bridge"].Environment["CENTRIFUGO_API_KEY"] == loadCompose(t).Services["bridge"].Environment["CENTRIFUGO_API_KEY"] {
		t.Error("secrets.sh kept the API key")
	}
}

// natsPasswords returns the users and passwords of nats/accounts.conf.
func natsPasswords(t *testing.T) map[string]string {
	t.Helper()
	return natsPasswordsOf(t, readFile(t, "nats/accounts.conf"))
}

// natsPasswordsOf returns the users and passwords of accounts, the
// content of an accounts.conf.
func natsPasswordsOf(t *testing.T, accounts string) map[string]string {
	t.Helper()
	out := stacktest.NATSPasswords(accounts)
	if len(out) == 0 {
		t.Fatal("no users found in accounts.conf")
	}
	return out
}

// checkNATSURL checks that raw lists every NATS node, each as user with
// the password accounts.conf gives it.
func checkNATSURL(t *testing.T, raw, user string, passwords map[string]string, c compose) {
	t.Helper()
	var hosts []string
	for _, s := range strings.Split(raw, ",") {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("NATS_URL %q: %v", s, err)
		}
		pass, _ := u.User.Password()
		if u.User.Username() != user || pass != passwords[user] {
			t.Errorf("NATS_URL %s: want user %s with the password of nats/accounts.conf", u.Redacted(), user)
		}
		if _, ok := c.Services[u.Hostname()]; !ok || u.Port() != "4222" {
			t.Errorf("NATS_URL %s: not a NATS service's client port", u.Redacted())
		}
		hosts = append(hosts, u.Hostname())
	}
	if !slices.Equal(hosts, []string{"nats-1", "nats-2", "nats-3"}) {
		t.Errorf("NATS_URL lists %v, want every node", hosts)
	}
}

// TestComposeConfig runs docker-compose's own validation (`config -q`),
// where a compose tool is installed; the Docker engine is not needed.
func TestComposeConfig(t *testing.T) {
	var args []string
	if bin, err := exec.LookPath("docker-compose"); err == nil {
		args = []string{bin}
	} else if exec.Command("docker", "compose", "version").Run() == nil {
		args = []string{"docker", "compose"}
	} else {
		t.Skip("neither docker-compose nor the docker compose plugin is installed; TestComposeStructure checks the file")
	}
	run := func(file string) ([]byte, error) {
		return exec.Command(args[0], append(args[1:], "-f", file, "config", "-q")...).CombinedOutput()
	}
	if out, err := run(composeFile); err != nil {
		t.Fatalf("%s config -q: %v\n%s", strings.Join(args, " "), err, out)
	}
	// An unknown option fails the same check, so the check means
	// something. The copy lives in a temporary folder, so its relative
	// paths (bind mounts, the build context "..") are made absolute,
	// relative to this folder.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	abs, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	content := replaceEach(t, readFile(t, composeFile), 4, "stop_grace_period:", "stop_grace_periode:")
	content = replaceEach(t, content, 1, "context: ..\n", "context: "+filepath.Dir(abs)+"\n")
	writeFile(t, bad, strings.ReplaceAll(strings.ReplaceAll(content, "./nats", abs+"/nats"), "./centrifugo", abs+"/centrifugo"))
	if out, err := run(bad); err == nil {
		t.Errorf("config -q passed an unknown option:\n%s", out)
	}
}

// TestDockerfile checks the image definition without building it (no
// Docker engine here): the Go version of go.mod, a non-root user shared
// with the Kubernetes manifests, the binary as entrypoint, and a build
// context without caches.
func TestDockerfile(t *testing.T) {
	dockerfile := readFile(t, "Dockerfile")
	goMod := readFile(t, filepath.Join(stacktest.RepoRoot(t), "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if goVersion == nil || !regexp.MustCompile(`(?m)^FROM golang:`+regexp.QuoteMeta(goVersion[1])+`\.\d+ AS build$`).MatchString(dockerfile) {
		t.Errorf("the build stage does not use a pinned patch release of go.mod's Go %v", goVersion)
	}
	// Pinned base images: a patch release, never a moving tag.
	for _, m := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(dockerfile, -1) {
		if !regexp.MustCompile(`:\d+\.\d+\.\d+`).MatchString(m[1]) {
			t.Errorf("base image %s is not pinned to a patch release", m[1])
		}
	}
	for name, s := range loadCompose(t).Services {
		if s.Image != "" && s.Image != "instant:latest" && !regexp.MustCompile(`:v?\d+\.\d+\.\d+`).MatchString(s.Image) {
			t.Errorf("compose service %s runs %s, not pinned to a release", name, s.Image)
		}
	}
	if !strings.Contains(dockerfile, `ENTRYPOINT ["/usr/local/bin/instant"]`) ||
		!strings.Contains(dockerfile, "COPY --from=build /out/instant /usr/local/bin/instant") {
		t.Error("the image does not run the built binary")
	}
	m := loadManifests(t)
	for _, d := range m.deployments {
		uid := *d.Spec.Template.Spec.SecurityContext.RunAsUser
		id := strconv.FormatInt(uid, 10)
		if want := "USER " + id + ":" + id; !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q, the user %s runs as", want, d.Name)
		}
	}
	ignore := strings.Fields(readFile(t, "Dockerfile.dockerignore"))
	for _, want := range []string{".cache", "bin", ".git"} {
		if !slices.Contains(ignore, want) {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", want)
		}
	}
}
