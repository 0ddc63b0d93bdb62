package users_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/kvview"
	"github.com/instanthq/instant/users"
)

const password = "correct horse"

// newStore opens a store with the cheapest bcrypt cost on a fresh NATS
// server and returns it with the raw bucket.
func newStore(t *testing.T, opts ...users.Option) (*users.Store, jetstream.KeyValue) {
	t.Helper()
	srv := stacktest.NATS(t)
	nc := stacktest.Connect(t, srv.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) == 0 {
		opts = []users.Option{users.WithCost(bcrypt.MinCost)}
	}
	s, err := users.Open(t.Context(), js, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if s.Bucket() != users.DefaultBucket {
		t.Fatalf("bucket %q, want %q", s.Bucket(), users.DefaultBucket)
	}
	kv, err := js.KeyValue(t.Context(), users.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv
}

func add(t *testing.T, s *users.Store, u instant.User) {
	t.Helper()
	if err := s.Add(t.Context(), u, password); err != nil {
		t.Fatalf("add %q: %v", u.Username, err)
	}
}

func TestAddGetList(t *testing.T) {
	s, kv := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{"b", "a", "b"}, Staff: true}})
	add(t, s, instant.User{Identity: instant.Identity{Username: "$alice.x", Superuser: true}, Epoch: "ignored"})

	got, err := s.Get(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "bob" || !slices.Equal(got.Groups, []string{"a", "b"}) || !got.Staff || got.Superuser || got.Epoch == "" {
		t.Errorf("Get(bob) = %+v", got)
	}
	alice, err := s.Get(ctx, "$alice.x")
	if err != nil {
		t.Fatal(err)
	}
	if alice.Epoch == "ignored" || alice.Epoch == got.Epoch {
		t.Errorf("epoch %q not fresh", alice.Epoch)
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Username != "$alice.x" || list[1].Username != "bob" {
		t.Fatalf("List = %+v, want $alice.x, bob", list)
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"username":"$alice.x","groups":[],"staff":false,"superuser":true},{"username":"bob","groups":["a","b"],"staff":true,"superuser":false}]`
	if string(b) != want {
		t.Errorf("List JSON = %s, want %s", b, want)
	}

	// The stored record has a bcrypt hash, never the password.
	e, err := kv.Get(ctx, kvview.Key("bob"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), password) || !strings.Contains(string(e.Value()), `"password_hash":"$2a$`) {
		t.Errorf("stored record %s", e.Value())
	}
	if e.Key() != "bob" {
		t.Errorf("key %q", e.Key())
	}
	if _, err := kv.Get(ctx, "=24alice=2Ex"); err != nil {
		t.Errorf("key of $alice.x: %v", err)
	}
}

func TestAddRefusesInvalidInput(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name     string
		user     instant.User
		password string
		want     error
	}{
		{"empty name", instant.User{}, password, instant.ErrBadUsername},
		{"space", instant.User{Identity: instant.Identity{Username: "a b"}}, password, instant.ErrBadUsername},
		{"tab", instant.User{Identity: instant.Identity{Username: "a\tb"}}, password, instant.ErrBadUsername},
		{"control", instant.User{Identity: instant.Identity{Username: "a\x00"}}, password, instant.ErrBadUsername},
		{"no-break space", instant.User{Identity: instant.Identity{Username: "a\u00a0b"}}, password, instant.ErrBadUsername},
		{"not UTF-8", instant.User{Identity: instant.Identity{Username: "a\xff"}}, password, instant.ErrBadUsername},
		{"151 characters", instant.User{Identity: instant.Identity{Username: strings.Repeat("é", 151)}}, password, instant.ErrBadUsername},
		{"short password", instant.User{Identity: instant.Identity{Username: "a"}}, "1234567", users.ErrBadPassword},
		{"long password", instant.User{Identity: instant.Identity{Username: "a"}}, strings.Repeat("x", 73), users.ErrBadPassword},
		{"empty group", instant.User{Identity: instant.Identity{Username: "a", Groups: []string{""}}}, password, instant.ErrBadGroup},
		{"group with comma", instant.User{Identity: instant.Identity{Username: "a", Groups: []string{"a,b"}}}, password, instant.ErrBadGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Add(t.Context(), tt.user, tt.password)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q holds the password", err)
			}
		})
	}
	for _, name := range []string{strings.Repeat("é", 150), "user@example.com", "ns:$x", "日本"} {
		if err := s.Add(t.Context(), instant.User{Identity: instant.Identity{Username: name}}, strings.Repeat("p", 72)); err != nil {
			t.Errorf("Add(%q): %v", name, err)
		}
	}
}

func TestAddExistingDeleteNotFound(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	if err := s.Add(ctx, instant.User{Identity: instant.Identity{Username: "bob"}}, password); !errors.Is(err, users.ErrExists) {
		t.Fatalf("second Add: got %v, want %v", err, users.ErrExists)
	}
	if err := s.Delete(ctx, "nobody"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Delete(nobody): got %v, want %v", err, users.ErrNotFound)
	}
	if err := s.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "bob"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want %v", err, users.ErrNotFound)
	}
	if err := s.Delete(ctx, "bob"); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("second Delete: got %v, want %v", err, users.ErrNotFound)
	}
	// A deleted name can be taken again.
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	for _, op := range []struct {
		name string
		err  error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "x y"); return err }()},
		{"SetPassword", s.SetPassword(ctx, "nobody", password)},
		{"Update", s.Update(ctx, instant.User{Identity: instant.Identity{Username: "nobody"}})},
		{"RevokeSessions", s.RevokeSessions(ctx, "nobody")},
	} {
		if !errors.Is(op.err, users.ErrNotFound) {
			t.Errorf("%s of a missing user: got %v, want %v", op.name, op.err, users.ErrNotFound)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{"g"}}})
	u, err := s.Authenticate(ctx, "bob", password)
	if err != nil {
		t.Fatal(err)
	}
	if u.Username != "bob" || !slices.Equal(u.Groups, []string{"g"}) || u.Epoch == "" {
		t.Errorf("Authenticate = %+v", u)
	}
	for _, tt := range []struct{ user, password string }{
		{"bob", "wrong password"},
		{"bob", ""},
		{"bob", password + "x"},
		{"nobody", password},
		{"", password},
		{"x y", password},
		{"bob", strings.Repeat("x", 200)},
	} {
		if _, err := s.Authenticate(ctx, tt.user, tt.password); !errors.Is(err, users.ErrBadCredentials) {
			t.Errorf("Authenticate(%q, …): got %v, want %v", tt.user, err, users.ErrBadCredentials)
		}
	}
	// bcrypt reads 72 bytes: a longer password must not pass for the
	// 72-byte one it starts with.
	long := strings.Repeat("p", users.MaxPasswordLength)
	if err := s.Add(ctx, instant.User{Identity: instant.Identity{Username: "carol"}}, long); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "carol", long); err != nil {
		t.Errorf("72-byte password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "carol", long+"anything"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("72-byte password with a suffix: got %v, want %v", err, users.ErrBadCredentials)
	}
}

// TestAuthenticateTiming checks that an unknown user costs a bcrypt
// comparison too, so that the time does not tell whether a user exists.
func TestAuthenticateTiming(t *testing.T) {
	s, _ := newStore(t, users.WithCost(8))
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			if _, err := s.Authenticate(ctx, user, "wrong password"); !errors.Is(err, users.ErrBadCredentials) {
				t.Fatalf("Authenticate(%q): %v", user, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := fastest("bob"), fastest("nobody")
	if unknown < known/3 {
		t.Errorf("unknown user takes %v, known user %v: existence shows in the timing", unknown, known)
	}
}

func TestSetPasswordUpdateRevoke(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{"g1"}}})
	before, _ := s.Get(ctx, "bob")

	if err := s.Update(ctx, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{"g2", "g3"}, Staff: true, Superuser: true}, Epoch: "x"}); err != nil {
		t.Fatal(err)
	}
	u, _ := s.Get(ctx, "bob")
	if !slices.Equal(u.Groups, []string{"g2", "g3"}) || !u.Staff || !u.Superuser || u.Epoch != before.Epoch {
		t.Errorf("after Update: %+v (epoch before %q)", u, before.Epoch)
	}
	if _, err := s.Authenticate(ctx, "bob", password); err != nil {
		t.Errorf("password lost by Update: %v", err)
	}
	if err := s.Update(ctx, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{" "}}}); !errors.Is(err, instant.ErrBadGroup) {
		t.Errorf("Update with a blank group: got %v, want %v", err, instant.ErrBadGroup)
	}

	if err := s.SetPassword(ctx, "bob", "short"); !errors.Is(err, users.ErrBadPassword) {
		t.Errorf("SetPassword(short): got %v, want %v", err, users.ErrBadPassword)
	}
	if err := s.SetPassword(ctx, "bob", "new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "bob", password); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("old password: got %v, want %v", err, users.ErrBadCredentials)
	}
	u2, err := s.Authenticate(ctx, "bob", "new password")
	if err != nil {
		t.Fatal(err)
	}
	if u2.Epoch == u.Epoch || !slices.Equal(u2.Groups, u.Groups) {
		t.Errorf("after SetPassword: %+v, before %+v", u2, u)
	}

	if err := s.RevokeSessions(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	u3, _ := s.Get(ctx, "bob")
	if u3.Epoch == u2.Epoch {
		t.Errorf("RevokeSessions kept epoch %q", u3.Epoch)
	}
}

func TestConcurrentChanges(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		wg.Go(func() { errs <- s.RevokeSessions(ctx, "bob") })
		wg.Go(func() {
			errs <- s.Update(ctx, instant.User{Identity: instant.Identity{Username: "bob", Groups: []string{"g"}, Staff: i%2 == 0}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := s.Authenticate(ctx, "bob", password); err != nil {
		t.Errorf("password lost: %v", err)
	}
}

func TestMalformedEntries(t *testing.T) {
	s, kv := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	for key, value := range map[string]string{
		"broken":    `{`,
		"other":     `{"username":"someone","password_hash":"$2a$","epoch":"e"}`,
		"nohash":    `{"username":"nohash","epoch":"e"}`,
		"badgroups": `{"username":"badgroups","password_hash":"$2a$","epoch":"e","groups":[""]}`,
		"bad=key":   `{}`,
	} {
		if _, err := kv.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"broken", "other", "nohash", "badgroups"} {
		if _, err := s.Get(ctx, name); !errors.Is(err, users.ErrBadEntry) {
			t.Errorf("Get(%q): got %v, want %v", name, err, users.ErrBadEntry)
		}
		if _, err := s.Authenticate(ctx, name, password); err == nil {
			t.Errorf("Authenticate(%q) succeeded", name)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Username != "bob" {
		t.Errorf("List = %+v, want bob only", list)
	}
	if err := s.Delete(ctx, "broken"); err != nil {
		t.Errorf("Delete(broken): %v", err)
	}
}

func TestOpenRefusesBadCost(t *testing.T) {
	srv := stacktest.NATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := users.Open(t.Context(), js, "x", users.WithCost(3)); err == nil {
		t.Fatal("Open with cost 3 succeeded")
	}
	if _, err := users.Open(t.Context(), nil, ""); err == nil {
		t.Fatal("Open with nil JetStream succeeded")
	}
}
