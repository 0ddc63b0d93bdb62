package registry

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
	"github.com/instanthq/instant/kvview"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const waitTimeout = 5 * time.Second

// runServer starts an in-process NATS server with JetStream and returns its
// client URL.
func runServer(t *testing.T) string {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Host = "127.0.0.1"
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = t.TempDir()
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// connect opens a new NATS connection, closed when the test ends.
func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// openStore opens the default bucket on a new connection.
func openStore(t *testing.T, url string) *Store {
	t.Helper()
	_, js := connect(t, url)
	s, err := Open(t.Context(), js, "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// rawKV returns the registry's bucket on a new connection, to write what
// Store never writes.
func rawKV(t *testing.T, url string) jetstream.KeyValue {
	t.Helper()
	_, js := connect(t, url)
	kv, err := js.KeyValue(t.Context(), DefaultBucket)
	if err != nil {
		t.Fatalf("KeyValue: %v", err)
	}
	return kv
}

func mustPut(t *testing.T, s *Store, cs ...instant.Channel) {
	t.Helper()
	for _, c := range cs {
		if err := s.Put(t.Context(), c); err != nil {
			t.Fatalf("Put(%+v): %v", c, err)
		}
	}
}

func names(chs []instant.Channel) string {
	var ns []string
	for _, c := range chs {
		ns = append(ns, c.Name)
	}
	return fmt.Sprint(ns)
}

var (
	public = instant.Channel{Name: "public", Level: instant.LevelPublic, Active: true}
	users  = instant.Channel{Name: "$users", Level: instant.LevelUsers, Active: true}
	staff  = instant.Channel{Name: "$staff", Level: instant.LevelStaff, Active: true}
	team   = instant.Channel{Name: "ns:$team", Level: instant.LevelGroups, Active: true, Groups: []string{"team", "ops"}}
)

func TestOpen(t *testing.T) {
	url := runServer(t)
	_, js := connect(t, url)
	ctx := t.Context()

	s, err := Open(ctx, js, "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := s.Bucket(); got != DefaultBucket {
		t.Errorf("Bucket() = %q, want %q", got, DefaultBucket)
	}
	mustPut(t, s, public)

	// Opening an existing bucket, from another connection, sees its data.
	again := openStore(t, url)
	if _, err := again.Get(ctx, "public"); err != nil {
		t.Errorf("Get through a second Store: %v", err)
	}

	other, err := Open(ctx, js, "other_channels")
	if err != nil {
		t.Fatalf("Open(other_channels): %v", err)
	}
	if got := other.Bucket(); got != "other_channels" {
		t.Errorf("Bucket() = %q, want other_channels", got)
	}
	if _, err := other.Get(ctx, "public"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get in another bucket: got %v, want ErrNotFound", err)
	}

	if _, err := Open(ctx, js, "bad.bucket"); err == nil {
		t.Error("Open(bad.bucket) succeeded, want an error")
	}
	if _, err := Open(ctx, nil, ""); err == nil {
		t.Error("Open(nil JetStream) succeeded, want an error")
	}
}

func TestStorePutGetDeleteList(t *testing.T) {
	s := openStore(t, runServer(t))
	ctx := t.Context()

	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty registry = %v, %v; want none", got, err)
	}
	mustPut(t, s, users, public, team, staff)

	for _, want := range []instant.Channel{public, users, staff, team} {
		got, err := s.Get(ctx, want.Name)
		if err != nil {
			t.Fatalf("Get(%q): %v", want.Name, err)
		}
		if !sameChannel(&got, &want) {
			t.Errorf("Get(%q) = %+v, want %+v", want.Name, got, want)
		}
	}

	got, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []instant.Channel{staff, users, team, public}; !equalChannels(got, want) {
		t.Errorf("List = %+v, want %+v (sorted by name)", got, want)
	}

	// Put replaces.
	inactive := users
	inactive.Active = false
	mustPut(t, s, inactive)
	if got, _ := s.Get(ctx, "$users"); got.Active {
		t.Errorf("after deactivation Get = %+v, want inactive", got)
	}

	if err := s.Delete(ctx, "$users"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "$users"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "$users"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	if got, _ := s.List(ctx); names(got) != "[$staff ns:$team public]" {
		t.Errorf("List after Delete = %s, want [$staff ns:$team public]", names(got))
	}

	// The longest name, with every byte escaped.
	long := instant.Channel{Name: "$" + strings.Repeat("é", (instant.MaxChannelLength-1)/2), Level: instant.LevelUsers, Active: true}
	mustPut(t, s, long)
	if got, err := s.Get(ctx, long.Name); err != nil || !sameChannel(&got, &long) {
		t.Errorf("Get(long name) = %+v, %v; want %+v", got, err, long)
	}

	for _, name := range []string{"nope", "", "a.b", "a b", strings.Repeat("x", instant.MaxChannelLength+1)} {
		if _, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): got %v, want ErrNotFound", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q): got %v, want ErrNotFound", name, err)
		}
	}
}

func TestStorePutRejectsInvalid(t *testing.T) {
	s := openStore(t, runServer(t))
	tests := []struct {
		name    string
		c       instant.Channel
		wantErr error
	}{
		{"no prefix", instant.Channel{Name: "users", Level: instant.LevelUsers, Active: true}, instant.ErrBadChannel},
		{"public with prefix", instant.Channel{Name: "$x", Level: instant.LevelPublic}, instant.ErrBadChannel},
		{"dot", instant.Channel{Name: "a.b", Level: instant.LevelPublic}, instant.ErrBadChannel},
		{"empty", instant.Channel{Level: instant.LevelPublic}, instant.ErrBadChannel},
		{"bad level", instant.Channel{Name: "x", Level: "admin"}, instant.ErrBadLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(t.Context(), tt.c); !errors.Is(err, tt.wantErr) {
				t.Errorf("Put(%+v): got %v, want %v", tt.c, err, tt.wantErr)
			}
		})
	}
	if got, _ := s.List(t.Context()); len(got) != 0 {
		t.Errorf("List after rejected puts = %+v, want none", got)
	}
}

func TestStoreGetBadEntry(t *testing.T) {
	url := runServer(t)
	s := openStore(t, url)
	kv := rawKV(t, url)
	ctx := t.Context()
	if _, err := kv.Put(ctx, kvview.Key("public"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "public"); !errors.Is(err, ErrBadEntry) {
		t.Errorf("Get of a malformed value: got %v, want ErrBadEntry", err)
	}
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Errorf("List = %+v, %v; want the malformed entry left out", got, err)
	}
	if err := s.Delete(ctx, "public"); err != nil {
		t.Errorf("Delete of a malformed entry: %v", err)
	}
}

func TestStoreImport(t *testing.T) {
	url := runServer(t)
	s := openStore(t, url)
	kv := rawKV(t, url)
	ctx := t.Context()

	staffInactive := staff
	staffInactive.Active = false
	teamRegrouped := team
	teamRegrouped.Groups = []string{"team"}

	type counts struct{ added, updated, removed int }
	steps := []struct {
		name    string
		chs     []instant.Channel
		replace bool
		want    counts
		list    string
	}{
		{"into empty", []instant.Channel{public, users}, false, counts{2, 0, 0}, "[$users public]"},
		{"same again", []instant.Channel{public, users}, false, counts{0, 0, 0}, "[$users public]"},
		{"upsert", []instant.Channel{staff, users, team}, false, counts{2, 0, 0}, "[$staff $users ns:$team public]"},
		{"update without replace", []instant.Channel{staffInactive, teamRegrouped}, false, counts{0, 2, 0}, "[$staff $users ns:$team public]"},
		{"replace", []instant.Channel{public, teamRegrouped}, true, counts{0, 0, 2}, "[ns:$team public]"},
		{"replace and update", []instant.Channel{team, users}, true, counts{1, 1, 1}, "[$users ns:$team]"},
		{"replace with nothing", nil, true, counts{0, 0, 2}, "[]"},
	}
	for _, st := range steps {
		a, u, r, err := s.Import(ctx, st.chs, st.replace)
		if err != nil {
			t.Fatalf("%s: Import: %v", st.name, err)
		}
		if got := (counts{a, u, r}); got != st.want {
			t.Errorf("%s: Import = %+v, want %+v", st.name, got, st.want)
		}
		got, err := s.List(ctx)
		if err != nil {
			t.Fatalf("%s: List: %v", st.name, err)
		}
		if names(got) != st.list {
			t.Errorf("%s: List = %s, want %s", st.name, names(got), st.list)
		}
		for _, c := range st.chs {
			if g, err := s.Get(ctx, c.Name); err != nil || !sameChannel(&g, &c) {
				t.Errorf("%s: Get(%q) = %+v, %v; want %+v", st.name, c.Name, g, err, c)
			}
		}
	}

	// Replace removes entries that cannot be decoded too, and rewrites a
	// malformed value of an imported channel.
	for key, value := range map[string]string{"=zz": "{}", kvview.Key("old"): "garbage", kvview.Key("public"): "garbage"} {
		if _, err := kv.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	a, u, r, err := s.Import(ctx, []instant.Channel{public}, true)
	if err != nil {
		t.Fatalf("Import over malformed entries: %v", err)
	}
	if a != 0 || u != 1 || r != 2 {
		t.Errorf("Import over malformed entries = %d, %d, %d; want 0 added, 1 updated, 2 removed", a, u, r)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || fmt.Sprint(keys) != "[public]" {
		t.Errorf("keys after replace = %v, %v; want [public]", keys, err)
	}
}

func TestStoreImportRejects(t *testing.T) {
	s := openStore(t, runServer(t))
	ctx := t.Context()
	mustPut(t, s, public)

	dupe := public
	dupe.Active = false
	tests := []struct {
		name    string
		chs     []instant.Channel
		wantErr error
		wantMsg string
	}{
		{"duplicate", []instant.Channel{users, public, dupe}, instant.ErrBadChannel, "channel 2"},
		{"invalid", []instant.Channel{users, {Name: "staff", Level: instant.LevelStaff}}, instant.ErrBadChannel, "channel 1"},
		{"bad level", []instant.Channel{{Name: "x", Level: "nope"}}, instant.ErrBadLevel, "channel 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := s.Import(ctx, tt.chs, true)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Import: got %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Import error %q does not name %q", err, tt.wantMsg)
			}
			if got, _ := s.List(ctx); !equalChannels(got, []instant.Channel{public}) {
				t.Errorf("rejected Import changed the registry: %+v", got)
			}
		})
	}
}

// nextChange returns the next change from ch, failing after a deadline.
func nextChange(t *testing.T, ch <-chan Change) Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("Changes channel closed")
		}
		return c
	case <-time.After(waitTimeout):
		t.Fatalf("no change within %v", waitTimeout)
	}
	return Change{}
}

func wantChange(t *testing.T, got Change, name string, old, new *instant.Channel) {
	t.Helper()
	if got.Name != name || !sameChannel(got.Old, old) || !sameChannel(got.New, new) {
		t.Errorf("change = %s, want %s", fmtChanges([]Change{got}), fmtChanges([]Change{{Name: name, Old: old, New: new}}))
	}
}

func TestWatch(t *testing.T) {
	url := runServer(t)
	watched := openStore(t, url)
	writer := openStore(t, url) // another connection
	kv := rawKV(t, url)
	mustPut(t, writer, public, users)

	v, err := watched.Watch(t.Context())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	// The initial state is loaded when Watch returns.
	if got := v.All(); !equalChannels(got, []instant.Channel{users, public}) {
		t.Fatalf("initial All = %+v, want [$users public]", got)
	}
	changes := v.Changes()

	lookup := func(name string, want *instant.Channel) func() bool {
		return func() bool {
			got, ok := v.Lookup(name)
			if want == nil {
				return !ok
			}
			return ok && sameChannel(&got, want)
		}
	}

	// Put.
	mustPut(t, writer, team)
	stacktest.WaitFor(t, waitTimeout, "the View to see a put", lookup(team.Name, &team))
	wantChange(t, nextChange(t, changes), team.Name, nil, &team)

	// Deactivate.
	inactive := team
	inactive.Active = false
	mustPut(t, writer, inactive)
	stacktest.WaitFor(t, waitTimeout, "the View to see a deactivation", lookup(team.Name, &inactive))
	wantChange(t, nextChange(t, changes), team.Name, &team, &inactive)

	// Groups changed.
	regrouped := inactive
	regrouped.Groups = []string{"ops"}
	mustPut(t, writer, regrouped)
	stacktest.WaitFor(t, waitTimeout, "the View to see new groups", lookup(team.Name, &regrouped))
	wantChange(t, nextChange(t, changes), team.Name, &inactive, &regrouped)

	// Delete.
	if err := writer.Delete(t.Context(), team.Name); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, waitTimeout, "the View to see a delete", lookup(team.Name, nil))
	wantChange(t, nextChange(t, changes), team.Name, &regrouped, nil)

	// Purge.
	if err := kv.Purge(t.Context(), kvview.Key(users.Name)); err != nil {
		t.Fatal(err)
	}
	stacktest.WaitFor(t, waitTimeout, "the View to see a purge", lookup(users.Name, nil))
	wantChange(t, nextChange(t, changes), users.Name, &users, nil)

	if got := v.All(); !equalChannels(got, []instant.Channel{public}) {
		t.Errorf("final All = %+v, want [public]", got)
	}
	// A second View on the same bucket agrees.
	v2, err := writer.Watch(t.Context())
	if err != nil {
		t.Fatalf("second Watch: %v", err)
	}
	if got := v2.All(); !equalChannels(got, v.All()) {
		t.Errorf("second View All = %+v, want %+v", got, v.All())
	}
}

func TestWatchMalformedEntries(t *testing.T) {
	url := runServer(t)
	s := openStore(t, url)
	kv := rawKV(t, url)
	ctx := t.Context()
	mustPut(t, s, public, users)
	// Malformed before Watch: skipped while loading.
	if _, err := kv.Put(ctx, "=zz", []byte(`{"name":"x","level":"public"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, kvview.Key("$users"), []byte(`{"name":"$users","level":"admin"}`)); err != nil {
		t.Fatal(err)
	}

	v, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := v.All(); !equalChannels(got, []instant.Channel{public}) {
		t.Fatalf("initial All = %+v, want [public]", got)
	}

	writes := []struct{ key, value string }{
		{kvview.Key("public"), "not json"},                             // removes public
		{kvview.Key("other"), `{"name":"another","level":"public"}`},   // name does not match key
		{"a.b", `{"name":"a.b","level":"public"}`},                     // not a key of ours
		{kvview.Key("$x"), `{"name":"$x","level":"public"}`},           // invalid channel
		{kvview.Key("news"), `{"name":"news","level":"public","x":1}`}, // unknown field: accepted, active by default
		{kvview.Key("done"), `{"name":"done","level":"public","active":false}`},
	}
	for _, w := range writes {
		if _, err := kv.Put(ctx, w.key, []byte(w.value)); err != nil {
			t.Fatalf("put %q: %v", w.key, err)
		}
	}
	stacktest.WaitFor(t, waitTimeout, "the last write", func() bool { _, ok := v.Lookup("done"); return ok })
	want := []instant.Channel{
		{Name: "done", Level: instant.LevelPublic, Active: false},
		{Name: "news", Level: instant.LevelPublic, Active: true},
	}
	if got := v.All(); !equalChannels(got, want) {
		t.Errorf("All = %+v, want %+v", got, want)
	}
}

// TestWatchSlowReader checks that a reader that does not read its Changes
// channel blocks neither the View nor other readers, and later gets the
// net effect.
func TestWatchSlowReader(t *testing.T) {
	url := runServer(t)
	watched := openStore(t, url)
	writer := openStore(t, url)
	ctx := t.Context()

	v, err := watched.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	slow := v.Changes()
	var fastLast atomic.Pointer[Change]
	go func() {
		for c := range v.Changes() {
			if c.Name == "$team" {
				fastLast.Store(&c)
			}
		}
	}()

	const puts = 600 // more than the KV watcher buffers
	last := instant.Channel{Name: "$team", Level: instant.LevelGroups, Active: true}
	for i := range puts {
		last.Groups = []string{fmt.Sprintf("g%d", i)}
		mustPut(t, writer, last)
	}
	mustPut(t, writer, public)
	stacktest.WaitFor(t, waitTimeout, "the View to see every put", func() bool {
		c, ok := v.Lookup(last.Name)
		_, okPublic := v.Lookup("public")
		return ok && okPublic && sameChannel(&c, &last)
	})
	stacktest.WaitFor(t, waitTimeout, "the other reader to see the last put", func() bool {
		c := fastLast.Load()
		return c != nil && sameChannel(c.New, &last)
	})

	// The slow reader gets at most two changes per name (one may have been
	// taken before the burst) and ends on the final state.
	got := map[string]Change{}
	for n := 0; ; n++ {
		if n >= 4 {
			t.Fatalf("slow reader got more than 4 changes: %s", fmt.Sprint(got))
		}
		c := nextChange(t, slow)
		got[c.Name] = c
		if len(got) == 2 && sameChannel(got[last.Name].New, &last) && got["public"].New != nil {
			break
		}
	}
}

func TestWatchStopsGoroutines(t *testing.T) {
	url := runServer(t)
	s := openStore(t, url)
	writer := openStore(t, url)
	mustPut(t, writer, public)
	if _, err := s.Get(t.Context(), "public"); err != nil { // warm up the connection
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	v, err := s.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	read, unread := v.Changes(), v.Changes()
	mustPut(t, writer, users)
	wantChange(t, nextChange(t, read), users.Name, nil, &users)
	stacktest.WaitFor(t, waitTimeout, "the unread change to be pending", func() bool { _, ok := v.Lookup(users.Name); return ok })
	if runtime.NumGoroutine() <= baseline {
		t.Fatalf("goroutines = %d while watching, want more than the baseline %d", runtime.NumGoroutine(), baseline)
	}

	// List and Import watch the bucket too, with a context that outlives
	// them.
	for range 3 {
		if _, err := s.List(context.Background()); err != nil {
			t.Fatalf("List: %v", err)
		}
		if _, _, _, err := s.Import(context.Background(), []instant.Channel{public}, false); err != nil {
			t.Fatalf("Import: %v", err)
		}
	}
	cancel()
	stacktest.WaitFor(t, waitTimeout, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	for _, ch := range []<-chan Change{read, unread} {
		stacktest.WaitFor(t, waitTimeout, "Changes to be closed", func() bool {
			select {
			case _, ok := <-ch:
				return !ok
			default:
				return false
			}
		})
	}
	if _, ok := <-v.Changes(); ok {
		t.Error("Changes after the watch ended is not closed")
	}
	// The View keeps its last state.
	if _, ok := v.Lookup(users.Name); !ok {
		t.Errorf("Lookup(%q) after cancel: not found", users.Name)
	}
}

func TestWatchConnectionClosed(t *testing.T) {
	url := runServer(t)
	nc, js := connect(t, url)
	s, err := Open(t.Context(), js, "")
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, public)
	v, err := s.Watch(t.Context())
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	changes := v.Changes()
	nc.Close()
	stacktest.WaitFor(t, waitTimeout, "Changes to be closed", func() bool {
		select {
		case _, ok := <-changes:
			return !ok
		default:
			return false
		}
	})
	if _, ok := v.Lookup("public"); !ok {
		t.Error("Lookup after the connection closed: not found")
	}
}

func TestWatchCanceled(t *testing.T) {
	s := openStore(t, runServer(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if v, err := s.Watch(ctx); err == nil {
		t.Errorf("Watch with a canceled context = %v, want an error", v)
	}
}
