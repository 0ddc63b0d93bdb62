package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/registry"
	"github.com/instanthq/instant/users"
)

// fakeRevoker records the calls, "unsubscribe CHANNEL USER" or
// "disconnect USER"; the first call for a user named "flaky" fails with a
// temporary error.
type fakeRevoker struct {
	mu    sync.Mutex
	calls []string
	flaky int
}

func (r *fakeRevoker) Unsubscribe(_ context.Context, channel, user string) error {
	return r.record(user, "unsubscribe "+channel+" "+user)
}

func (r *fakeRevoker) Disconnect(_ context.Context, user string) error {
	return r.record(user, "disconnect "+user)
}

func (r *fakeRevoker) record(user, call string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if user == "flaky" && r.flaky == 0 {
		r.flaky++
		return &centrifugo.StatusError{Status: http.StatusBadGateway}
	}
	r.calls = append(r.calls, call)
	return nil
}

// take waits until the calls recorded are exactly want (in any order),
// then forgets them.
func (r *fakeRevoker) take(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := slices.Sorted(slices.Values(r.calls))
		r.mu.Unlock()
		if len(got) >= len(want) {
			// Wait a moment for calls that should not come.
			time.Sleep(100 * time.Millisecond)
			r.mu.Lock()
			got = slices.Sorted(slices.Values(r.calls))
			r.calls = nil
			r.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Fatalf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls after 5s:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunRevokes(t *testing.T) {
	ctx := t.Context()
	store, js := openUsers(t)
	for _, u := range []instant.User{{Identity: instant.Identity{Username: "gail", Groups: []string{"group1"}}}, {Identity: instant.Identity{Username: "flaky"}}} {
		if err := store.Add(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	chStore, err := registry.Open(ctx, js, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range testChannels {
		if err := chStore.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	view, err := chStore.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := &fakeRevoker{}
	reg := prometheus.NewRegistry()
	srv, err := auth.New(auth.Config{HMACKey: hmacKey, IdentityKey: string(identityKey), Anonymous: true},
		auth.Deps{Channels: view, Users: store, UserView: watchUsers(t, store), Revoker: rev, Log: zaptest.NewLogger(t), Metrics: auth.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, ctx, srv)

	// An identity-JWT user in group1 gets tokens.
	tok := signIdentity(t, jwt.SigningMethodHS256, identityKey, jwt.MapClaims{"sub": "ext", "groups": []string{"group1"}, "exp": time.Now().Add(time.Hour).Unix()})
	r := httptest.NewRequest("POST", auth.PathGetToken, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("get_token: %d", w.Code)
	}

	put := func(c instant.Channel) {
		t.Helper()
		if err := chStore.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	everyone := func(channel string, extra ...string) []string {
		var out []string
		for _, u := range []string{"alice", "flaky", "gail", "gina", "root", "sam"} {
			out = append(out, "unsubscribe "+channel+" "+u)
		}
		for _, u := range extra {
			out = append(out, "unsubscribe "+channel+" "+u)
		}
		return out
	}

	steps := []struct {
		name   string
		change func()
		want   []string
	}{
		{"removed from group1", func() {
			if err := store.Update(ctx, instant.User{Identity: instant.Identity{Username: "gina"}}); err != nil {
				t.Fatal(err)
			}
		}, []string{"unsubscribe $group1 gina"}},
		{"added to a group", func() {
			if err := store.Update(ctx, instant.User{Identity: instant.Identity{Username: "alice", Groups: []string{"group2"}}}); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"staff flag dropped", func() {
			if err := store.Update(ctx, instant.User{Identity: instant.Identity{Username: "sam"}}); err != nil {
				t.Fatal(err)
			}
		}, []string{"unsubscribe $staff sam"}},
		{"password changed", func() {
			if err := store.SetPassword(ctx, "alice", "another password"); err != nil {
				t.Fatal(err)
			}
		}, []string{"disconnect alice"}},
		{"sessions revoked", func() {
			if err := store.RevokeSessions(ctx, "gail"); err != nil {
				t.Fatal(err)
			}
		}, []string{"disconnect gail"}},
		{"deleted, with a retry", func() {
			if err := store.Delete(ctx, "flaky"); err != nil {
				t.Fatal(err)
			}
		}, []string{"disconnect flaky"}},
		{"channel added", func() {
			put(instant.Channel{Name: "$new", Level: instant.LevelUsers, Active: true})
		}, nil},
		{"groups of a channel changed", func() {
			put(instant.Channel{Name: "$group1", Level: instant.LevelGroups, Groups: []string{"group2"}, Active: true})
		}, []string{"unsubscribe $group1 gail", "unsubscribe $group1 ext"}},
		{"level raised", func() {
			put(instant.Channel{Name: "$users", Level: instant.LevelSuperuser, Active: true})
		}, []string{"unsubscribe $users alice", "unsubscribe $users gail", "unsubscribe $users gina", "unsubscribe $users sam", "unsubscribe $users ext"}},
		{"channel deactivated", func() {
			put(instant.Channel{Name: "$new", Level: instant.LevelUsers})
		}, slices.DeleteFunc(everyone("$new", "ext"), func(s string) bool { return strings.HasSuffix(s, " flaky") })},
		{"public channel removed", func() {
			if err := chStore.Delete(ctx, "public"); err != nil {
				t.Fatal(err)
			}
		}, slices.DeleteFunc(everyone("public", "ext", ""), func(s string) bool { return strings.HasSuffix(s, " flaky") })},
	}
	for _, st := range steps {
		st.change()
		rev.take(t, st.want...)
		if t.Failed() {
			t.Fatalf("step %q", st.name)
		}
	}
	if got := counter(t, reg, "instant_auth_revocations_total", "disconnect", "ok"); got != 3 {
		t.Errorf("disconnect ok = %v, want 3", got)
	}
}

func TestRunWithoutRevoker(t *testing.T) {
	srv, err := auth.New(auth.Config{HMACKey: hmacKey}, auth.Deps{Channels: registry.Static(testChannels)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := auth.New(auth.Config{}, auth.Deps{Channels: registry.Static(nil)}); err == nil || !strings.Contains(err.Error(), "HMACKey") {
		t.Errorf("no HMAC key: %v", err)
	}
	if _, err := auth.New(auth.Config{HMACKey: "k"}, auth.Deps{}); err == nil {
		t.Error("no channels accepted")
	}
}

// runServer runs srv's revocation loop until the test ends and waits
// until it follows the stores.
func runServer(t *testing.T, ctx context.Context, srv *auth.Server) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("auth server not following the stores within 10s")
	}
}

// watchUsers returns a live view of store for Deps.UserView, followed
// until the test ends.
func watchUsers(t *testing.T, store *users.Store) *users.View {
	t.Helper()
	uv, err := store.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return uv
}

// openUsers opens a user store on a fresh in-process NATS server holding
// testUsers.
func openUsers(t *testing.T) (*users.Store, jetstream.JetStream) {
	t.Helper()
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := users.Open(t.Context(), js, "", users.WithCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range testUsers {
		if err := store.Add(t.Context(), u, password); err != nil {
			t.Fatal(err)
		}
	}
	return store, js
}
