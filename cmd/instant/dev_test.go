package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestInit checks `instant init`: private files whose Centrifugo config
// passes `centrifugo checkconfig`, no overwrite without --force, and a
// stack started from them relays a message to a subscriber.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	port := stacktest.FreePort(t)
	code, out, errOut := run(t, nil, "init", dir, "--centrifugo-port", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	confPath, envPath := filepath.Join(dir, centrifugoConfigFile), filepath.Join(dir, settingsFile)
	for _, p := range []string{confPath, envPath} {
		if st, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	vars, err := readSettingsFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	key := vars["CENTRIFUGO_HMAC_KEY"]
	if len(key) < 2*secretBytes || !strings.Contains(out, "CENTRIFUGO_HMAC_KEY="+key) || vars["CENTRIFUGO_PORT"] != strconv.Itoa(port) {
		t.Errorf("settings %v not printed in:\n%s", vars, out)
	}
	if !strings.Contains(out, ". "+envPath+";") {
		t.Errorf("the next steps do not source %s:\n%s", envPath, out)
	}
	check := exec.Command(stacktest.Binary(t, "centrifugo"), "checkconfig", "--config", confPath)
	if b, err := check.CombinedOutput(); err != nil {
		t.Errorf("centrifugo checkconfig: %v\n%s", err, b)
	}

	if code, _, errOut := run(t, nil, "init", dir); code != 1 || !strings.Contains(errOut, "--force") {
		t.Errorf("init over existing files: exit %d %q, want 1 naming --force", code, errOut)
	}
	if again, _ := readSettingsFile(envPath); again["CENTRIFUGO_HMAC_KEY"] != key {
		t.Error("init without --force replaced the secrets")
	}
	if code, _, errOut := run(t, nil, "init", dir, "--force", "--centrifugo-port", strconv.Itoa(port)); code != 0 {
		t.Fatalf("init --force: exit %d: %s", code, errOut)
	}
	if vars, _ = readSettingsFile(envPath); vars["CENTRIFUGO_HMAC_KEY"] == key {
		t.Error("init --force kept the old secrets")
	}

	cent := stacktest.StartCentrifugoWithConfig(t, confPath, port, vars["CENTRIFUGO_API_KEY"], vars["CENTRIFUGO_HMAC_KEY"])
	srv := stacktest.NATS(t)
	vars["NATS_URL"] = srv.ClientURL()
	vars["CENTRIFUGO_HOST"] = "http://127.0.0.1"
	vars["INSTANT_METRICS_ADDR"] = "127.0.0.1:0"
	s := &stack{env: vars, nc: stacktest.Connect(t, srv.ClientURL()), cent: cent}
	if code, _, errOut := run(t, s.env, "channels", "add", "public", "--level", "public"); code != 0 {
		t.Fatalf("channels add: %s", errOut)
	}
	s.startBridge(t)
	stacktest.WaitBridge(t, s.nc)
	sub := cent.Subscribe(t, "alice", "public")
	s.publishN(t, "public", 0, 1)
	if got := sub.Next(t, 30*time.Second); !strings.Contains(string(got.Data), `"data":0`) {
		t.Errorf("subscriber got %s", got.Data)
	}
}

// devStack is a running `instant dev` process.
type devStack struct {
	t     *testing.T
	data  string
	ports devPorts
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process exited
	err   error         // Wait's result, set before done is closed

	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
}

// startDev starts `instant dev` on data and ports and waits for its
// banner.
func startDev(t *testing.T, data string, ports devPorts) *devStack {
	t.Helper()
	d := &devStack{t: t, data: data, ports: ports, done: make(chan struct{})}
	d.cmd = exec.Command(instantBin, "dev", "--data", data, "--centrifugo", stacktest.Binary(t, "centrifugo"),
		"--nats-port", strconv.Itoa(ports.NATS), "--centrifugo-port", strconv.Itoa(ports.Centrifugo),
		"--auth-port", strconv.Itoa(ports.Auth), "--metrics-port", strconv.Itoa(ports.Metrics))
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var copies sync.WaitGroup
	copies.Add(2)
	go d.copy(&copies, &d.stdout, stdout)
	go d.copy(&copies, &d.stderr, stderr)
	go func() {
		copies.Wait()
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("instant dev stdout:\n%s\nstderr:\n%s", d.output(&d.stdout), d.output(&d.stderr))
		}
	})
	d.waitOutput("instant dev is running")
	return d
}

func (d *devStack) copy(wg *sync.WaitGroup, dst *strings.Builder, src io.Reader) {
	defer wg.Done()
	sc := bufio.NewScanner(src)
	for sc.Scan() {
		d.mu.Lock()
		dst.WriteString(sc.Text() + "\n")
		d.mu.Unlock()
	}
}

func (d *devStack) output(b *strings.Builder) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return b.String()
}

// waitOutput waits until stdout holds s, failing if the process exits.
func (d *devStack) waitOutput(s string) {
	d.t.Helper()
	deadline := time.After(90 * time.Second)
	for !strings.Contains(d.output(&d.stdout), s) {
		select {
		case <-d.done:
			d.t.Fatalf("instant dev exited (%v) before printing %q; stderr:\n%s", d.err, s, d.output(&d.stderr))
		case <-deadline:
			d.t.Fatalf("instant dev did not print %q", s)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wait waits for the process to exit and returns its exit status.
func (d *devStack) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		d.t.Fatal("instant dev did not exit")
	}
	return d.cmd.ProcessState.ExitCode()
}

var passwordRE = regexp.MustCompile(`login +demo / ([0-9a-f]+) `)

// password is the demo password of the banner, or "" when it shows none.
func (d *devStack) password() string {
	m := passwordRE.FindStringSubmatch(d.output(&d.stdout))
	if m == nil {
		return ""
	}
	return m[1]
}

// login logs in over HTTP and returns the auth module's answer.
func (d *devStack) login(user, password string) tokensAnswer {
	d.t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/instant/login/", d.ports.Auth)
	resp, err := http.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokensAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("login as %s: %s %v", user, resp.Status, err)
	}
	return a
}

// tokensAnswer is the JSON of a successful login.
type tokensAnswer struct {
	WSToken  string `json:"ws_token"`
	Channels []struct {
		Name, Token string
	} `json:"channels"`
}

func (a tokensAnswer) channels() []stacktest.ChannelToken {
	var out []stacktest.ChannelToken
	for _, c := range a.Channels {
		out = append(out, stacktest.ChannelToken{Channel: c.Name, Token: c.Token})
	}
	return out
}

func (a tokensAnswer) has(channel string) bool {
	for _, c := range a.Channels {
		if c.Name == channel {
			return true
		}
	}
	return false
}

// processesUsing lists the processes whose command line mentions s.
func processesUsing(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no process table to check: %v", err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if cmdline := strings.ReplaceAll(string(b), "\x00", " "); err == nil && strings.Contains(cmdline, s) {
			found = append(found, e.Name()+": "+cmdline)
		}
	}
	return found
}

func freeDevPorts(t *testing.T) devPorts {
	return devPorts{NATS: stacktest.FreePort(t), Centrifugo: stacktest.FreePort(t), Auth: stacktest.FreePort(t), Metrics: stacktest.FreePort(t)}
}

// TestDev runs `instant dev` twice on one data folder: the demo user
// receives a published message; SIGINT leaves no process behind; the
// second run keeps the registry and users; a dead Centrifugo stops the
// stack with a non-zero exit.
func TestDev(t *testing.T) {
	data := t.TempDir()
	ports := freeDevPorts(t)
	d := startDev(t, data, ports)
	password := d.password()
	if password == "" {
		t.Fatalf("no demo password in the banner:\n%s", d.output(&d.stdout))
	}
	for path, want := range map[string]string{"/": "<form", "/instant/static/instant.js": "getToken"} {
		if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", ports.Auth, path)); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, code, want)
		}
	}
	answer := d.login(demoUser, password)
	for _, ch := range []string{"public", "$users", "$staff"} {
		if !answer.has(ch) {
			t.Errorf("demo user lacks %s: %+v", ch, answer.Channels)
		}
	}
	sub := stacktest.SubscribeWithTokens(t, fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", ports.Centrifugo),
		demoUser, answer.WSToken, answer.channels()...)
	natsEnv := map[string]string{"NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", ports.NATS)}
	// The tour's first steps: one message to public, then a request to
	// public, whose reply is the channel's second offset.
	if code, out, errOut := run(t, natsEnv, "publish", "public", "hello from dev"); code != 0 {
		t.Fatalf("publish: exit %d %s %s", code, out, errOut)
	}
	if got := sub.Next(t, 30*time.Second); got.Channel != "public" || !strings.Contains(string(got.Data), "hello from dev") {
		t.Errorf("demo user got %s on %s", got.Data, got.Channel)
	}
	if code, out, errOut := run(t, natsEnv, "publish", "public", "hello", "--wait"); code != 0 || !strings.Contains(out, `"offset":2,`) {
		t.Errorf("publish --wait: exit %d, stdout %q, stderr %q; want the offset the README's tour shows, 2", code, out, errOut)
	}
	if code, _, errOut := run(t, natsEnv, "channels", "add", "news", "--level", "public"); code != 0 {
		t.Fatalf("channels add: %s", errOut)
	}
	if code, _, errOut := run(t, natsEnv, "channels", "add", "team", "--level", "groups", "--groups", "devs"); code != 0 {
		t.Fatalf("channels add: %s", errOut)
	}

	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(); code != 0 {
		t.Errorf("instant dev after SIGINT: exit %d, want 0", code)
	}
	if left := processesUsing(t, data); len(left) > 0 {
		t.Errorf("processes left after SIGINT:\n%s", strings.Join(left, "\n"))
	}

	d = startDev(t, data, ports)
	if p := d.password(); p != "" {
		t.Errorf("second run printed a new demo password %q", p)
	}
	if answer := d.login(demoUser, password); !answer.has("news") {
		t.Errorf("second run lost the channel added in the first: %+v", answer.Channels)
	}
	// The banner lists the registry's channels, not only the defaults.
	if want := "  channels    $staff, $superuser, $team (groups: devs), $users, news, public\n"; !strings.Contains(d.output(&d.stdout), want) {
		t.Errorf("the second run's banner does not list the registry's channels as %q:\n%s", want, d.output(&d.stdout))
	}
	centrifugo := processesUsing(t, filepath.Join(data, centrifugoConfigFile))
	if len(centrifugo) != 1 {
		t.Fatalf("want one Centrifugo process, found %q", centrifugo)
	}
	pid, _ := strconv.Atoi(strings.SplitN(centrifugo[0], ":", 2)[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(); code != 1 || !strings.Contains(d.output(&d.stderr), "centrifugo exited unexpectedly") {
		t.Errorf("after Centrifugo died: exit %d, stderr %q; want 1 naming centrifugo", code, lastLine(d.output(&d.stderr)))
	}
	if left := processesUsing(t, data); len(left) > 0 {
		t.Errorf("processes left after Centrifugo died:\n%s", strings.Join(left, "\n"))
	}
}

// TestDevPortInUse checks the one-line refusal when a port is taken.
func TestDevPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports := freeDevPorts(t)
	ports.Centrifugo = l.Addr().(*net.TCPAddr).Port
	code, _, errOut := run(t, nil, "dev", "--data", t.TempDir(), "--centrifugo", stacktest.Binary(t, "centrifugo"),
		"--nats-port", strconv.Itoa(ports.NATS), "--centrifugo-port", strconv.Itoa(ports.Centrifugo),
		"--auth-port", strconv.Itoa(ports.Auth), "--metrics-port", strconv.Itoa(ports.Metrics))
	want := fmt.Sprintf("instant: dev: port %d is in use", ports.Centrifugo)
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("exit %d, stderr %q; want 2 and one line starting %q", code, errOut, want)
	}
}

// TestDevInstallation checks the secrets of a data folder: created once,
// kept on later runs, and created next to a Centrifugo config left by an
// older version.
func TestSourceablePath(t *testing.T) {
	for in, want := range map[string]string{"instant.env": "./instant.env", "conf/instant.env": "conf/instant.env", "/etc/instant.env": "/etc/instant.env"} {
		if got := sourceablePath(in); got != want {
			t.Errorf("sourceablePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDevInstallation(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, centrifugoConfigFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := devPorts{NATS: 4222, Centrifugo: 8000, Auth: 8001, Metrics: 8002}
	first, err := devInstallation(dir, ports)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	ports.Centrifugo = 9000
	again, err := devInstallation(dir, ports)
	if err != nil || again.APIKey != first.APIKey || again.HMACKey != first.HMACKey {
		t.Fatalf("second run: %v; secrets kept: %t", err, again.APIKey == first.APIKey && again.HMACKey == first.HMACKey)
	}
	conf, err := os.ReadFile(filepath.Join(dir, centrifugoConfigFile))
	if err != nil || !strings.Contains(string(conf), `"port": 9000`) || !strings.Contains(string(conf), first.HMACKey) {
		t.Errorf("Centrifugo config not rewritten for the new port and the kept secrets (%v):\n%s", err, conf)
	}
}

// TestDevCentrifugoFailsAtStart checks that a Centrifugo that exits at
// once stops instant dev with one line naming it.
func TestDevCentrifugoFailsAtStart(t *testing.T) {
	falseBin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false command")
	}
	ports := freeDevPorts(t)
	code, out, errOut := run(t, nil, "dev", "--data", t.TempDir(), "--centrifugo", falseBin,
		"--nats-port", strconv.Itoa(ports.NATS), "--centrifugo-port", strconv.Itoa(ports.Centrifugo),
		"--auth-port", strconv.Itoa(ports.Auth), "--metrics-port", strconv.Itoa(ports.Metrics))
	if code != 1 || !strings.Contains(lastLine(errOut), "false exited") || strings.Contains(out, "is running") {
		t.Errorf("exit %d, stderr %q, stdout %q; want 1, one line naming the dead child, no banner", code, errOut, out)
	}
}
