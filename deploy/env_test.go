package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/instanthq/instant/internal/stacktest"
)

// settingName matches the names of instant's environment settings.
var settingName = regexp.MustCompile(`\b(INSTANT_[A-Z0-9_]+|CENTRIFUGO_[A-Z0-9_]+|NATS_[A-Z]+|SITE_NAME)\b`)

// notSettings look like settings but name something else in the deploy
// files: the bridge's dead-letter stream, named in NATS permissions.
var notSettings = []string{"INSTANT_DEAD"}

// TestDeployFilesUseKnownSettings checks that every setting name in the
// deploy files is one instant reads: a misspelt variable would be ignored
// silently by the program.
func TestDeployFilesUseKnownSettings(t *testing.T) {
	known := knownSettings(t)
	for _, want := range []string{"NATS_URL", "SITE_NAME", "CENTRIFUGO_API_KEY", "CENTRIFUGO_HMAC_KEY", "INSTANT_SHUTDOWN_TIMEOUT"} {
		if !known[want] {
			t.Fatalf("%s not found among the names cmd/instant reads (%v): the extraction is broken", want, known)
		}
	}
	used := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") {
			return err
		}
		for _, name := range settingName.FindAllString(readFile(t, path), -1) {
			used++
			if !known[name] && !slices.Contains(notSettings, name) {
				t.Errorf("%s: %s is not a setting of cmd/instant", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if used == 0 {
		t.Fatal("no setting names found in the deploy files")
	}
}

// knownSettings returns the setting names cmd/instant reads: the string
// literals of its non-test sources that have a setting's shape.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	dir := filepath.Join(stacktest.RepoRoot(t), "cmd", "instant")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && settingName.FindString(s) == s && s != "" {
					known[s] = true
				}
			}
			return true
		})
	}
	return known
}

// TestEnvironmentExamplesHoldPlaceholders keeps real-looking secrets out
// of the systemd environment examples.
func TestEnvironmentExamplesHoldPlaceholders(t *testing.T) {
	for _, u := range units {
		env := parseEnvFile(t, filepath.Join("systemd", u.envFile))
		for _, k := range []string{"NATS_URL", "CENTRIFUGO_API_KEY", "CENTRIFUGO_HMAC_KEY", "INSTANT_IDENTITY_KEY"} {
			if v, ok := env[k]; ok && v != "" && !strings.Contains(v, "change-me") {
				t.Errorf("%s: %s = %q is not a change-me placeholder", u.envFile, k, v)
			}
		}
		for _, k := range []string{"NATS_URL", "CENTRIFUGO_API_KEY"} {
			if env[k] == "" {
				t.Errorf("%s: %s missing", u.envFile, k)
			}
		}
	}
}

// TestAuthBehindProxySettings checks the settings of auth where it runs
// behind a proxy that terminates TLS (the Kubernetes Ingress, the site's
// reverse proxy for systemd): Secure cookies and the client address from
// the proxy's header. docker-compose.yaml publishes auth directly over
// plain HTTP, so it must set neither.
func TestAuthBehindProxySettings(t *testing.T) {
	want := map[string]string{"INSTANT_SECURE_COOKIES": "true", "INSTANT_CLIENT_IP_HEADER": "X-Forwarded-For"}
	got := map[string]map[string]string{"systemd/auth.env.example": parseEnvFile(t, filepath.Join("systemd", "auth.env.example"))}
	m := loadManifests(t)
	for _, d := range m.deployments {
		if c := d.Spec.Template.Spec.Containers[0]; slices.Equal(c.Args, []string{"auth"}) {
			got["kubernetes "+d.Name] = m.containerEnv(t, c)
		}
	}
	if len(got) != 2 {
		t.Fatalf("found auth's settings in %d places, want the systemd example and the Kubernetes Deployment", len(got))
	}
	for where, env := range got {
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s = %q, want %q", where, k, env[k], v)
			}
		}
		// The header only from the proxy: anyone else could forge it.
		if env["INSTANT_TRUSTED_PROXIES"] == "" {
			t.Errorf("%s: INSTANT_CLIENT_IP_HEADER without INSTANT_TRUSTED_PROXIES", where)
		}
	}
	for k := range want {
		if v, ok := loadCompose(t).Services["auth"].Environment[k]; ok {
			t.Errorf("%s auth: %s = %q, but no proxy fronts auth there", composeFile, k, v)
		}
	}
}
