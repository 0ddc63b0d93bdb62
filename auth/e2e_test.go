package auth_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
)

// revokeWithin is how soon a revocation must reach the browser.
const revokeWithin = time.Second

// stack is NATS, Centrifugo and the auth server on loopback.
type stack struct {
	t        *testing.T
	cent     *stacktest.Centrifugo
	channels *registry.Store
	users    *users.Store
	url      string // the auth server
}

// e2eChannels are the channels of the end-to-end tests.
var e2eChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "$superuser", Level: instant.LevelSuperuser, Active: true},
	{Name: "$group1", Level: instant.LevelGroups, Groups: []string{"group1"}, Active: true},
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, cent: stacktest.StartCentrifugo(t, stacktest.CentrifugoOptions{})}
	if s.channels, err = registry.Open(ctx, js, ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range e2eChannels {
		if err := s.channels.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if s.users, err = users.Open(ctx, js, "", users.WithCost(bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	for _, u := range testUsers {
		if err := s.users.Add(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	view, err := s.channels.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server, err := auth.New(auth.Config{
		HMACKey:     s.cent.HMACKey,
		IdentityKey: string(identityKey),
		Anonymous:   true,
		TokenTTL:    10 * time.Minute,
	}, auth.Deps{
		Channels: view,
		Users:    s.users,
		UserView: watchUsers(t, s.users),
		Revoker:  centrifugo.New(centrifugo.Config{URL: s.cent.APIURL, Key: s.cent.APIKey}),
		Log:      zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, ctx, server)
	hs := httptest.NewServer(server.Handler())
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// browser talks to the auth server like a page would: a cookie jar and
// the CSRF token of the last login.
type browser struct {
	t      *testing.T
	url    string
	client *http.Client
	csrf   string
	bearer string // identity JWT, when set
}

func (s *stack) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{t: s.t, url: s.url, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// post sends body to path and returns the status and the decoded body.
func (b *browser) post(path, body string, out any) int {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b.csrf != "" {
		req.Header.Set(auth.CSRFHeader, b.csrf)
	}
	if b.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+b.bearer)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			b.t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// tokens logs in (or, with a bearer or anonymous, asks get_token) and
// returns the tokens.
func (b *browser) tokens(path, body string) tokens {
	b.t.Helper()
	var tk tokens
	if st := b.post(path, body, &tk); st != http.StatusOK {
		b.t.Fatalf("%s: status %d", path, st)
	}
	if tk.CSRFToken != "" {
		b.csrf = tk.CSRFToken
	}
	return tk
}

// wsClient is a real Centrifugo websocket client using the tokens the
// auth server issued.
type wsClient struct {
	name   string
	client *centrifuge.Client
	subs   map[string]*centrifuge.Subscription

	mu  sync.Mutex
	got map[string][]string // channel → publication data
	log bytes.Buffer
}

func (c *wsClient) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(&c.log, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

// connect connects with tk.WSToken and subscribes to every channel of tk
// with its token, waiting until all are confirmed.
func (s *stack) connect(name string, tk tokens) *wsClient {
	t := s.t
	t.Helper()
	c := &wsClient{name: name, subs: map[string]*centrifuge.Subscription{}, got: map[string][]string{}}
	c.client = centrifuge.NewJsonClient(s.cent.WSURL, centrifuge.Config{Token: tk.WSToken})
	t.Cleanup(c.client.Close)
	t.Cleanup(func() {
		if t.Failed() {
			c.mu.Lock()
			t.Logf("client %s events:\n%s", name, c.log.String())
			c.mu.Unlock()
		}
	})
	c.client.OnDisconnected(func(e centrifuge.DisconnectedEvent) { c.logf("disconnected %d %s", e.Code, e.Reason) })
	c.client.OnError(func(e centrifuge.ErrorEvent) { c.logf("error %v", e.Error) })
	for _, ch := range tk.Channels {
		sub, err := c.client.NewSubscription(ch.Name, centrifuge.SubscriptionConfig{Token: ch.Token})
		if err != nil {
			t.Fatal(err)
		}
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.got[ch.Name] = append(c.got[ch.Name], string(e.Data))
		})
		sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) { c.logf("%s unsubscribed %d %s", ch.Name, e.Code, e.Reason) })
		sub.OnError(func(e centrifuge.SubscriptionErrorEvent) { c.logf("%s error %v", ch.Name, e.Error) })
		c.subs[ch.Name] = sub
	}
	if err := c.client.Connect(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range c.subs {
		if err := sub.Subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	stacktest.WaitFor(t, 10*time.Second, name+" subscribed to all", func() bool {
		for _, sub := range c.subs {
			if sub.State() != centrifuge.SubStateSubscribed {
				return false
			}
		}
		return c.client.State() == centrifuge.StateConnected
	})
	return c
}

// received returns the channels c got data on, sorted.
func (c *wsClient) received(data string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for ch, ds := range c.got {
		if slices.Contains(ds, data) {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

// waitUnsubscribed waits until c's subscription to channel ended for
// good, or its connection did.
func (c *wsClient) waitUnsubscribed(t *testing.T, channel string) {
	t.Helper()
	sub := c.subs[channel]
	stacktest.WaitFor(t, revokeWithin, c.name+" unsubscribed from "+channel, func() bool {
		return sub.State() == centrifuge.SubStateUnsubscribed || c.disconnected()
	})
}

func (c *wsClient) disconnected() bool {
	st := c.client.State()
	return st == centrifuge.StateDisconnected || st == centrifuge.StateClosed
}

// publishAll publishes data to every channel through Centrifugo's API.
func (s *stack) publishAll(data string) {
	s.t.Helper()
	for _, ch := range e2eChannels {
		s.cent.Publish(s.t, ch.Name, json.RawMessage(`{"n":"`+data+`"}`))
	}
}

// expectReceived waits until every client got data on exactly its
// channels, then a moment more to see nothing else arrives.
func expectReceived(t *testing.T, data string, want map[*wsClient][]string) {
	t.Helper()
	full := `{"n":"` + data + `"}`
	for c, chs := range want {
		stacktest.WaitFor(t, 5*time.Second, fmt.Sprintf("%s receiving %s on %v", c.name, data, chs), func() bool {
			return len(c.received(full)) >= len(chs)
		})
	}
	time.Sleep(200 * time.Millisecond)
	for c, chs := range want {
		got := c.received(full)
		slices.Sort(chs)
		if !slices.Equal(got, chs) {
			t.Errorf("%s received %s on %v, want %v", c.name, data, got, chs)
		}
	}
}

// wantAnonymous checks that b's session is gone: with anonymous access
// on, it gets the tokens of an anonymous visitor only.
func (b *browser) wantAnonymous(who string) {
	b.t.Helper()
	tk := b.tokens(auth.PathGetToken, "")
	if got := names(tk); !slices.Equal(got, []string{"public"}) {
		b.t.Errorf("%s: channels %v, want public only", who, got)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tk.WSToken, claims); err != nil || claims["sub"] != "" {
		b.t.Errorf("%s: ws_token claims %v (%v), want sub \"\"", who, claims, err)
	}
	if st := b.post(auth.PathSubscribe, `{"channel":"$users"}`, nil); st != http.StatusForbidden {
		b.t.Errorf("%s asking a token for $users: %d, want 403", who, st)
	}
}

func names(tk tokens) []string {
	var out []string
	for _, c := range tk.Channels {
		out = append(out, c.Name)
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	s := startStack(t)
	ctx := t.Context()

	grants := map[string][]string{
		"alice": {"$users", "public"},
		"gina":  {"$group1", "$users", "public"},
		"sam":   {"$staff", "$users", "public"},
		"root":  {"$superuser", "$users", "public"},
		"":      {"public"},
	}
	browsers := map[string]*browser{}
	clients := map[string]*wsClient{}
	toks := map[string]tokens{}
	for user := range grants {
		b := s.browser()
		var tk tokens
		if user == "" {
			tk = b.tokens(auth.PathGetToken, "")
		} else {
			tk = b.tokens(auth.PathLogin, `{"username":"`+user+`","password":"`+password+`"}`)
		}
		if got := names(tk); !slices.Equal(got, grants[user]) {
			t.Fatalf("%q granted %v, want %v", user, got, grants[user])
		}
		browsers[user], toks[user] = b, tk
		clients[user] = s.connect("user "+user, tk)
	}

	s.publishAll("one")
	want := map[*wsClient][]string{}
	for user, chs := range grants {
		want[clients[user]] = chs
	}
	expectReceived(t, "one", want)

	// Channels not granted: no token from the auth server, and Centrifugo
	// refuses a subscription without a token or with another user's.
	tokenOf := func(user, channel string) string {
		for _, c := range toks[user].Channels {
			if c.Name == channel {
				return c.Token
			}
		}
		return ""
	}
	for user, chs := range grants {
		for _, ch := range e2eChannels {
			if slices.Contains(chs, ch.Name) {
				continue
			}
			if st := browsers[user].post(auth.PathSubscribe, `{"channel":"`+ch.Name+`"}`, nil); st != http.StatusForbidden {
				t.Errorf("%q asking a token for %s: status %d, want 403", user, ch.Name, st)
			}
			err := s.cent.TrySubscribe(t, user, ch.Name, "")
			if _, ok := errors.AsType[*stacktest.SubscribeError](err); !ok {
				t.Errorf("%q subscribing to %s without a token: %v, want refused", user, ch.Name, err)
			}
			for other := range grants {
				if tok := tokenOf(other, ch.Name); tok != "" {
					err := s.cent.TrySubscribe(t, user, ch.Name, tok)
					if _, ok := errors.AsType[*stacktest.SubscribeError](err); !ok {
						t.Errorf("%q subscribing to %s with the token of %q: %v, want refused", user, ch.Name, other, err)
					}
					break
				}
			}
		}
	}

	// gina leaves group1: her subscription ends at once and she gets no
	// token for it any more.
	if err := s.users.Update(ctx, instant.User{Identity: instant.Identity{Username: "gina"}}); err != nil {
		t.Fatal(err)
	}
	clients["gina"].waitUnsubscribed(t, "$group1")
	if clients["gina"].disconnected() {
		t.Fatal("gina disconnected, want only unsubscribed from $group1")
	}
	if st := browsers["gina"].post(auth.PathSubscribe, `{"channel":"$group1"}`, nil); st != http.StatusForbidden {
		t.Errorf("gina asking a token for $group1 after leaving group1: %d, want 403", st)
	}
	tk := browsers["gina"].tokens(auth.PathGetToken, "")
	if got := names(tk); !slices.Equal(got, []string{"$users", "public"}) {
		t.Errorf("gina's channels after leaving group1: %v", got)
	}
	s.publishAll("two")
	want[clients["gina"]] = []string{"$users", "public"}
	expectReceived(t, "two", want)

	// sam is deleted: disconnected at once, and his session is worthless.
	if err := s.users.Delete(ctx, "sam"); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, revokeWithin, "sam disconnected", clients["sam"].disconnected)
	browsers["sam"].wantAnonymous("sam after deletion")
	// root's password changes: disconnected at once too.
	if err := s.users.SetPassword(ctx, "root", "a new password"); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, revokeWithin, "root disconnected", clients["root"].disconnected)
	browsers["root"].wantAnonymous("root after a password change")
	delete(want, clients["sam"])
	delete(want, clients["root"])
	s.publishAll("three")
	expectReceived(t, "three", want)
	for _, user := range []string{"sam", "root"} {
		if got := clients[user].received(`{"n":"three"}`); len(got) != 0 {
			t.Errorf("%s received after being disconnected: %v", user, got)
		}
	}

	// The public channel is removed: anonymous visitors and users are
	// unsubscribed.
	if err := s.channels.Delete(ctx, "public"); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"", "alice", "gina"} {
		clients[user].waitUnsubscribed(t, "public")
	}
	if clients["alice"].disconnected() || clients[""].disconnected() {
		t.Error("a client was disconnected, want only unsubscribed from public")
	}
}

// TestEndToEndIdentity runs the same flow with identity JWTs from an
// existing app instead of logins.
func TestEndToEndIdentity(t *testing.T) {
	s := startStack(t)
	ctx := t.Context()
	idToken := func(sub string, groups []string, staff, superuser bool) string {
		return signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{
			"sub": sub, "groups": groups, "staff": staff, "superuser": superuser, "exp": time.Now().Add(time.Hour).Unix(),
		})
	}
	grants := map[string]struct {
		token string
		want  []string
	}{
		"ext-plain": {idToken("ext-plain", nil, false, false), []string{"$users", "public"}},
		"ext-gina":  {idToken("ext-gina", []string{"group1"}, false, false), []string{"$group1", "$users", "public"}},
		"ext-sam":   {idToken("ext-sam", nil, true, false), []string{"$staff", "$users", "public"}},
		"ext-root":  {idToken("ext-root", nil, false, true), []string{"$superuser", "$users", "public"}},
	}
	clients := map[string]*wsClient{}
	want := map[*wsClient][]string{}
	for user, g := range grants {
		b := s.browser()
		b.bearer = g.token
		tk := b.tokens(auth.PathGetToken, "")
		if got := names(tk); !slices.Equal(got, g.want) {
			t.Fatalf("%s granted %v, want %v", user, got, g.want)
		}
		if st := b.post(auth.PathSubscribe, `{"channel":"$superuser"}`, nil); (st == http.StatusOK) != slices.Contains(g.want, "$superuser") {
			t.Errorf("%s asking a token for $superuser: %d", user, st)
		}
		clients[user] = s.connect(user, tk)
		want[clients[user]] = g.want
	}
	s.publishAll("one")
	expectReceived(t, "one", want)

	// A refused identity token gets nothing.
	b := s.browser()
	b.bearer = signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{"sub": "late", "exp": time.Now().Add(-time.Minute).Unix()})
	if st := b.post(auth.PathGetToken, "", nil); st != http.StatusForbidden {
		t.Errorf("expired identity token: %d, want 403", st)
	}

	// $group1 is deactivated: the identity user that could see it is
	// unsubscribed at once, and so is a level change for $staff.
	if err := s.channels.Put(ctx, instant.Channel{Name: "$group1", Level: instant.LevelGroups, Groups: []string{"group1"}}); err != nil {
		t.Fatal(err)
	}
	clients["ext-gina"].waitUnsubscribed(t, "$group1")
	if err := s.channels.Put(ctx, instant.Channel{Name: "$staff", Level: instant.LevelSuperuser, Active: true}); err != nil {
		t.Fatal(err)
	}
	clients["ext-sam"].waitUnsubscribed(t, "$staff")
	for user, c := range clients {
		if c.disconnected() {
			t.Errorf("%s disconnected", user)
		}
	}
	s.publishAll("two")
	want[clients["ext-gina"]] = []string{"$users", "public"}
	want[clients["ext-sam"]] = []string{"$users", "public"}
	expectReceived(t, "two", want)
}
