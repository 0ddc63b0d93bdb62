// Package web serves instant's browser client and its demo page.
//
// The client (src/, an ES module on the centrifuge npm package) is bundled
// into dist/ by `make web`; dist/ is committed and embedded here, so `go
// build` needs no Node.js. dist/MANIFEST records the SHA-256 of every
// input and output of the build, and the package's tests fail when the
// committed bundle no longer matches its sources.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// StaticPrefix is where Static expects to be mounted.
const StaticPrefix = "/instant/static/"

var (
	//go:embed dist/instant.js dist/instant.d.ts dist/LICENSES.txt
	distFS embed.FS
	//go:embed demo/index.html demo/demo.js demo/demo.css
	demoFS embed.FS
)

// file is one response body with its headers.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// newFile returns a file of body, typed by name's extension.
func newFile(name string, body []byte) file {
	sum := sha256.Sum256(body)
	ctype := "text/plain; charset=utf-8" // .txt, .d.ts
	switch path.Ext(name) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	}
	return file{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// files serves a fixed set of files by URL path (GET and HEAD), with a
// strong ETag and Cache-Control: no-cache, so browsers revalidate and get
// 304 Not Modified while a file is unchanged.
type files struct {
	byPath map[string]file
	header http.Header // added to every response
}

func (h files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := h.byPath[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	for k, v := range h.header {
		hd[k] = slices.Clone(v)
	}
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// readFiles reads names from fsys into a map keyed by prefix + base name.
func readFiles(fsys fs.FS, prefix string, names ...string) map[string]file {
	m := make(map[string]file, len(names))
	for _, name := range names {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(fmt.Sprintf("web: embedded %s: %v", name, err)) // the embed patterns guarantee it
		}
		m[prefix+path.Base(name)] = newFile(name, body)
	}
	return m
}

// Static returns the handler of the client files, to mount at
// StaticPrefix: instant.js (the client bundled with centrifuge-js, one ES
// module), instant.d.ts (its types) and LICENSES.txt (the licences of the
// bundled packages). It answers GET and HEAD, 405 to other methods and 404
// to other paths. The files are public: responses allow any origin
// (Access-Control-Allow-Origin: *), so pages of other origins can import
// the module. Safe for concurrent use.
func Static() http.Handler {
	return files{
		byPath: readFiles(distFS, StaticPrefix, "dist/instant.js", "dist/instant.d.ts", "dist/LICENSES.txt"),
		header: http.Header{"Access-Control-Allow-Origin": {"*"}},
	}
}

// DemoConfig configures the demo page.
type DemoConfig struct {
	// WebsocketURL is Centrifugo's websocket endpoint as the browser
	// reaches it, e.g. "ws://127.0.0.1:8000/connection/websocket".
	// Empty: /connection/websocket on the page's own origin.
	WebsocketURL string
}

// Demo returns the handler of the demo page, to mount at "/" next to the
// auth endpoints and Static (the page calls them on its own origin): "/"
// is the page, "/demo.js" and "/demo.css" its script and style; other
// paths are 404. The page loads nothing from elsewhere: its
// Content-Security-Policy allows only its own origin and the websocket
// origin. It fails when WebsocketURL is not a ws:// or wss:// URL. Safe
// for concurrent use.
func Demo(cfg DemoConfig) (http.Handler, error) {
	wsOrigin, err := websocketOrigin(cfg.WebsocketURL)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(demoFS, "demo/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: demo page: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, cfg); err != nil {
		return nil, fmt.Errorf("web: demo page: %w", err)
	}
	byPath := readFiles(demoFS, "/", "demo/demo.js", "demo/demo.css")
	byPath["/"] = newFile("index.html", page.Bytes())
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + strings.TrimSpace("'self' "+wsOrigin) + "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return files{byPath: byPath, header: http.Header{
		"Content-Security-Policy": {csp},
		"Referrer-Policy":         {"same-origin"},
	}}, nil
}

// websocketOrigin returns the origin of a ws:// or wss:// URL, or "" for
// an empty one.
func websocketOrigin(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("web: WebsocketURL %q is not a ws:// or wss:// URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
