package web_test

// End-to-end tests of the demo page in headless Chromium: the real NATS
// server (in-process), the real Centrifugo binary, the bridge and the auth
// server in this process, and the page served like instant dev serves it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
	"github.com/instanthq/instant/web"
)

// deadline bounds every wait on the page: generous, for a loaded machine.
const deadline = time.Minute

const password = "correct horse battery staple"

var (
	browserChannels = []instant.Channel{
		{Name: "public", Level: instant.LevelPublic, Active: true},
		{Name: "$users", Level: instant.LevelUsers, Active: true},
		{Name: "$staff", Level: instant.LevelStaff, Active: true},
	}
	browserUsers = []instant.User{{Identity: instant.Identity{Username: "alice"}}, {Identity: instant.Identity{Username: "sam", Staff: true}}}
)

// stack is the whole of instant on loopback, with the demo page.
type stack struct {
	t     *testing.T
	nc    *nats.Conn
	js    jetstream.JetStream
	cent  *stacktest.Centrifugo
	users *users.Store
	url   string // the page's origin: auth endpoints, static files, demo
	// bridgeMetrics are the bridge's, when the console reads them.
	bridgeMetrics *bridge.Metrics

	getTokens  atomic.Int64 // POSTs to get_token
	subscribes atomic.Int64 // POSTs to subscribe

	bearerGetTokens  atomic.Int64 // POSTs to get_token with a Bearer token
	bearerSubscribes atomic.Int64 // POSTs to subscribe with a Bearer token

	mu      sync.Mutex
	bearers map[string]int // how often each Bearer token was presented
	posts   []post         // every POST to the auth endpoints, in order
}

// post is a POST to an auth endpoint as the server received it.
type post struct {
	path, origin, contentType string
	csrf                      bool // an X-CSRFToken header was sent
	cookie                    bool // a session cookie was sent
}

// stackConfig is how startStackWith sets up the stack.
type stackConfig struct {
	ttl         time.Duration           // of the tokens the auth server issues
	encoding    instant.PayloadEncoding // of the bridge's publications
	identityKey string                  // verifies identity JWTs; empty: Bearer tokens refused
	channels    []instant.Channel       // registered besides browserChannels
	console     bool                    // serve the admin API and the console (see consoleAdmin)
	origins     []string                // the auth server's AllowedOrigins
}

// startStack starts NATS, Centrifugo, a bridge with encoding and an auth
// server issuing tokens that live ttl, and serves the page.
func startStack(t *testing.T, ttl time.Duration, encoding instant.PayloadEncoding) *stack {
	t.Helper()
	return startStackWith(t, stackConfig{ttl: ttl, encoding: encoding})
}

// startStackWith starts the stack as cfg says.
func startStackWith(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	ctx := t.Context()
	srv := stacktest.NATS(t)
	s := &stack{t: t, nc: stacktest.Connect(t, srv.ClientURL()), bearers: map[string]int{}}
	var err error
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	s.cent = stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})
	reg, err := registry.Open(ctx, s.js, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := reg.Import(ctx, append(slices.Clone(browserChannels), cfg.channels...), false); err != nil {
		t.Fatal(err)
	}
	view, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.users, err = users.Open(ctx, s.js, "", users.WithCost(bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	for _, u := range browserUsers {
		if err := s.users.Add(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	api := centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey})
	var admin *auth.Admin
	if cfg.console {
		admin = s.consoleAdmin(reg, api)
	}
	s.runBridge(view, api, cfg.encoding)
	userView, err := s.users.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	authSrv, err := auth.New(auth.Config{HMACKey: s.cent.HMACKey, TokenTTL: cfg.ttl, IdentityKey: cfg.identityKey, AllowedOrigins: cfg.origins},
		auth.Deps{Channels: view, Users: s.users, UserView: userView, Revoker: api, Log: zaptest.NewLogger(t).Named("auth"), Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "auth", authSrv.Run)
	select {
	case <-authSrv.Ready():
	case <-time.After(deadline):
		t.Fatal("auth server not ready")
	}
	demo, err := web.Demo(web.DemoConfig{WebsocketURL: s.cent.WSURL})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/instant/", s.counting(authSrv.Handler()))
	mux.Handle(web.StaticPrefix, web.Static())
	mux.Handle("/", demo)
	if cfg.console {
		s.mountConsole(mux)
	}
	hs := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// runBridge runs a bridge on its own connection and waits until its
// request service answers (its stream and subscriptions exist by then).
func (s *stack) runBridge(view *registry.View, api *centrifugo.Client, encoding instant.PayloadEncoding) {
	t := s.t
	t.Helper()
	b, err := bridge.New(stacktest.Connect(t, s.nc.ConnectedUrl()), view, api,
		bridge.Config{Encoding: encoding}, zaptest.NewLogger(t).Named("bridge"), s.bridgeMetrics)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "bridge", b.Run)
	stacktest.WaitBridge(t, s.nc)
}

// run runs f until the test ends, then checks it returned nil.
func run(t *testing.T, name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// counting counts the token requests the page makes, and those made with
// a Bearer token, and records the Bearer tokens presented.
func (s *stack) counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, noCookie := r.Cookie(auth.SessionCookie)
			s.mu.Lock()
			s.posts = append(s.posts, post{path: r.URL.Path, origin: r.Header.Get("Origin"), contentType: r.Header.Get("Content-Type"),
				csrf: r.Header.Get(auth.CSRFHeader) != "", cookie: noCookie == nil})
			s.mu.Unlock()
			token, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			switch r.URL.Path {
			case auth.PathGetToken:
				s.getTokens.Add(1)
				if bearer {
					s.bearerGetTokens.Add(1)
				}
			case auth.PathSubscribe:
				s.subscribes.Add(1)
				if bearer {
					s.bearerSubscribes.Add(1)
				}
			}
			if bearer {
				s.mu.Lock()
				s.bearers[token]++
				s.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

// reusedBearers returns how many Bearer tokens were presented more than
// once, and how many distinct ones were presented.
func (s *stack) reusedBearers() (reused, distinct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.bearers {
		if n > 1 {
			reused++
		}
	}
	return reused, len(s.bearers)
}

// envelope is the body of a test message: its text is the message, its
// id the Nats-Msg-Id.
func envelope(t *testing.T, text string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"message": text, "event_class": "test", "bucket": "demo"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish publishes text to channel through JetStream, as producers do.
func (s *stack) publish(channel, id, text string) {
	s.t.Helper()
	if _, err := s.js.Publish(s.t.Context(), "instant.publish."+channel, envelope(s.t, text), jetstream.WithMsgID(id)); err != nil {
		s.t.Fatalf("publish %s to %s: %v", id, channel, err)
	}
}

// request publishes text to channel through the request subject and
// returns once Centrifugo stored it.
func (s *stack) request(channel, id, text string) {
	s.t.Helper()
	msg := &nats.Msg{Subject: "instant.request." + channel, Data: envelope(s.t, text), Header: nats.Header{nats.MsgIdHdr: {id}}}
	resp, err := s.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		s.t.Fatalf("request %s to %s: %v", id, channel, err)
	}
	var reply instant.Reply
	if err := json.Unmarshal(resp.Data, &reply); err != nil || !reply.OK {
		s.t.Fatalf("request %s to %s: reply %s (%v)", id, channel, resp.Data, err)
	}
}

// page is the demo page in a fresh headless Chromium.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openPage starts Chromium, opens the demo and saves a screenshot to
// artifacts/ when the test ends.
func (s *stack) openPage() *page {
	t := s.t
	t.Helper()
	ctx := stacktest.Chromium(t)
	p := &page{t: t, ctx: ctx}
	// The first Run starts the browser and lives as long as ctx: no timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatalf("open the demo page: %v", err)
	}
	t.Cleanup(func() { p.screenshot("end") })
	return p
}

// screenshot saves the page to artifacts/web-<test name>-<suffix>.png.
func (p *page) screenshot(suffix string) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	dir := filepath.Join(stacktest.RepoRoot(p.t), "artifacts")
	name := filepath.Join(dir, "web-"+strings.ReplaceAll(p.t.Name(), "/", "-")+"-"+suffix+".png")
	err = os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.WriteFile(name, png, 0o644)
	}
	if err != nil {
		p.t.Logf("screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot: %s", name)
}

// do runs steps, each wait bounded by deadline.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, deadline)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression on the page.
func eval[T any](p *page, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, deadline)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// login logs in through the form.
func (p *page) login(username string) {
	p.t.Helper()
	// The last user's name stays in the form after a logout.
	eval[bool](p, `document.getElementById("username").value = ""; true`)
	p.do("log in as "+username,
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
}

// state returns the connection state the page shows.
func (p *page) state() string {
	p.t.Helper()
	return eval[string](p, `document.getElementById("state-name").textContent`)
}

// waitState waits until the page shows the connection state want.
func (p *page) waitState(want string) {
	p.t.Helper()
	p.waitFor("state "+want, func() bool { return p.state() == want })
}

// waitFor polls cond until it holds, failing the test after deadline.
func (p *page) waitFor(what string, cond func() bool) {
	p.t.Helper()
	until := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(until) {
			p.t.Fatalf("the page did not show %s within %v (it shows state %q, feed %q)", what, deadline, p.state(), p.feed())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// feed returns the texts of the feed's entries, oldest first.
func (p *page) feed() []string {
	p.t.Helper()
	texts := eval[[]string](p, `[...document.querySelectorAll("#feed li .text")].map((e) => e.textContent).reverse()`)
	return texts
}

// count returns how often the feed shows text.
func (p *page) count(text string) int {
	n := 0
	for _, got := range p.feed() {
		if got == text {
			n++
		}
	}
	return n
}

// waitShown waits until the feed shows every text.
func (p *page) waitShown(texts ...string) {
	p.t.Helper()
	p.waitFor("messages "+strings.Join(texts, ", "), func() bool {
		feed := p.feed()
		for _, text := range texts {
			if !slices.Contains(feed, text) {
				return false
			}
		}
		return true
	})
}

func TestBrowserChannelsByUser(t *testing.T) {
	tests := []struct {
		user string
		sees []string // of browserChannels
	}{
		{"alice", []string{"public", "$users"}},
		{"sam", []string{"public", "$users", "$staff"}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			s := startStack(t, 10*time.Minute, instant.EncodingObject)
			p := s.openPage()
			if got := p.state(); got != "disconnected" {
				t.Errorf("before login the page shows %q, want disconnected", got)
			}
			p.login(tt.user)
			p.waitState("connected")

			for _, ch := range browserChannels {
				s.publish(ch.Name, "to-"+ch.Name, "hello "+ch.Name)
			}
			// Every message the user may see is waited for, plus a later
			// one on a channel every user sees; the others must not be
			// shown: the page holds no subscription to them.
			s.publish("public", "marker", "marker")
			var want []string
			for _, ch := range tt.sees {
				want = append(want, "hello "+ch)
			}
			p.waitShown(append(want, "marker")...)
			p.screenshot("feed")
			for _, ch := range browserChannels {
				want := 0
				if slices.Contains(tt.sees, ch.Name) {
					want = 1
				}
				if got := p.count("hello " + ch.Name); got != want {
					t.Errorf("%s: the message to %s is shown %d times, want %d", tt.user, ch.Name, got, want)
				}
			}
			entry := eval[string](p, `document.querySelector('#feed li[data-id="`+instant.PublicationID("public", "to-public")+`"]').textContent`)
			for _, part := range []string{"public", "event: test", "bucket: demo", "hello public"} {
				if !strings.Contains(entry, part) {
					t.Errorf("the feed entry %q does not show %q", entry, part)
				}
			}

			p.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
			p.waitState("disconnected")
			// The session is gone: a reload shows the login form again.
			p.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("username")))
			if got := p.state(); got != "disconnected" {
				t.Errorf("after logout and reload the page shows %q, want disconnected", got)
			}
		})
	}
}

// TestBrowserSessionEnded ends the user's sessions on the server (as a
// logout elsewhere or a password change does): the auth service
// disconnects the page, which shows the login form again.
func TestBrowserSessionEnded(t *testing.T) {
	s := startStack(t, 10*time.Minute, instant.EncodingObject)
	p := s.openPage()
	p.login("alice")
	p.waitState("connected")
	if err := s.users.RevokeSessions(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	p.do("wait for the login form", chromedp.WaitVisible(chromedp.ID("username")))
	p.waitState("disconnected")
	if msg := eval[string](p, `document.getElementById("login-error").textContent`); !strings.Contains(msg, "session ended") {
		t.Errorf("the page says %q, want that the session ended", msg)
	}
}

// TestBrowserTokenRenewal keeps the page open across several expiries of
// short-lived tokens: centrifuge-js renews them through get_token and
// subscribe, and the page never leaves the connected state.
func TestBrowserTokenRenewal(t *testing.T) {
	const ttl = 3 * time.Second
	// The string encoding here, the object one elsewhere: the client
	// accepts both.
	s := startStack(t, ttl, instant.EncodingString)
	p := s.openPage()
	p.login("alice")
	p.waitState("connected")
	eval[bool](p, `window.stateChanges = []; instant.onState((e) => stateChanges.push(e)); true`)
	s.publish("public", "first", "first")
	p.waitShown("first")

	getTokens, subscribes := s.getTokens.Load(), s.subscribes.Load()
	for round := 1; round <= 3; round++ {
		until := time.Now().Add(deadline)
		for s.getTokens.Load() < getTokens+int64(round) || s.subscribes.Load() < subscribes+2*int64(round) {
			if time.Now().After(until) {
				t.Fatalf("round %d: %d get_token and %d subscribe calls within %v, want renewals",
					round, s.getTokens.Load()-getTokens, s.subscribes.Load()-subscribes, deadline)
			}
			time.Sleep(50 * time.Millisecond)
		}
		text := "after renewal " + string(rune('0'+round))
		s.publish("$users", "renewed-"+text, text)
		p.waitShown(text)
	}
	if changes := eval[[]map[string]any](p, `stateChanges`); len(changes) != 0 {
		t.Errorf("the connection state changed during renewals: %v", changes)
	}
	if got := p.state(); got != "connected" {
		t.Errorf("the page shows %q, want connected", got)
	}
	t.Logf("renewals: %d get_token, %d subscribe", s.getTokens.Load()-getTokens, s.subscribes.Load()-subscribes)
}

// teamChannel is registered besides browserChannels for
// TestBrowserIdentity: a groups channel of the identity's group.
var teamChannel = instant.Channel{Name: "$team", Level: instant.LevelGroups, Groups: []string{"group1"}, Active: true}

// signIdentity signs an identity JWT with key, as an existing app does
// (HS256).
func signIdentity(key string, claims jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
}

// received is a message as the identity client on the page recorded it.
type received struct {
	Channel string `json:"channel"`
	ID      string `json:"id"`
	Text    string `json:"text"`
}

// identityScript creates an Instant with identity (a JavaScript
// expression) on the page as window.identityClient, records its messages
// in window.identityMessages (and shows them at the top of the page) and
// its state changes in window.identityStates, connects, and evaluates to
// the names of the granted channels.
func identityScript(identity, websocketURL string) string {
	return fmt.Sprintf(`(async () => {
		const { Instant } = await import("/instant/static/instant.js");
		const log = document.createElement("pre");
		log.id = "identity-log";
		log.textContent = "Messages of the identity client:\n";
		document.body.prepend(log);
		window.identityMessages = [];
		window.identityStates = [];
		const client = new Instant({ identity: %s, websocketURL: %s });
		window.identityClient = client;
		client.on((m) => {
			identityMessages.push({ channel: m.channel, id: m.id ?? "", text: m.message ?? "" });
			log.textContent += m.channel + ": " + (m.message ?? "") + "\n";
		});
		client.onState((e) => identityStates.push(e.state + " " + e.reason));
		const channels = await client.connect();
		return channels.map((c) => c.name);
	})()`, identity, jsString(websocketURL))
}

// jsString returns s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

// TestBrowserIdentity connects a page with identity JWTs signed by an
// existing app, sent as Authorization: Bearer, instead of a login. The
// page sees the channels of the identity's level and groups, renews its
// short-lived tokens with a fresh identity JWT each time, and a JWT
// signed with another key is refused.
func TestBrowserIdentity(t *testing.T) {
	const (
		ttl         = 3 * time.Second
		identityKey = "the existing app's identity key, 32 bytes or more"
	)
	s := startStackWith(t, stackConfig{
		ttl: ttl, encoding: instant.EncodingObject, identityKey: identityKey, channels: []instant.Channel{teamChannel},
	})
	p := s.openPage()

	// The app's side: a fresh identity JWT on every call, told apart by
	// its jti.
	var issued atomic.Int64
	p.do("expose freshIdentity", chromedp.ExposeFunc("freshIdentity", func(context.Context, []any) (string, error) {
		n := issued.Add(1)
		return signIdentity(identityKey, jwt.MapClaims{
			"sub": "ext-gina", "groups": []string{"group1"}, "staff": false, "superuser": false,
			"exp": time.Now().Add(time.Minute).Unix(), "jti": strconv.FormatInt(n, 10),
		})
	}))
	granted := eval[[]string](p, identityScript("() => freshIdentity()", s.cent.WSURL), chromedp.EvalAwaitPromise)
	if want := []string{"$team", "$users", "public"}; !slices.Equal(granted, want) {
		t.Fatalf("connect() granted %v, want %v", granted, want)
	}
	messages := func() []received { return eval[[]received](p, `identityMessages`) }
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		until := time.Now().Add(deadline)
		for !cond() {
			if time.Now().After(until) {
				t.Fatalf("the identity client did not get to %s within %v (state %q, messages %v, states %v)", what, deadline,
					eval[string](p, `identityClient.state`), messages(), eval[[]string](p, `identityStates`))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitShown := func(texts ...string) {
		t.Helper()
		waitUntil("messages "+strings.Join(texts, ", "), func() bool {
			got := messages()
			for _, text := range texts {
				if !slices.ContainsFunc(got, func(m received) bool { return m.Text == text }) {
					return false
				}
			}
			return true
		})
	}
	waitUntil("state connected", func() bool { return eval[string](p, `identityClient.state`) == "connected" })
	// Subscribed to every granted channel before publishing (the
	// subscriptions are the client's own, not in its API).
	waitUntil("every subscription", func() bool {
		return eval[bool](p, `identityClient.subs.size === 3 && [...identityClient.subs.values()].every((s) => s.state === "subscribed")`)
	})

	all := append(slices.Clone(browserChannels), teamChannel)
	for _, ch := range all {
		s.publish(ch.Name, "to-"+ch.Name, "hello "+ch.Name)
	}
	// Every granted channel's message is waited for (channels in
	// different partitions are relayed concurrently, so one channel's
	// marker says nothing of another's); the others must not arrive: the
	// client holds no subscription to them.
	s.publish("public", "marker", "marker")
	wait := []string{"marker"}
	for _, name := range granted {
		wait = append(wait, "hello "+name)
	}
	waitShown(wait...)
	p.screenshot("received")
	got := messages()
	for _, ch := range all {
		want := 0
		if slices.Contains(granted, ch.Name) {
			want = 1
		}
		n := 0
		for _, m := range got {
			if m.ID == instant.PublicationID(ch.Name, "to-"+ch.Name) {
				n++
				if m.Channel != ch.Name || m.Text != "hello "+ch.Name {
					t.Errorf("the message to %s arrived as %+v", ch.Name, m)
				}
			}
		}
		if n != want {
			t.Errorf("the message to %s arrived %d times, want %d (messages %v)", ch.Name, n, want, got)
		}
	}

	// Renewals: get_token for the connection and subscribe for each of
	// the 3 channels, every one with Bearer and a fresh identity JWT.
	states := len(eval[[]string](p, `identityStates`))
	getTokens, subscribes := s.bearerGetTokens.Load(), s.bearerSubscribes.Load()
	for round := int64(1); round <= 2; round++ {
		waitUntil(fmt.Sprintf("renewal %d", round), func() bool {
			return s.bearerGetTokens.Load() >= getTokens+round && s.bearerSubscribes.Load() >= subscribes+3*round
		})
		text := "after renewal " + strconv.FormatInt(round, 10)
		s.publish("$team", "renewed-"+text, text)
		waitShown(text)
	}
	t.Logf("renewals: %d get_token, %d subscribe with Bearer", s.bearerGetTokens.Load()-getTokens, s.bearerSubscribes.Load()-subscribes)
	if all := eval[[]string](p, `identityStates`); len(all) != states {
		t.Errorf("the connection state changed during renewals: %v", all[states:])
	}
	if st := eval[string](p, `identityClient.state`); st != "connected" {
		t.Errorf("after the renewals the identity client is %q, want connected", st)
	}
	if all := s.getTokens.Load() - s.bearerGetTokens.Load(); all != 1 {
		// The demo page's own client asks once, with no session.
		t.Errorf("%d get_token calls without Bearer, want 1 (the demo page's own)", all)
	}
	bearer := s.bearerGetTokens.Load() + s.bearerSubscribes.Load()
	if reused, distinct := s.reusedBearers(); reused != 0 || int64(distinct) != bearer {
		t.Errorf("%d Bearer requests presented %d distinct identity JWTs, %d of them more than once: want a fresh one each time", bearer, distinct, reused)
	}
	if n := issued.Load(); n < bearer {
		t.Errorf("the app issued %d identity JWTs for %d Bearer requests", n, bearer)
	}

	// An identity JWT signed with another key: connect() rejects with
	// HTTPError 403.
	bad, err := signIdentity("another key, not the identity key at all", jwt.MapClaims{
		"sub": "ext-gina", "groups": []string{"group1"}, "exp": time.Now().Add(time.Minute).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	eval[bool](p, `window.identityToken = `+jsString(bad)+`; true`)
	before := s.bearerGetTokens.Load()
	refused := eval[map[string]any](p, `(async () => {
		const { HTTPError, Instant } = await import("/instant/static/instant.js");
		const client = new Instant({ identity: () => window.identityToken, websocketURL: `+jsString(s.cent.WSURL)+` });
		try {
			await client.connect();
			client.disconnect();
			return { connected: true };
		} catch (err) {
			return { httpError: err instanceof HTTPError, status: err.status ?? 0, path: err.path ?? "", message: String(err), state: client.state };
		}
	})()`, chromedp.EvalAwaitPromise)
	if refused["httpError"] != true || refused["status"] != 403.0 || refused["path"] != auth.PathGetToken || refused["state"] != "disconnected" {
		t.Errorf("connect() with a wrongly signed identity JWT: %v, want an HTTPError 403 from %s, disconnected", refused, auth.PathGetToken)
	}
	if n := s.bearerGetTokens.Load() - before; n != 1 {
		t.Errorf("connect() with a wrongly signed identity JWT made %d get_token calls with Bearer, want 1", n)
	}
	// The first client is unaffected.
	s.publish("$team", "still", "still there")
	waitShown("still there")
}

// TestBrowserReconnect takes the page offline, publishes meanwhile, and
// brings it back: every message shows once (history recovery,
// duplicates dropped by id). Then Centrifugo restarts with its history
// gone: the page reconnects by itself and says messages may be missing.
func TestBrowserReconnect(t *testing.T) {
	s := startStack(t, 10*time.Minute, instant.EncodingObject)
	p := s.openPage()
	p.login("alice")
	p.waitState("connected")
	s.request("public", "before", "before")
	s.request("public", "before", "before") // the same id again: dropped
	p.waitShown("before")

	p.network(true)
	p.waitState("connecting")
	var gap []string
	for i, ch := range []string{"public", "$users", "public", "$users", "public"} {
		text := "offline " + string(rune('1'+i))
		s.request(ch, "gap-"+text, text)
		gap = append(gap, text)
	}
	s.request("public", "gap-offline 1", "offline 1") // a duplicate of a missed one
	if got := p.state(); got == "connected" {
		t.Fatal("the page reconnected while offline: the test would prove nothing")
	}
	p.network(false)
	p.waitState("connected")
	s.request("public", "back", "back online")
	p.waitShown(append(gap, "back online")...)
	for _, text := range append(gap, "before", "back online") {
		if n := p.count(text); n != 1 {
			t.Errorf("%q is shown %d times, want once", text, n)
		}
	}
	if eval[bool](p, `!document.getElementById("unrecovered").hidden`) {
		t.Error("after a recovered reconnect the page says messages may be missing")
	}

	s.cent.Stop(t)
	p.waitState("connecting")
	s.cent.Start(t)
	p.waitState("connected")
	p.waitFor("the could-not-recover notice", func() bool {
		return eval[bool](p, `!document.getElementById("unrecovered").hidden`)
	})
	// Both channels lost their history; the notice names each once it
	// resubscribed.
	p.waitFor("both channels in the notice", func() bool {
		notice := eval[string](p, `document.getElementById("unrecovered").textContent`)
		return strings.Contains(notice, "public") && strings.Contains(notice, "$users") && strings.Contains(notice, "may be missing")
	})
	s.request("$users", "restarted", "after the restart")
	p.waitShown("after the restart")
}

// network takes the page offline (navigator.onLine false, the offline
// event, every request failing) or back online.
func (p *page) network(offline bool) {
	p.t.Helper()
	p.do("set offline "+map[bool]string{true: "on", false: "off"}[offline], chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	}))
}

// TestBrowserLogoutClearsFeed logs out a staff user and logs in a plain
// one on the same page: nothing of the first user's feed stays in view.
func TestBrowserLogoutClearsFeed(t *testing.T) {
	s := startStack(t, 10*time.Minute, instant.EncodingObject)
	p := s.openPage()
	p.login("sam")
	p.waitState("connected")
	s.request("$staff", "staff-only", "for staff only")
	s.request("public", "sam-public", "seen by sam")
	p.waitShown("for staff only", "seen by sam")

	p.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
	p.waitState("disconnected")
	if feed := p.feed(); len(feed) != 0 {
		t.Errorf("after logout the feed still shows %q", feed)
	}
	if !eval[bool](p, `!document.getElementById("feed-empty").hidden`) {
		t.Error("after logout the page does not say the feed is empty")
	}

	p.login("alice")
	p.waitState("connected")
	s.request("public", "alice-public", "seen by alice")
	p.waitShown("seen by alice")
	p.screenshot("alice")
	if feed := p.feed(); !slices.Equal(feed, []string{"seen by alice"}) {
		t.Errorf("alice's feed shows %q, want only her own message", feed)
	}
}

// TestBrowserInvalidUTF8 publishes envelopes with invalid UTF-8 inside
// data (raw bytes, as a careless producer sends them): the bridge
// rejects them, so the page stays connected, never shows them, and shows
// the next good message on the same channel.
func TestBrowserInvalidUTF8(t *testing.T) {
	s := startStack(t, 10*time.Minute, instant.EncodingObject)
	p := s.openPage()
	p.login("alice")
	p.waitState("connected")
	s.request("public", "before", "before")
	p.waitShown("before")
	eval[bool](p, `window.stateChanges = []; instant.onState((e) => stateChanges.push(e.state + " " + e.reason)); true`)

	dead, err := s.nc.SubscribeSync("instant.dead")
	if err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{
		[]byte("{\"message\":\"bad value\",\"data\":{\"text\":\"caf\xe9 \xff\xfe\"}}"), // Latin-1 é and stray bytes in a value
		[]byte("{\"message\":\"bad key\",\"data\":{\"k\xc3\":[1,\"\xed\xa0\x80\"]}}"),  // a cut sequence in a key, a surrogate in an array
	}
	for i, body := range bad {
		if _, err := s.js.Publish(t.Context(), "instant.publish.public", body, jetstream.WithMsgID(fmt.Sprintf("bad-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Through the stream as well: relayed after the bad ones were handled.
	s.publish("public", "after", "after the bad ones")
	p.waitShown("after the bad ones")
	if got := p.feed(); !slices.Equal(got, []string{"before", "after the bad ones"}) {
		t.Errorf("the feed shows %q, want only the good messages", got)
	}
	if changes := eval[[]string](p, `stateChanges`); len(changes) != 0 {
		t.Errorf("the connection state changed: %v", changes)
	}
	if got := p.state(); got != "connected" {
		t.Errorf("the page shows %q, want connected", got)
	}
	for range bad {
		msg, err := dead.NextMsg(deadline)
		if err != nil {
			t.Fatalf("no dead letter for an envelope with invalid UTF-8: %v", err)
		}
		if code := msg.Header.Get("Instant-Error"); code != "bad_envelope" {
			t.Errorf("dead letter %q has Instant-Error %q, want bad_envelope", msg.Data, code)
		}
	}
}
