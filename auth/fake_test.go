package auth_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
)

// testStore is what the handler tests need of a user store: what the
// server uses, and the changes an operator makes. *users.Store and
// *fakeUsers implement it.
type testStore interface {
	auth.Users
	SetPassword(ctx context.Context, username, password string) error
	Update(ctx context.Context, u instant.User) error
	Delete(ctx context.Context, username string) error
}

// fakeUsers is an in-memory user store for the handler tests, with the
// contract of auth.Users: no NATS server needed. Passwords are kept in
// plain text; every password change and revocation gives a new Epoch.
type fakeUsers struct {
	mu     sync.Mutex
	users  map[string]fakeUser
	epochs int
}

type fakeUser struct {
	user     instant.User
	password string
}

var _ testStore = (*fakeUsers)(nil)

// newFakeUsers returns a store holding us, each with password.
func newFakeUsers(us []instant.User, password string) *fakeUsers {
	f := &fakeUsers{users: make(map[string]fakeUser, len(us))}
	for _, u := range us {
		u.Groups, _ = instant.NormalizeGroups(u.Groups)
		if u.Groups == nil {
			u.Groups = []string{}
		}
		u.Epoch = f.newEpoch()
		f.users[u.Username] = fakeUser{user: u, password: password}
	}
	return f
}

// newEpoch returns a fresh epoch; f.mu is held or f is not shared yet.
func (f *fakeUsers) newEpoch() string {
	f.epochs++
	return fmt.Sprint(f.epochs)
}

func (f *fakeUsers) Authenticate(_ context.Context, username, password string) (instant.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[username]
	if !ok || u.password != password {
		return instant.User{}, fmt.Errorf("fake: %w", instant.ErrBadCredentials)
	}
	return u.user, nil
}

func (f *fakeUsers) Get(_ context.Context, username string) (instant.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[username]
	if !ok {
		return instant.User{}, fmt.Errorf("fake: user %q %w", username, instant.ErrNotFound)
	}
	return u.user, nil
}

// modify applies fn to user username.
func (f *fakeUsers) modify(username string, fn func(*fakeUser)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[username]
	if !ok {
		return fmt.Errorf("fake: user %q %w", username, instant.ErrNotFound)
	}
	fn(&u)
	f.users[username] = u
	return nil
}

func (f *fakeUsers) RevokeSessions(_ context.Context, username string) error {
	return f.modify(username, func(u *fakeUser) { u.user.Epoch = f.newEpoch() })
}

func (f *fakeUsers) SetPassword(_ context.Context, username, password string) error {
	return f.modify(username, func(u *fakeUser) { u.password, u.user.Epoch = password, f.newEpoch() })
}

func (f *fakeUsers) Update(_ context.Context, v instant.User) error {
	groups, err := instant.NormalizeGroups(v.Groups)
	if err != nil {
		return err
	}
	return f.modify(v.Username, func(u *fakeUser) {
		u.user.Groups = append([]string{}, groups...)
		u.user.Staff, u.user.Superuser = v.Staff, v.Superuser
	})
}

func (f *fakeUsers) Delete(_ context.Context, username string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[username]; !ok {
		return fmt.Errorf("fake: user %q %w", username, instant.ErrNotFound)
	}
	delete(f.users, username)
	return nil
}
