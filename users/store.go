// Package users is the built-in user store of the auth module: user
// names, bcrypt password hashes, groups, and the staff and superuser
// flags, kept in a NATS JetStream key-value bucket so that every auth
// process sees changes live (Store.Watch).
//
// One key per user (the user name encoded by kvview.Key) holds the JSON
// record {"username", "password_hash", "groups", "staff", "superuser",
// "epoch"}. Passwords are never stored nor returned in plain text, and
// User, what the API returns, has no hash at all.
package users

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/backoff"
	"github.com/instanthq/instant/kvview"
)

// DefaultBucket is the KV bucket used when Open is given none.
const DefaultBucket = "instant_users"

// Retries of a read-modify-write that lost a race against another writer
// of the same user: at most maxConflicts tries, the wait before each
// retry from backoff.Delay between conflictWaitMin and conflictWaitMax.
const (
	maxConflicts    = 64
	conflictWaitMin = time.Millisecond
	conflictWaitMax = 32 * time.Millisecond
)

// Store is the user store in a JetStream KV bucket. It is safe for
// concurrent use. It does not own the NATS connection: the caller closes
// it after the last use of the Store and of the Views it returned.
type Store struct {
	kv       jetstream.KeyValue
	cost     int
	replicas int
	dummy    []byte // hash of a random password, compared for unknown users
}

// Option tunes Open.
type Option func(*Store)

// WithCost sets the bcrypt cost of new password hashes, between
// bcrypt.MinCost and bcrypt.MaxCost. Defaults to bcrypt.DefaultCost.
// Existing hashes keep the cost they were made with.
func WithCost(cost int) Option { return func(s *Store) { s.cost = cost } }

// WithReplicas sets the replica count of the bucket when Open creates it
// (INSTANT_REPLICAS): 3 on a 3-node cluster. Defaults to 1.
func WithReplicas(n int) Option { return func(s *Store) { s.replicas = n } }

// Open returns the user store kept in the KV bucket named bucket
// (DefaultBucket when empty), creating the bucket (history 1, file
// storage) if it does not exist. One record per user: a removed user's
// password hash must not linger in the bucket's history (back the
// bucket up instead, README Operations). It hashes one random password, which
// takes as long as a login. Errors wrap those of package jetstream, e.g.
// jetstream.ErrJetStreamNotEnabled when the server has no JetStream.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Store, error) {
	s := &Store{cost: bcrypt.DefaultCost}
	for _, o := range opts {
		o(s)
	}
	if s.cost < bcrypt.MinCost || s.cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("users: bcrypt cost %d is outside [%d, %d]", s.cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	kv, err := kvview.Open(ctx, js, kvview.Bucket{Name: bucket, Default: DefaultBucket, Description: "instant users", History: 1, Replicas: s.replicas})
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	s.kv = kv
	if s.dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), s.cost); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return s, nil
}

// Bucket returns the name of the KV bucket.
func (s *Store) Bucket() string { return s.kv.Bucket() }

// record is the stored JSON of a user.
type record struct {
	Username     string   `json:"username"`
	PasswordHash string   `json:"password_hash"`
	Groups       []string `json:"groups,omitempty"`
	Staff        bool     `json:"staff"`
	Superuser    bool     `json:"superuser"`
	Epoch        string   `json:"epoch"`
}

func (r *record) user() instant.User {
	groups := r.Groups
	if groups == nil {
		groups = []string{} // "groups":[] in JSON
	}
	return instant.User{Identity: instant.Identity{Username: r.Username, Groups: groups, Staff: r.Staff, Superuser: r.Superuser}, Epoch: r.Epoch}
}

// newEpoch returns a fresh random session epoch.
func newEpoch() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// Add creates the user u (Username, Groups, Staff and Superuser; Epoch is
// ignored) with password. Errors wrap ErrExists when the name is taken,
// ErrBadUsername, ErrBadGroup or ErrBadPassword for invalid input.
func (s *Store) Add(ctx context.Context, u instant.User, password string) error {
	if err := instant.ValidUsername(u.Username); err != nil {
		return err
	}
	groups, err := instant.NormalizeGroups(u.Groups)
	if err != nil {
		return err
	}
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	r := record{Username: u.Username, PasswordHash: hash, Groups: groups, Staff: u.Staff, Superuser: u.Superuser, Epoch: newEpoch()}
	b, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("users: add %q: %w", u.Username, err)
	}
	if _, err := s.kv.Create(ctx, kvview.Key(u.Username), b); errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w: %q", ErrExists, u.Username)
	} else if err != nil {
		return fmt.Errorf("users: add %q: %w", u.Username, err)
	}
	return nil
}

func (s *Store) hash(password string) (string, error) {
	if err := ValidPassword(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("users: hash password: %w", err)
	}
	return string(h), nil
}

// SetPassword replaces the password of user username and gives the user a
// new Epoch, which ends the user's sessions. Errors wrap ErrNotFound or
// ErrBadPassword.
func (s *Store) SetPassword(ctx context.Context, username, password string) error {
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	return s.modify(ctx, username, func(r *record) {
		r.PasswordHash = hash
		r.Epoch = newEpoch()
	})
}

// Update replaces the groups and the staff and superuser flags of the
// existing user u.Username; the password and Epoch stay. Errors wrap
// ErrNotFound or ErrBadGroup.
func (s *Store) Update(ctx context.Context, u instant.User) error {
	groups, err := instant.NormalizeGroups(u.Groups)
	if err != nil {
		return err
	}
	return s.modify(ctx, u.Username, func(r *record) {
		r.Groups, r.Staff, r.Superuser = groups, u.Staff, u.Superuser
	})
}

// RevokeSessions gives user username a new Epoch, which ends every
// session of the user. The error wraps ErrNotFound when there is no such
// user.
func (s *Store) RevokeSessions(ctx context.Context, username string) error {
	return s.modify(ctx, username, func(r *record) { r.Epoch = newEpoch() })
}

// modify applies fn to the stored record of username and writes it back
// unless another writer changed it meanwhile, in which case it starts
// over.
func (s *Store) modify(ctx context.Context, username string, fn func(*record)) error {
	for attempt := range maxConflicts {
		if err := backoff.Wait(ctx, attempt, conflictWaitMin, conflictWaitMax); err != nil {
			return fmt.Errorf("users: update %q: %w", username, err)
		}
		r, rev, err := s.get(ctx, username)
		if err != nil {
			return err
		}
		fn(&r)
		b, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("users: update %q: %w", username, err)
		}
		_, err = s.kv.Update(ctx, kvview.Key(username), b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("users: update %q: %w", username, err)
		}
		return nil
	}
	return fmt.Errorf("users: update %q: too many concurrent changes", username)
}

// get returns the record of username and its revision.
func (s *Store) get(ctx context.Context, username string) (record, uint64, error) {
	if instant.ValidUsername(username) != nil {
		return record{}, 0, fmt.Errorf("%w: %q", ErrNotFound, username)
	}
	e, err := s.kv.Get(ctx, kvview.Key(username))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, fmt.Errorf("%w: %q", ErrNotFound, username)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("users: get %q: %w", username, err)
	}
	r, err := decodeEntry(e.Key(), e.Value())
	if err != nil {
		return record{}, 0, err
	}
	return r, e.Revision(), nil
}

// Delete removes user username. The error wraps ErrNotFound when there is
// none.
func (s *Store) Delete(ctx context.Context, username string) error {
	for attempt := range maxConflicts {
		if err := backoff.Wait(ctx, attempt, conflictWaitMin, conflictWaitMax); err != nil {
			return fmt.Errorf("users: delete %q: %w", username, err)
		}
		_, rev, err := s.get(ctx, username)
		if errors.Is(err, ErrBadEntry) {
			// Delete what cannot be read, too.
			e, gerr := s.kv.Get(ctx, kvview.Key(username))
			if gerr != nil {
				return err
			}
			rev, err = e.Revision(), nil
		}
		if err != nil {
			return err
		}
		err = s.kv.Delete(ctx, kvview.Key(username), jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("users: delete %q: %w", username, err)
		}
		return nil
	}
	return fmt.Errorf("users: delete %q: too many concurrent changes", username)
}

// Get returns user username. The error wraps ErrNotFound when there is
// none, and ErrBadEntry when the stored value is not a valid record.
func (s *Store) Get(ctx context.Context, username string) (instant.User, error) {
	r, _, err := s.get(ctx, username)
	if err != nil {
		return instant.User{}, err
	}
	return r.user(), nil
}

// List returns every user, sorted by name. Entries that cannot be decoded
// are left out.
func (s *Store) List(ctx context.Context) ([]instant.User, error) {
	entries, err := kvview.Entries(ctx, s.kv)
	if err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	us := make([]instant.User, 0, len(entries))
	for k, v := range entries {
		if r, err := decodeEntry(k, v); err == nil {
			us = append(us, r.user())
		}
	}
	slices.SortFunc(us, func(a, b instant.User) int { return strings.Compare(a.Username, b.Username) })
	return us, nil
}

// Authenticate returns user username when password is theirs, and an
// error wrapping ErrBadCredentials otherwise, whether the user is unknown
// or the password wrong. An unknown user costs one bcrypt comparison,
// like a known one, so that the time taken does not tell whether a user
// exists. A password longer than MaxPasswordLength is never right: bcrypt
// reads only that many bytes, so it would otherwise pass for any
// password it starts with. Other errors (NATS unreachable, a malformed
// record wrapping ErrBadEntry) do not hold the user name.
func (s *Store) Authenticate(ctx context.Context, username, password string) (instant.User, error) {
	if len(password) > MaxPasswordLength {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password[:MaxPasswordLength]))
		return instant.User{}, ErrBadCredentials
	}
	r, _, err := s.get(ctx, username)
	if errors.Is(err, ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return instant.User{}, ErrBadCredentials
	}
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		// Without the name, which may be a password typed in the wrong
		// field.
		if errors.Is(err, ErrBadEntry) {
			return instant.User{}, fmt.Errorf("users: authenticate: %w", ErrBadEntry)
		}
		return instant.User{}, fmt.Errorf("users: authenticate: %w", errors.Unwrap(err))
	}
	if bcrypt.CompareHashAndPassword([]byte(r.PasswordHash), []byte(password)) != nil {
		return instant.User{}, ErrBadCredentials
	}
	return r.user(), nil
}

// decodeEntry decodes the value stored under key. Unknown fields are
// ignored, so that a newer program may add some. The error wraps
// ErrBadEntry.
func decodeEntry(key string, value []byte) (record, error) {
	name, err := kvview.NameOfKey(key)
	if err != nil {
		return record{}, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	var r record
	if err := json.Unmarshal(value, &r); err != nil {
		return record{}, fmt.Errorf("%w %q: %w", ErrBadEntry, name, err)
	}
	if r.Username != name {
		return record{}, fmt.Errorf("%w %q: value names user %q", ErrBadEntry, name, r.Username)
	}
	if err := instant.ValidUsername(r.Username); err != nil {
		return record{}, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	if r.Groups, err = instant.NormalizeGroups(r.Groups); err != nil {
		return record{}, fmt.Errorf("%w %q: %w", ErrBadEntry, name, err)
	}
	if r.PasswordHash == "" || r.Epoch == "" {
		return record{}, fmt.Errorf("%w %q: no password hash or epoch", ErrBadEntry, name)
	}
	return r, nil
}
