package deploy_test

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// units are the systemd units of systemd/ with their environment files.
var units = []struct{ unit, command, envFile string }{
	{"instant-bridge.service", "bridge", "bridge.env.example"},
	{"instant-auth.service", "auth", "auth.env.example"},
}

// TestSystemdUnitsVerify runs systemd-analyze verify and the offline
// security analysis on a copy of each unit whose ExecStart is the
// instant binary built from this tree and whose EnvironmentFile is the
// example.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; the units are checked by TestSystemdUnitsSettings only")
	}
	bin := instantBinary(t)
	dir := t.TempDir()
	for _, u := range units {
		abs, err := filepath.Abs(filepath.Join("systemd", u.envFile))
		if err != nil {
			t.Fatal(err)
		}
		unit := replaceEach(t, readFile(t, filepath.Join("systemd", u.unit)), 1,
			"ExecStart=/usr/local/bin/instant ", "ExecStart="+bin+" ",
			"EnvironmentFile=/etc/instant/"+strings.TrimSuffix(u.envFile, ".example"), "EnvironmentFile="+abs)
		path := filepath.Join(dir, u.unit)
		writeFile(t, path, unit)

		// verify exits 0 on mere warnings (unknown keys, …): any output
		// fails the test.
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u.unit, err, out)
		}
		// Exposure 0 (locked down) to 10 (unprotected), shown rounded;
		// --threshold takes tenths: 20 fails anything above 2.0 ("OK").
		if out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", path).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze security %s above 2: %v\n%s", u.unit, err, lastLines(string(out), 3))
		}
	}

	// A typo makes verify speak, so the check means something.
	bad := filepath.Join(dir, "bad.service")
	writeFile(t, bad, replaceEach(t, readFile(t, filepath.Join(dir, units[0].unit)), 1, "NoNewPrivileges=yes", "NoNewPrivilege=yes"))
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); len(out) == 0 {
		t.Errorf("systemd-analyze verify was silent on an unknown key")
	}
}

// TestSystemdUnitsSettings checks what systemd cannot know: the unit runs
// the right command, restarts on failure but not on a configuration
// error, and leaves the graceful shutdown time to finish.
func TestSystemdUnitsSettings(t *testing.T) {
	for _, u := range units {
		t.Run(u.unit, func(t *testing.T) {
			service := unitSection(t, filepath.Join("systemd", u.unit), "Service")
			// The behaviour and the hardening the README promises; the
			// security analysis above weighs the rest.
			want := map[string]string{
				"ExecStart":                "/usr/local/bin/instant " + u.command,
				"EnvironmentFile":          "/etc/instant/" + strings.TrimSuffix(u.envFile, ".example"),
				"Restart":                  "on-failure",
				"RestartPreventExitStatus": "2",
				"KillSignal":               "SIGTERM",
				"DynamicUser":              "yes",
				"NoNewPrivileges":          "yes",
				"CapabilityBoundingSet":    "",
				"ProtectSystem":            "strict",
				"ProtectHome":              "yes",
				"PrivateTmp":               "yes",
				"PrivateDevices":           "yes",
				"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
				"SystemCallFilter":         "@system-service",
				"MemoryDenyWriteExecute":   "yes",
				"LockPersonality":          "yes",
				"MemoryMax":                "256M",
				"TasksMax":                 "256",
			}
			for k, v := range want {
				if got := service[k]; len(got) == 0 || got[0] != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			stopSec := service["TimeoutStopSec"]
			if len(stopSec) == 0 {
				t.Fatal("TimeoutStopSec missing: systemd's default (90s) says nothing of the graceful shutdown")
			}
			stop, err := time.ParseDuration(stopSec[len(stopSec)-1])
			if err != nil {
				t.Fatalf("TimeoutStopSec: %v", err)
			}
			shutdown := 10 * time.Second // INSTANT_SHUTDOWN_TIMEOUT's default
			if v, ok := parseEnvFile(t, filepath.Join("systemd", u.envFile))["INSTANT_SHUTDOWN_TIMEOUT"]; ok {
				if shutdown, err = time.ParseDuration(v); err != nil {
					t.Fatalf("INSTANT_SHUTDOWN_TIMEOUT: %v", err)
				}
			}
			if stop <= shutdown {
				t.Errorf("TimeoutStopSec %v is not above INSTANT_SHUTDOWN_TIMEOUT %v", stop, shutdown)
			}
		})
	}
}

// unitSection returns the settings of one section of a unit file, each
// key with its values in order.
func unitSection(t *testing.T, path, section string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	current := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			current = strings.Trim(line, "[]")
		case current == section:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not KEY=VALUE", path, line)
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

// parseEnvFile reads KEY=VALUE lines, skipping blank lines and comments.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(readFile(t, path), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		out[k] = v
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
