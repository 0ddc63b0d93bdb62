package web_test

// End-to-end test of the operator console in headless Chromium, on the
// stack of browser_test.go with the admin API turned on.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/web"
)

// consoleAdmin returns the admin API's dependencies on the stack's
// stores, and has the bridge record metrics that the console reads from
// a /metrics page, as instant serve does.
func (s *stack) consoleAdmin(reg *registry.Store, api *centrifugo.Client) *auth.Admin {
	promReg := prometheus.NewRegistry()
	s.bridgeMetrics = bridge.NewMetrics(promReg)
	page := httptest.NewServer(promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	s.t.Cleanup(page.Close)
	return &auth.Admin{
		Registry: reg, Users: s.users, Stats: api,
		DeadLetters: &auth.JetStreamDeadLetters{JS: s.js, Conn: s.nc},
		Traffic:     &auth.BridgeMetrics{URL: page.URL + "/metrics"},
	}
}

// mountConsole serves the console next to the demo.
func (s *stack) mountConsole(mux *http.ServeMux) {
	console, err := web.Console(web.ConsoleConfig{WebsocketURL: s.cent.WSURL})
	if err != nil {
		s.t.Fatal(err)
	}
	mux.Handle(web.ConsolePrefix, console)
}

// xssBody is a message that runs a script if it is ever rendered as HTML
// (and the CSP let it).
const xssBody = `<img src=x onerror="window.xssRan=true"><script>window.xssRan=true</script>`

// rawEnvelope is an envelope whose message is text as it is, without
// the HTML escaping of encoding/json.
func rawEnvelope(text string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"message": text}) // a map of strings always encodes
	return bytes.TrimSpace(b.Bytes())
}

// tab opens another page in its own browser context (its own cookies) of
// p's browser at path.
func (s *stack) tab(p *page, path string) *page {
	s.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithNewBrowserContext())
	s.t.Cleanup(cancel)
	q := &page{t: s.t, ctx: ctx}
	_ = chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			s.t.Logf("%s: exception: %s", path, e.ExceptionDetails.Text+" "+e.ExceptionDetails.Exception.Description)
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				s.t.Logf("%s: console.%s: %s %s", path, e.Type, a.Value, a.Description)
			}
		}
	})
	q.do("open "+path, chromedp.Navigate(s.url+path))
	s.t.Cleanup(func() { q.shot("end-" + strings.Trim(strings.ReplaceAll(path, "/", "-"), "-")) })
	return q
}

// loginAs logs in through the form of the demo or the console.
func (p *page) loginAs(user, pw, waitFor string) {
	p.t.Helper()
	p.do("log in as "+user,
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(waitFor)),
	)
}

// text returns the text of the first element matching the CSS selector.
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, `(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`)
}

// waitText waits until the element matching sel contains want.
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	p.waitFor(sel+" showing "+want, func() bool { return strings.Contains(p.text(sel), want) })
}

// adminStatus calls an admin endpoint from the page, as its scripts
// could, and returns the status.
func (p *page) adminStatus(method, path, body string) int {
	p.t.Helper()
	js := `(async () => {
		const c = document.cookie.split("; ").find((c) => c.startsWith("instant_csrftoken="));
		const headers = {"Content-Type": "application/json"};
		if (c) headers["X-CSRFToken"] = decodeURIComponent(c.split("=")[1]);
		const init = {method: ` + jsString(method) + `, headers, credentials: "same-origin"};
		if (init.method === "POST") init.body = ` + jsString(body) + `;
		const r = await fetch(` + jsString(path) + `, init);
		const text = await r.text();
		return text === "" ? r.status : -r.status;
	})()`
	return eval[int](p, js, chromedp.EvalAwaitPromise)
}

// shot saves a screenshot to artifacts/console-<name>.png.
func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	dir := filepath.Join(stacktest.RepoRoot(p.t), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		err = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
		if err != nil {
			p.t.Logf("screenshot: %v", err)
		}
	}
}

func TestConsole(t *testing.T) {
	s := startStackWith(t, stackConfig{ttl: 10 * time.Minute, encoding: instant.EncodingObject, console: true})
	if err := s.users.Add(t.Context(), instant.User{Identity: instant.Identity{Username: "root", Superuser: true}}, password); err != nil {
		t.Fatal(err)
	}
	first := s.openPage() // the browser; alice uses this page later

	// The superuser logs in to the console.
	root := s.tab(first, web.ConsolePrefix)
	root.loginAs("root", password, `#channel-rows tr[data-name="public"]`)

	// Adds the channel news at level users: the naming rule shows $news as
	// the name is typed.
	root.do("type a channel",
		chromedp.SetValue(chromedp.ID("channel-level"), "users"),
		chromedp.SendKeys(chromedp.ID("channel-name"), "news"),
	)
	root.waitText("#channel-preview", "Registered as $news")
	root.do("save the channel",
		chromedp.Click(chromedp.CSS(`#channel-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#channel-rows tr[data-name="$news"]`)),
	)
	root.waitText("#channel-result", "Added $news")
	root.shot("channels")

	// Adds the user bob and reads the password shown once.
	root.do("add bob",
		chromedp.Click(chromedp.CSS(`[data-tab="users"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#user-rows tr[data-name="root"]`)),
		chromedp.SendKeys(chromedp.ID("user-name"), "bob"),
		chromedp.Click(chromedp.ID("user-submit")),
		chromedp.WaitVisible(chromedp.ID("new-password")),
		chromedp.WaitVisible(chromedp.CSS(`#user-rows tr[data-name="bob"]`)),
	)
	bobPassword := root.text("#new-password")
	if len(bobPassword) < 20 {
		t.Fatalf("bob's password shown: %q", bobPassword)
	}
	root.shot("users")

	// bob logs in on the demo page, sees no console link, and receives a
	// message on the new channel.
	bob := s.tab(first, "/")
	bob.loginAs("bob", bobPassword, "#logout")
	bob.waitState("connected")
	bob.waitText("#channels", "$news")
	if eval[bool](bob, `!document.getElementById("console-link").hidden`) {
		t.Error("bob, a plain user, sees the console link")
	}
	s.publish("$news", "news-1", "hello news")
	bob.waitShown("hello news")

	// An envelope to a missing channel is dead-lettered as unknown_channel
	// and shown as text.
	if _, err := s.js.Publish(t.Context(), "instant.publish.late", rawEnvelope(xssBody), jetstream.WithMsgID("late-1")); err != nil {
		t.Fatal(err)
	}
	root.do("open the dead letters", chromedp.Click(chromedp.CSS(`[data-tab="dead"]`)))
	root.do("filter by code", chromedp.SetValue(chromedp.ID("dead-code"), "unknown_channel"))
	root.waitFor("the dead letter", func() bool {
		root.do("refresh", chromedp.Click(chromedp.CSS(`#dead-filter button[type="submit"]`)))
		return strings.Contains(root.text("#dead-rows"), "late")
	})
	if got := root.text("#dead-rows .code"); got != "unknown_channel" {
		t.Errorf("dead letter code %q, want unknown_channel", got)
	}
	if got := root.text("#dead-rows .body"); got != string(rawEnvelope(xssBody)) {
		t.Errorf("dead letter body %q, want the envelope as text", got)
	}
	root.shot("dead-letters")

	// The superuser creates the channel (public: bob sees it once he
	// fetches his channels again), and re-publishes the dead letter.
	root.do("create late",
		chromedp.Click(chromedp.CSS(`[data-tab="channels"]`)),
		chromedp.WaitVisible(chromedp.ID("channel-form")),
		chromedp.SetValue(chromedp.ID("channel-level"), "public"),
		chromedp.SendKeys(chromedp.ID("channel-name"), "late"),
	)
	root.waitText("#channel-preview", "Registered as late")
	root.do("save late",
		chromedp.Click(chromedp.CSS(`#channel-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#channel-rows tr[data-name="late"]`)),
	)
	bob.do("reload the demo", chromedp.Reload())
	bob.waitState("connected")
	bob.waitText("#channels", "late")
	root.do("reload the console", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#channel-rows tr[data-name="late"]`)))
	root.do("tail late",
		chromedp.Click(chromedp.CSS(`[data-tab="traffic"]`)),
		chromedp.WaitReady(chromedp.CSS(`#tail-channel option[value="late"]`)),
		chromedp.SetValue(chromedp.ID("tail-channel"), "late"),
	)
	root.do("select the dead letter",
		chromedp.Click(chromedp.CSS(`[data-tab="dead"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#dead-rows input[type="checkbox"]`)),
		chromedp.Click(chromedp.CSS(`#dead-rows input[type="checkbox"]`)),
		chromedp.Click(chromedp.ID("dead-republish")),
	)
	root.waitText("#dead-result", "Published 1 of 1 again")
	bob.waitShown(xssBody)
	// A second re-publish of the same dead letter is a duplicate.
	code := root.text("#dead-rows tr[data-seq] .code") // rendered again after the re-publish
	if code != "unknown_channel" {
		t.Fatalf("the dead letter is no longer listed: %q", code)
	}
	body := `{"seqs":[` + eval[string](root, `document.querySelector("#dead-rows tr[data-seq]").dataset.seq`) + `]}`
	if got := root.adminStatus("POST", auth.PathAdminDeadRepublish, body); got != -http.StatusOK {
		t.Errorf("re-publish again: status %d, want 200 with a body", got)
	}
	s.publish("late", "late-after", "after the re-publish")
	bob.waitShown("after the re-publish")
	if n := bob.count(xssBody); n != 1 {
		t.Errorf("bob received the re-published envelope %d times, want once", n)
	}

	// The live tail shows the traffic of late as text, and the chart
	// draws the bridge's counters.
	root.do("open the live traffic", chromedp.Click(chromedp.CSS(`[data-tab="traffic"]`)),
		chromedp.SetValue(chromedp.ID("tail-channel"), "late"))
	s.publish("late", "late-tail", xssBody+" again")
	root.waitText("#tail", xssBody+" again")
	root.waitFor("the chart", func() bool {
		return eval[bool](root, `!!document.querySelector("#chart canvas") && document.getElementById("chart-note").textContent.includes("relayed")`)
	})
	for i := range 3 {
		s.publish("late", fmt.Sprintf("late-chart-%d", i), fmt.Sprintf("chart %d", i))
	}
	root.waitFor("rates on the chart", func() bool {
		return eval[int](root, `Number(document.getElementById("chart").dataset.points || 0)`) >= 3
	})
	root.shot("traffic")

	for _, p := range []*page{root, bob} {
		if eval[bool](p, `window.xssRan === true || document.querySelector("#dead-rows img, #tail img, #feed img") !== null`) {
			t.Error("an envelope was rendered as HTML")
		}
	}

	// Staff sees the channels but no edit buttons, and the API refuses
	// edits.
	sam := s.tab(first, "/")
	sam.loginAs("sam", password, "#logout")
	sam.do("follow the console link",
		chromedp.WaitVisible(chromedp.ID("console-link")),
		chromedp.Click(chromedp.CSS("#console-link a")),
		chromedp.WaitVisible(chromedp.CSS(`#channel-rows tr[data-name="$news"]`)),
	)
	if eval[bool](sam, `document.querySelectorAll("#channel-rows button").length > 0 || !document.getElementById("channel-form").hidden || !document.querySelector('[data-tab="users"]').hidden`) {
		t.Error("staff sees edit buttons, the channel form or the users")
	}
	for _, e := range []struct{ method, path, body string }{
		{"POST", auth.PathAdminChannels, `{"name":"x","level":"public"}`},
		{"POST", auth.PathAdminChannelRemove, `{"name":"$news"}`},
		{"GET", auth.PathAdminUsers, ""},
		{"POST", auth.PathAdminDeadPurge, `{"confirm":true}`},
	} {
		if got := sam.adminStatus(e.method, e.path, e.body); got != http.StatusForbidden {
			t.Errorf("staff %s %s: status %d, want 403 with an empty body", e.method, e.path, got)
		}
	}
	sam.shot("staff")

	// A plain user gets 403 everywhere and sees no console link.
	alice := first
	alice.login("alice")
	alice.waitState("connected")
	if eval[bool](alice, `!document.getElementById("console-link").hidden`) {
		t.Error("alice, a plain user, sees the console link")
	}
	for _, e := range []struct{ method, path, body string }{
		{"GET", auth.PathAdminMe, ""}, {"GET", auth.PathAdminChannels, ""}, {"GET", auth.PathAdminChannelName + "?name=a&level=users", ""},
		{"POST", auth.PathAdminChannels, `{"name":"x","level":"public"}`}, {"POST", auth.PathAdminChannelRemove, `{"name":"$news"}`},
		{"GET", auth.PathAdminUsers, ""}, {"POST", auth.PathAdminUsers, `{"username":"eve"}`},
		{"POST", auth.PathAdminUserUpdate, `{"username":"alice","superuser":true}`}, {"POST", auth.PathAdminUserPassword, `{"username":"root"}`},
		{"POST", auth.PathAdminUserRemove, `{"username":"root"}`}, {"GET", auth.PathAdminDead, ""},
		{"POST", auth.PathAdminDeadRepublish, `{"seqs":[1]}`}, {"POST", auth.PathAdminDeadPurge, `{"confirm":true}`},
		{"GET", auth.PathAdminTraffic, ""},
	} {
		if got := alice.adminStatus(e.method, e.path, e.body); got != http.StatusForbidden {
			t.Errorf("plain user %s %s: status %d, want 403 with an empty body", e.method, e.path, got)
		}
	}
	alice.do("open the console", chromedp.Navigate(s.url+web.ConsolePrefix))
	alice.waitText("#notice", "may not use the console")
}

// serve answers one request of h.
func serve(h http.Handler, method, path string) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w.Result()
}

func TestConsoleHandler(t *testing.T) {
	if _, err := web.Console(web.ConsoleConfig{WebsocketURL: "http://x/connection/websocket"}); err == nil {
		t.Error("Console accepted an http:// websocket URL")
	}
	h, err := web.Console(web.ConsoleConfig{WebsocketURL: "wss://rt.example/connection/websocket"})
	if err != nil {
		t.Fatal(err)
	}
	page := serve(h, "GET", web.ConsolePrefix)
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self' wss://rt.example;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	raw, _ := io.ReadAll(page.Body)
	if got := string(raw); !strings.Contains(got, `content="wss://rt.example/connection/websocket"`) || strings.Contains(got, "<script>") || strings.Contains(got, "style=") {
		t.Errorf("page: inline script or style, or no websocket URL:\n%s", got)
	}
	for path, ctype := range map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"} {
		resp := serve(h, "GET", web.ConsolePrefix+path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{web.ConsolePrefix + "index.html", web.ConsolePrefix + "../web.go", web.ConsolePrefix + "MANIFEST"} {
		if resp := serve(h, "GET", path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp := serve(h, "POST", web.ConsolePrefix); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}
