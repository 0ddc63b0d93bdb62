package users_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/instanthq/instant"
)

func next(t *testing.T, ch <-chan instant.Change[instant.User]) instant.Change[instant.User] {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("Changes closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
	}
	return instant.Change[instant.User]{}
}

func TestWatch(t *testing.T) {
	s, kv := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "alice", Groups: []string{"g"}}})
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	if _, err := kv.Put(ctx, "broken", []byte("{")); err != nil {
		t.Fatal(err)
	}

	v, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := v.All()
	if len(all) != 2 || all[0].Username != "alice" || all[1].Username != "bob" {
		t.Fatalf("All = %+v, want alice, bob", all)
	}
	alice, ok := v.Lookup("alice")
	if !ok || !slices.Equal(alice.Groups, []string{"g"}) || alice.Epoch == "" {
		t.Fatalf("Lookup(alice) = %+v, %t", alice, ok)
	}
	changes := v.Changes()

	add(t, s, instant.User{Identity: instant.Identity{Username: "carol"}})
	if c := next(t, changes); c.Name != "carol" || c.Old != nil || c.New == nil || c.New.Username != "carol" {
		t.Errorf("add: %+v", c)
	}
	if err := s.Update(ctx, instant.User{Identity: instant.Identity{Username: "alice"}}); err != nil {
		t.Fatal(err)
	}
	c := next(t, changes)
	if c.Name != "alice" || c.Old == nil || c.New == nil || !slices.Contains(c.Old.Groups, "g") || slices.Contains(c.New.Groups, "g") || c.Old.Epoch != c.New.Epoch {
		t.Errorf("update: %+v", c)
	}
	if err := s.SetPassword(ctx, "alice", "another password"); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c.Old == nil || c.New == nil || c.Old.Epoch == c.New.Epoch {
		t.Errorf("SetPassword: %+v", c)
	}
	if err := s.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c.Name != "bob" || c.Old == nil || c.New != nil {
		t.Errorf("delete: %+v", c)
	}
	if _, ok := v.Lookup("bob"); ok {
		t.Error("bob still in the View")
	}
	if _, err := kv.Put(ctx, "carol", []byte("{")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c.Name != "carol" || c.New != nil {
		t.Errorf("broken value: %+v", c)
	}
}

// TestChangesMergeForSlowReader checks that changes waiting for a reader
// are merged per user and that a change that cancels out is dropped.
func TestChangesMergeForSlowReader(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	add(t, s, instant.User{Identity: instant.Identity{Username: "alice", Groups: []string{"g"}}})
	v, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes := v.Changes()
	// Not read: carol added (the reader's goroutine holds this change
	// until it is read), alice removed from g and added back, then bob
	// added.
	add(t, s, instant.User{Identity: instant.Identity{Username: "carol"}})
	if err := s.Update(ctx, instant.User{Identity: instant.Identity{Username: "alice"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, instant.User{Identity: instant.Identity{Username: "alice", Groups: []string{"g"}}}); err != nil {
		t.Fatal(err)
	}
	add(t, s, instant.User{Identity: instant.Identity{Username: "bob"}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := v.Lookup("bob"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob not seen within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, want := range []string{"carol", "bob"} {
		if c := next(t, changes); c.Name != want {
			t.Errorf("change of %q, want %q (alice's cancel out)", c.Name, want)
		}
	}
}

func TestWatchEndsWithContext(t *testing.T) {
	s, _ := newStore(t)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	v, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes := v.Changes()
	cancel()
	select {
	case _, ok := <-changes:
		if ok {
			t.Fatal("got a change, want Changes closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Changes not closed within 5s of the end of ctx")
	}
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed")
	}
	if _, ok := <-v.Changes(); ok {
		t.Fatal("Changes of an ended View is open")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before Watch", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := s.Watch(ctx2); err == nil {
		t.Fatal("Watch with an ended context succeeded")
	}
}
