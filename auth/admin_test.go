package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
)

// adminFixture is a server with the admin API on a real NATS server: the
// registry and user stores, the dead-letter stream, a fake revoker and a
// bridge metrics page.
type adminFixture struct {
	*fixture
	js      jetstream.JetStream
	nc      *nats.Conn
	reg     *registry.Store
	view    *registry.View
	revoker *fakeRevoker
	bridge  *bridge.Metrics
}

// fakeStats answers as Centrifugo would with one subscriber on public.
type fakeStats struct{}

func (fakeStats) Subscribers(context.Context) (map[string]int, error) {
	return map[string]int{"public": 1}, nil
}

func (fakeStats) Positions(_ context.Context, chs []string) (map[string]centrifugo.Position, error) {
	return map[string]centrifugo.Position{"public": {Offset: 7, Epoch: "e"}}, nil
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	ctx := t.Context()
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := users.Open(ctx, js, "", users.WithCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range testUsers {
		if err := store.Add(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := registry.Open(ctx, js, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := reg.Import(ctx, testChannels, false); err != nil {
		t.Fatal(err)
	}
	view, err := reg.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []jetstream.StreamConfig{
		{Name: "INSTANT", Subjects: []string{"instant.publish", "instant.publish.>"}},
		{Name: "INSTANT_DEAD", Subjects: []string{"instant.dead"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	promReg := prometheus.NewRegistry()
	metrics := bridge.NewMetrics(promReg)
	page := httptest.NewServer(promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
	t.Cleanup(page.Close)

	f := &adminFixture{
		fixture: &fixture{t: t, store: store, clock: &clock{t: time.Now().Truncate(time.Second)}, reg: prometheus.NewRegistry()},
		js:      js, nc: nc, reg: reg, view: view, revoker: &fakeRevoker{}, bridge: metrics,
	}
	f.cfg = auth.Config{HMACKey: hmacKey, TokenTTL: 10 * time.Minute, IdentityKey: string(identityKey), Now: f.clock.Now,
		AllowedOrigins: []string{"https://app.example"}}
	core, logs := observer.New(zapcore.InfoLevel)
	f.logs = logs
	s, err := auth.New(f.cfg, auth.Deps{
		Channels: view, Users: store, UserView: watchUsers(t, store), Revoker: f.revoker, Log: zap.New(core), Metrics: auth.NewMetrics(f.fixture.reg),
		Admin: &auth.Admin{
			Registry: reg, Users: store, Stats: fakeStats{},
			DeadLetters: &auth.JetStreamDeadLetters{JS: js, Conn: nc},
			Traffic:     &auth.BridgeMetrics{URL: page.URL},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, ctx, s)
	f.handler = s.Handler()
	return f
}

// admin sends an admin request as sess (nil: no session) and returns the
// response.
func (f *adminFixture) admin(sess *session, method, path, body string, opts ...reqOpt) *http.Response {
	f.t.Helper()
	if sess != nil {
		opts = append([]reqOpt{sess.auth()}, opts...)
	}
	return f.do(method, path, body, opts...)
}

// ok sends an admin request that must succeed and decodes its answer.
func ok[T any](f *adminFixture, sess *session, method, path, body string) T {
	f.t.Helper()
	resp := f.admin(sess, method, path, body)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		f.t.Fatalf("%s %s %s: %s %s", method, path, body, resp.Status, b)
	}
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		f.t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return v
}

// adminEndpoints are every admin endpoint with a valid request body.
var adminEndpoints = []struct {
	method, path, body string
	staff              bool // staff may call it
}{
	{"GET", auth.PathAdminMe, "", true},
	{"GET", auth.PathAdminChannels, "", true},
	{"GET", auth.PathAdminChannelName + "?name=x&level=users", "", true},
	{"POST", auth.PathAdminChannels, `{"name":"x","level":"public"}`, false},
	{"POST", auth.PathAdminChannelRemove, `{"name":"public"}`, false},
	{"GET", auth.PathAdminUsers, "", false},
	{"POST", auth.PathAdminUsers, `{"username":"new"}`, false},
	{"POST", auth.PathAdminUserUpdate, `{"username":"alice","groups":["g"]}`, false},
	{"POST", auth.PathAdminUserPassword, `{"username":"alice"}`, false},
	{"POST", auth.PathAdminUserRemove, `{"username":"alice"}`, false},
	{"GET", auth.PathAdminDead, "", true},
	{"POST", auth.PathAdminDeadRepublish, `{"seqs":[1]}`, false},
	{"POST", auth.PathAdminDeadPurge, `{"confirm":true}`, false},
	{"GET", auth.PathAdminTraffic, "", true},
}

func TestAdminPreflight(t *testing.T) {
	f := newAdminFixture(t)
	for path, want := range map[string]string{
		auth.PathAdminTraffic:   "GET, HEAD, OPTIONS",
		auth.PathAdminChannels:  "GET, HEAD, POST, OPTIONS",
		auth.PathAdminDeadPurge: "POST, OPTIONS",
	} {
		resp := f.do("OPTIONS", path, "", withHeader("Origin", "https://app.example"), withHeader("Access-Control-Request-Method", "GET"),
			withHeader("Access-Control-Request-Headers", "authorization"))
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Allow") != want || h.Get("Access-Control-Allow-Methods") != want ||
			h.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("OPTIONS %s: %s %v", path, resp.Status, h)
		}
		resp = f.do("OPTIONS", path, "", withHeader("Origin", "https://evil.example"), withHeader("Access-Control-Request-Method", "GET"))
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("OPTIONS %s from another origin: %v", path, resp.Header)
		}
	}
	if resp := f.do("PUT", auth.PathAdminTraffic, ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %s, want 405", resp.Status)
	}
}

func TestAdminRoles(t *testing.T) {
	f := newAdminFixture(t)
	alice, sam := f.login("alice"), f.login("sam")
	staffJWT := signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{
		"sub": "ext", "staff": true, "exp": f.clock.Now().Add(10 * time.Minute).Unix()})
	for _, e := range adminEndpoints {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			f.t = t
			wantStatus(t, f.admin(nil, e.method, e.path, e.body), http.StatusForbidden)
			wantStatus(t, f.admin(&alice, e.method, e.path, e.body), http.StatusForbidden)
			bearer := withHeader("Authorization", "Bearer "+staffJWT)
			if e.staff {
				wantStatus(t, f.admin(&sam, e.method, e.path, e.body), http.StatusOK)
				wantStatus(t, f.admin(nil, e.method, e.path, e.body, bearer), http.StatusOK)
			} else {
				wantStatus(t, f.admin(&sam, e.method, e.path, e.body), http.StatusForbidden)
				wantStatus(t, f.admin(nil, e.method, e.path, e.body, bearer), http.StatusForbidden)
			}
			root := f.login("root")
			if e.method == "POST" {
				// A change needs the CSRF token with a session cookie.
				wantStatus(t, f.do(e.method, e.path, e.body, withCookies(root.cookies)), http.StatusForbidden)
				// And JSON, from this server's origin.
				wantStatus(t, f.do(e.method, e.path, e.body, root.auth(), withHeader("Origin", "https://evil.example")), http.StatusForbidden)
				wantStatus(t, f.do(e.method, e.path, e.body, root.auth(), withHeader("Content-Type", "text/plain")), http.StatusUnsupportedMediaType)
			} else {
				// A read does not need it, but no other origin may read.
				wantStatus(t, f.do(e.method, e.path, e.body, withCookies(root.cookies)), http.StatusOK)
				wantStatus(t, f.do(e.method, e.path, e.body, root.auth(), withHeader("Origin", "https://evil.example")), http.StatusForbidden)
			}
		})
	}
	f.t = t
	for _, e := range f.logs.FilterMessageSnippet("admin: ").All() {
		if by, _ := e.ContextMap()["by"].(string); by != "root" && e.Message != "admin: refused" {
			t.Errorf("a refused request was carried out: %s %v", e.Message, e.ContextMap())
		}
	}
}

type adminChannelJSON struct {
	Name        string   `json:"name"`
	Level       string   `json:"level"`
	Active      bool     `json:"active"`
	Groups      []string `json:"groups"`
	Subscribers *int     `json:"subscribers"`
	History     *struct {
		Offset uint64 `json:"offset"`
		Epoch  string `json:"epoch"`
	} `json:"history"`
}

type changeJSON struct {
	Channel     *adminChannelJSON `json:"channel"`
	User        *instant.User     `json:"user"`
	Created     bool              `json:"created"`
	Password    string            `json:"password"`
	Revocations *int              `json:"revocations"`
}

func TestAdminChannels(t *testing.T) {
	f := newAdminFixture(t)
	root, sam := f.login("root"), f.login("sam")

	name := ok[struct{ Name, Error string }](f, &sam, "GET", auth.PathAdminChannelName+"?name=ns:news&level=staff", "")
	if name.Name != "ns:$news" || name.Error != "" {
		t.Errorf("name preview: got %+v, want ns:$news", name)
	}
	name = ok[struct{ Name, Error string }](f, &sam, "GET", auth.PathAdminChannelName+"?name=a.b&level=users", "")
	if name.Error == "" {
		t.Errorf("name preview of a.b: got %+v, want an error", name)
	}

	got := ok[changeJSON](f, &root, "POST", auth.PathAdminChannels, `{"name":"news","level":"groups","groups":["g2","g1"]}`)
	if got.Channel == nil || got.Channel.Name != "$news" || !got.Channel.Active || !slices.Equal(got.Channel.Groups, []string{"g1", "g2"}) || !got.Created {
		t.Errorf("put: got %+v", got)
	}
	if c, found := f.view.Lookup("$news"); !found || c.Level != instant.LevelGroups {
		t.Errorf("the view does not show $news once the put answered: %+v %v", c, found)
	}
	if e := f.logs.FilterMessage("admin: channel saved").All(); len(e) != 1 || e[0].ContextMap()["by"] != "root" {
		t.Errorf("log of the put: %v", e)
	}

	list := ok[struct {
		Channels []adminChannelJSON
		Stats    string
	}](f, &sam, "GET", auth.PathAdminChannels, "")
	if list.Stats != "ok" || len(list.Channels) != len(testChannels)+1 {
		t.Fatalf("list: got %+v", list)
	}
	for _, c := range list.Channels {
		if c.Name == "public" && (c.Subscribers == nil || *c.Subscribers != 1 || c.History == nil || c.History.Offset != 7) {
			t.Errorf("public: got %+v, want 1 subscriber and offset 7", c)
		}
	}

	// Deactivating $users unsubscribes every user of the store who saw it.
	got = ok[changeJSON](f, &root, "POST", auth.PathAdminChannels, `{"name":"$users","level":"users","active":false}`)
	if got.Created || got.Revocations == nil || *got.Revocations != len(testUsers) {
		t.Errorf("deactivate: got %+v, want %d revocations", got, len(testUsers))
	}
	f.revoker.take(t, "unsubscribe $users alice", "unsubscribe $users gina", "unsubscribe $users sam", "unsubscribe $users root")

	for _, body := range []string{`{"name":"x","level":"nope"}`, `{"name":"a b","level":"public"}`, `{"name":"$x","level":"public"}`} {
		resp := f.admin(&root, "POST", auth.PathAdminChannels, body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("put %s: %s, want 400", body, resp.Status)
		}
	}

	ok[changeJSON](f, &root, "POST", auth.PathAdminChannelRemove, `{"name":"$news"}`)
	if _, found := f.view.Lookup("$news"); found {
		t.Error("the view still shows $news once the remove answered")
	}
	if resp := f.admin(&root, "POST", auth.PathAdminChannelRemove, `{"name":"$news"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("remove again: %s, want 404", resp.Status)
	}
}

func TestAdminUsers(t *testing.T) {
	f := newAdminFixture(t)
	root := f.login("root")

	added := ok[changeJSON](f, &root, "POST", auth.PathAdminUsers, `{"username":"bob","groups":["g1"],"staff":true}`)
	if added.User == nil || added.User.Username != "bob" || !added.User.Staff || len(added.Password) < 20 {
		t.Fatalf("add: got %+v", added)
	}
	if _, err := f.store.Authenticate(t.Context(), "bob", added.Password); err != nil {
		t.Errorf("the generated password does not log bob in: %v", err)
	}
	if resp := f.admin(&root, "POST", auth.PathAdminUsers, `{"username":"bob"}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("add bob again: %s, want 409", resp.Status)
	}

	resp := f.admin(&root, "GET", auth.PathAdminUsers, "")
	raw, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(raw), "$2") || strings.Contains(strings.ToLower(string(raw)), "password") || strings.Contains(string(raw), "epoch") {
		t.Errorf("the user list shows a secret: %s", raw)
	}
	var list struct{ Users []instant.User }
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Users) != len(testUsers)+1 {
		t.Errorf("list: %s (%v)", raw, err)
	}

	// gina leaves group1: unsubscribed from $group1.
	got := ok[changeJSON](f, &root, "POST", auth.PathAdminUserUpdate, `{"username":"gina","groups":[]}`)
	if got.Revocations == nil || *got.Revocations != 1 {
		t.Errorf("update: got %+v, want 1 revocation", got)
	}
	f.revoker.take(t, "unsubscribe $group1 gina")

	reset := ok[changeJSON](f, &root, "POST", auth.PathAdminUserPassword, `{"username":"alice"}`)
	if reset.Revocations == nil || *reset.Revocations != 1 || reset.Password == "" {
		t.Errorf("password reset: got %+v", reset)
	}
	f.revoker.take(t, "disconnect alice")
	if _, err := f.store.Authenticate(t.Context(), "alice", reset.Password); err != nil {
		t.Errorf("the new password does not log alice in: %v", err)
	}

	removed := ok[changeJSON](f, &root, "POST", auth.PathAdminUserRemove, `{"username":"bob"}`)
	if removed.Revocations == nil || *removed.Revocations != 1 {
		t.Errorf("remove: got %+v", removed)
	}
	f.revoker.take(t, "disconnect bob")
	if resp := f.admin(&root, "POST", auth.PathAdminUserRemove, `{"username":"root"}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("removing oneself: %s, want 409", resp.Status)
	}
	for _, msg := range []string{"admin: user added", "admin: user changed", "admin: password reset", "admin: user removed"} {
		if e := f.logs.FilterMessage(msg).All(); len(e) != 1 || e[0].ContextMap()["by"] != "root" {
			t.Errorf("log %q: %v", msg, e)
		}
	}
	for _, e := range f.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, pw := range []string{added.Password, reset.Password} {
			if strings.Contains(line, pw) {
				t.Errorf("a generated password is in the log: %s", line)
			}
		}
	}
}

// deadLetter publishes a dead letter as the bridge does.
func (f *adminFixture) deadLetter(code, subject, body string, hdr nats.Header) {
	f.t.Helper()
	m := nats.NewMsg("instant.dead")
	m.Data = []byte(body)
	for k, v := range hdr {
		m.Header[k] = v
	}
	m.Header.Set(instant.HeaderError, code)
	m.Header.Set(instant.HeaderErrorMessage, "because "+code)
	m.Header.Set(instant.HeaderSubject, subject)
	if _, err := f.js.PublishMsg(f.t.Context(), m); err != nil {
		f.t.Fatal(err)
	}
}

func TestAdminDeadLetters(t *testing.T) {
	f := newAdminFixture(t)
	root, sam := f.login("root"), f.login("sam")
	f.deadLetter("unknown_channel", "instant.publish.nope", `{"message":"<img src=x onerror=alert(1)>"}`,
		nats.Header{nats.MsgIdHdr: {"m1"}, "X-Trace": {"t1"}})
	f.deadLetter("bad_envelope", "instant.publish", `{"channel":"public","bogus":1}`, nil)
	f.deadLetter("unknown_channel", "instant.publish", `{"channel":"other","message":"x"}`, nil)

	type list struct {
		Kept     bool
		Messages []auth.DeadLetter
	}
	all := ok[list](f, &sam, "GET", auth.PathAdminDead, "")
	if !all.Kept || len(all.Messages) != 3 || all.Messages[0].Seq != 3 || all.Messages[2].Channel != "nope" ||
		all.Messages[1].Channel != "public" || all.Messages[2].Body != `{"message":"<img src=x onerror=alert(1)>"}` ||
		all.Messages[2].Message != "because unknown_channel" || all.Messages[2].Subject != "instant.publish.nope" {
		t.Fatalf("list: %+v", all)
	}
	byCode := ok[list](f, &sam, "GET", auth.PathAdminDead+"?code=unknown_channel", "")
	byChannel := ok[list](f, &sam, "GET", auth.PathAdminDead+"?channel=nope", "")
	if len(byCode.Messages) != 2 || len(byChannel.Messages) != 1 || byChannel.Messages[0].Seq != 1 {
		t.Errorf("filters: by code %+v, by channel %+v", byCode.Messages, byChannel.Messages)
	}

	res := ok[struct {
		Results []struct {
			Seq   uint64
			OK    bool
			Error string
		}
	}](f, &root, "POST", auth.PathAdminDeadRepublish, `{"seqs":[1,99]}`)
	if len(res.Results) != 2 || !res.Results[0].OK || res.Results[1].OK || res.Results[1].Error == "" {
		t.Errorf("republish: %+v", res)
	}
	st, err := f.js.Stream(t.Context(), "INSTANT")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), "instant.publish.nope")
	if err != nil {
		t.Fatalf("the re-published envelope is not in the INSTANT stream: %v", err)
	}
	if string(m.Data) != all.Messages[2].Body || m.Header.Get("X-Trace") != "t1" || m.Header.Get(nats.MsgIdHdr) != "dead-1:m1" {
		t.Errorf("re-published: %q %v", m.Data, m.Header)
	}
	for k := range m.Header {
		if strings.HasPrefix(strings.ToLower(k), "instant-") {
			t.Errorf("re-published with header %s", k)
		}
	}

	if resp := f.admin(&root, "POST", auth.PathAdminDeadPurge, `{}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("purge without confirm: %s, want 400", resp.Status)
	}
	purged := ok[struct{ Purged uint64 }](f, &root, "POST", auth.PathAdminDeadPurge, `{"confirm":true}`)
	if purged.Purged != 3 {
		t.Errorf("purged %d, want 3", purged.Purged)
	}
	if after := ok[list](f, &sam, "GET", auth.PathAdminDead, ""); len(after.Messages) != 0 {
		t.Errorf("after purge: %+v", after)
	}
}

func TestAdminTraffic(t *testing.T) {
	f := newAdminFixture(t)
	sam := f.login("sam")
	f.bridge.Relayed.Add(5)
	f.bridge.Rejected.WithLabelValues("unknown_channel").Add(2)
	f.bridge.Rejected.WithLabelValues("bad_envelope").Inc()
	f.bridge.Retries.Inc()
	got := ok[struct {
		Available bool
		Time      int64
		Counters  *auth.Traffic
	}](f, &sam, "GET", auth.PathAdminTraffic, "")
	if !got.Available || got.Counters == nil || *got.Counters != (auth.Traffic{Relayed: 5, Rejected: 3, Retried: 1}) || got.Time == 0 {
		t.Errorf("traffic: %+v %+v", got, got.Counters)
	}
}
