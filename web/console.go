package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// ConsolePrefix is where Console expects to be mounted.
const ConsolePrefix = "/instant/console/"

var (
	//go:embed dist/console.js dist/console.css
	consoleDistFS embed.FS
	//go:embed console/index.html
	consolePageFS embed.FS
)

// ConsoleConfig configures the operator console.
type ConsoleConfig struct {
	// WebsocketURL is Centrifugo's websocket endpoint as the browser
	// reaches it, for the live tail. Empty: /connection/websocket on the
	// page's own origin.
	WebsocketURL string
}

// Console returns the handler of the operator console, to mount at
// ConsolePrefix next to the auth endpoints (it calls the admin API of
// package auth and the browser client's endpoints on its own origin):
// ConsolePrefix is the page, console.js (bundled with the browser client
// and uPlot) and console.css its script and style. The page loads nothing
// from elsewhere: its Content-Security-Policy allows only its own origin
// and the websocket origin, no inline script or style. It fails when
// WebsocketURL is not a ws:// or wss:// URL. Safe for concurrent use.
func Console(cfg ConsoleConfig) (http.Handler, error) {
	wsOrigin, err := websocketOrigin(cfg.WebsocketURL)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFS(consolePageFS, "console/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: console page: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, cfg); err != nil {
		return nil, fmt.Errorf("web: console page: %w", err)
	}
	byPath := readFiles(consoleDistFS, ConsolePrefix, "dist/console.js", "dist/console.css")
	byPath[ConsolePrefix] = newFile("index.html", page.Bytes())
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + strings.TrimSpace("'self' "+wsOrigin) + "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return files{byPath: byPath, header: http.Header{
		"Content-Security-Policy": {csp},
		"Referrer-Policy":         {"same-origin"},
		"X-Frame-Options":         {"DENY"},
	}}, nil
}
