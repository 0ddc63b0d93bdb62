package web

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// manifest reads dist/MANIFEST: path → SHA-256.
func manifest(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("MANIFEST line %q is not \"sha256  path\"", sc.Text())
		}
		m[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestBundleMatchesSources fails when the committed dist/ was not rebuilt
// after a change of the sources, the lockfile or the build script (run
// `make web`), or was edited by hand.
func TestBundleMatchesSources(t *testing.T) {
	m := manifest(t, "dist")
	sources, err := filepath.Glob("src/*")
	if err != nil {
		t.Fatal(err)
	}
	console, err := filepath.Glob("console/*")
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"build.mjs", "package-lock.json", "dist/instant.js", "dist/instant.d.ts",
		"dist/console.js", "dist/console.css", "dist/LICENSES.txt"}, append(sources, console...)...)
	for _, name := range want {
		sum, ok := m[name]
		switch {
		case !ok:
			t.Errorf("%s is not in dist/MANIFEST: run make web", name)
		case sum != sha256File(t, name):
			t.Errorf("%s changed since dist/ was built: run make web", name)
		}
	}
	if len(m) != len(want) {
		t.Errorf("dist/MANIFEST lists %d files, want %d (%v): run make web", len(m), len(want), want)
	}
}

// TestBuildReproducible rebuilds the bundle into a temporary directory
// and compares it with the committed one. It needs the npm packages
// (make web installs them).
func TestBuildReproducible(t *testing.T) {
	if _, err := os.Stat("node_modules/esbuild"); err != nil {
		t.Skip("web/node_modules is not installed (make web installs it)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command(node, "build.mjs", dir).CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, out)
	}
	for _, name := range []string{"instant.js", "instant.d.ts", "console.js", "console.css", "LICENSES.txt", "MANIFEST"} {
		if got, want := sha256File(t, filepath.Join(dir, name)), sha256File(t, filepath.Join("dist", name)); got != want {
			t.Errorf("a fresh build of %s differs from dist/%s: run make web", name, name)
		}
	}
}

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStatic(t *testing.T) {
	h := Static()
	dist, err := os.ReadFile("dist/instant.js")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, ctype string
	}{
		{"/instant/static/instant.js", "text/javascript; charset=utf-8"},
		{"/instant/static/instant.d.ts", "text/plain; charset=utf-8"},
		{"/instant/static/LICENSES.txt", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := get(t, h, "GET", tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", got)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
				t.Errorf("ETag %q, Cache-Control %q: want an ETag and no-cache", etag, resp.Header.Get("Cache-Control"))
			}
			if again := get(t, h, "GET", tt.path, http.Header{"If-None-Match": {etag}}); again.StatusCode != http.StatusNotModified {
				t.Errorf("with If-None-Match: status %d, want 304", again.StatusCode)
			}
		})
	}
	if got := body(t, get(t, h, "GET", "/instant/static/instant.js", nil)); got != string(dist) {
		t.Error("instant.js is not dist/instant.js")
	}
	if got := body(t, get(t, h, "GET", "/instant/static/LICENSES.txt", nil)); !strings.Contains(got, "centrifuge") {
		t.Error("LICENSES.txt does not name centrifuge")
	}
	for _, path := range []string{"/instant/static/", "/instant/static/MANIFEST", "/instant/static/../web.go", "/instant.js"} {
		if resp := get(t, h, "GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
	resp := get(t, h, "POST", "/instant/static/instant.js", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d Allow %q, want 405 and GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp := get(t, h, "HEAD", "/instant/static/instant.js", nil); resp.StatusCode != http.StatusOK || body(t, resp) != "" {
		t.Errorf("HEAD: status %d, want 200 without a body", resp.StatusCode)
	}
}

func TestDemo(t *testing.T) {
	const ws = "ws://127.0.0.1:8000/connection/websocket"
	h, err := Demo(DemoConfig{WebsocketURL: ws})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, h, "GET", "/", nil)
	page := body(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(page, `<meta name="instant-websocket-url" content="`+ws+`">`) {
		t.Errorf("the page does not carry the websocket URL:\n%s", page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self' ws://127.0.0.1:8000;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for _, path := range []string{"/demo.js", "/demo.css"} {
		if resp := get(t, h, "GET", path, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: status %d, want 200 with the policy", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/index.html", "/favicon.ico", "/instant/static/instant.js"} {
		if resp := get(t, h, "GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
	// The template escapes the URL; nothing the page loads is external.
	for _, external := range []string{"http://", "https://", "//"} {
		if bytes.Contains([]byte(strings.ReplaceAll(page, ws, "")), []byte(`"`+external)) {
			t.Errorf("the page references %s…", external)
		}
	}
}

func TestDemoWebsocketURL(t *testing.T) {
	h, err := Demo(DemoConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if csp := get(t, h, "GET", "/", nil).Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self';") {
		t.Errorf("without a websocket URL: Content-Security-Policy %q, want connect-src 'self' only", csp)
	}
	for _, bad := range []string{"http://127.0.0.1:8000/connection/websocket", "ws://", "::"} {
		if _, err := Demo(DemoConfig{WebsocketURL: bad}); err == nil {
			t.Errorf("WebsocketURL %q accepted", bad)
		}
	}
}
