// Package registry holds the channel registry: which channels exist, their
// access level, groups and whether they are active.
//
// The registry lives in a NATS JetStream key-value bucket (Store), one key
// per channel (see kvview.Key) whose value is the JSON of instant.Channel, so that
// every bridge and auth process sees changes live (Store.Watch returns a
// View kept up to date). Where NATS has no JetStream, a channels file
// (LoadFile) gives a fixed View (Static).
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/kvview"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the KV bucket used when Open is given none.
const DefaultBucket = "instant_channels"

// Errors of the registry; each wraps its kind in package instant.
var (
	// ErrNotFound is returned for a channel that is not in the registry.
	ErrNotFound = fmt.Errorf("registry: channel %w", instant.ErrNotFound)
	// ErrBadEntry is returned by Get for a stored value that is not a
	// valid channel.
	ErrBadEntry = fmt.Errorf("registry: %w", instant.ErrBadEntry)
)

// Store is the channel registry in a JetStream KV bucket. It is safe for
// concurrent use. It does not own the NATS connection: the caller closes
// it after the last use of the Store and of the Views it returned.
type Store struct {
	kv jetstream.KeyValue
}

// Option tunes Open.
type Option func(*kvview.Bucket)

// WithReplicas sets the replica count of the bucket when Open creates it
// (INSTANT_REPLICAS): 3 on a 3-node cluster. Defaults to 1.
func WithReplicas(n int) Option {
	return func(b *kvview.Bucket) { b.Replicas = n }
}

// History is the number of values kept per key when Open creates the
// bucket: the current one and earlier ones, to recover from a bad edit
// (`nats kv history`, then put the good value back).
const History = 10

// Open returns the registry kept in the KV bucket named bucket
// (DefaultBucket when empty), creating the bucket (History values per
// key, file storage, opts) if it does not exist; an existing bucket is
// used as it is (see kvview.Open). Errors wrap those of package jetstream, e.g.
// jetstream.ErrJetStreamNotEnabled when the server has no JetStream (use
// LoadFile and Static there).
func Open(ctx context.Context, js jetstream.JetStream, bucket string, opts ...Option) (*Store, error) {
	b := kvview.Bucket{Name: bucket, Default: DefaultBucket, Description: "instant channel registry", History: History}
	for _, o := range opts {
		o(&b)
	}
	kv, err := kvview.Open(ctx, js, b)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Bucket returns the name of the KV bucket.
func (s *Store) Bucket() string { return s.kv.Bucket() }

// Put adds or replaces the channel c. It returns c.Validate's error, which
// wraps instant.ErrBadChannel or instant.ErrBadLevel, for a malformed c
// without writing anything.
func (s *Store) Put(ctx context.Context, c instant.Channel) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("registry: put: %w", err)
	}
	return s.put(ctx, c)
}

func (s *Store) put(ctx context.Context, c instant.Channel) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("registry: put %q: %w", c.Name, err)
	}
	if _, err := s.kv.Put(ctx, kvview.Key(c.Name), b); err != nil {
		return fmt.Errorf("registry: put %q: %w", c.Name, err)
	}
	return nil
}

// Get returns the channel named name. The error wraps ErrNotFound when
// there is none, and ErrBadEntry when the stored value is not a valid
// channel.
func (s *Store) Get(ctx context.Context, name string) (instant.Channel, error) {
	if instant.ValidChannelName(name) != nil {
		return instant.Channel{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	e, err := s.kv.Get(ctx, kvview.Key(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return instant.Channel{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return instant.Channel{}, fmt.Errorf("registry: get %q: %w", name, err)
	}
	return decodeEntry(e.Key(), e.Value())
}

// Delete removes the channel named name. The error wraps ErrNotFound when
// there is none.
func (s *Store) Delete(ctx context.Context, name string) error {
	if instant.ValidChannelName(name) != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	key := kvview.Key(name)
	if _, err := s.kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	} else if err != nil {
		return fmt.Errorf("registry: delete %q: %w", name, err)
	}
	if err := s.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("registry: delete %q: %w", name, err)
	}
	return nil
}

// List returns every channel of the registry, sorted by name. Entries that
// cannot be decoded (see Watch) are left out.
func (s *Store) List(ctx context.Context) ([]instant.Channel, error) {
	entries, err := s.entries(ctx)
	if err != nil {
		return nil, err
	}
	chs := make([]instant.Channel, 0, len(entries))
	for k, v := range entries {
		if c, err := decodeEntry(k, v); err == nil {
			chs = append(chs, c)
		}
	}
	slices.SortFunc(chs, func(a, b instant.Channel) int { return strings.Compare(a.Name, b.Name) })
	return chs, nil
}

// Import writes chs into the registry: channels that are missing are
// added, channels stored with a different value are updated, identical
// ones are left alone (and counted in neither). With replace, every other
// key of the bucket is then deleted, including entries that cannot be
// decoded, so that the registry holds exactly chs.
//
// chs is validated as a whole before anything is written: a malformed
// channel or a duplicate name is an error naming its index, and nothing
// changes. A KV bucket has no transactions: if writing fails half-way, the
// changes made so far stay, and running Import again completes them.
func (s *Store) Import(ctx context.Context, chs []instant.Channel, replace bool) (added, updated, removed int, err error) {
	keep := make(map[string]int, len(chs))
	for i, c := range chs {
		if err := c.Validate(); err != nil {
			return 0, 0, 0, fmt.Errorf("registry: import: channel %d: %w", i, err)
		}
		key := kvview.Key(c.Name)
		if j, dup := keep[key]; dup {
			return 0, 0, 0, fmt.Errorf("registry: import: channel %d: %w %q: duplicate of channel %d", i, instant.ErrBadChannel, c.Name, j)
		}
		keep[key] = i
	}
	current, err := s.entries(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, c := range chs {
		raw, exists := current[kvview.Key(c.Name)]
		if exists {
			if old, err := decodeEntry(kvview.Key(c.Name), raw); err == nil && sameChannel(&old, &c) {
				continue
			}
		}
		if err := s.put(ctx, c); err != nil {
			return added, updated, removed, err
		}
		if exists {
			updated++
		} else {
			added++
		}
	}
	if !replace {
		return added, updated, removed, nil
	}
	for key := range current {
		if _, ok := keep[key]; ok {
			continue
		}
		if err := s.kv.Delete(ctx, key); err != nil {
			return added, updated, removed, fmt.Errorf("registry: import: delete key %q: %w", key, err)
		}
		removed++
	}
	return added, updated, removed, nil
}

// entries returns the current value of every key of the bucket.
func (s *Store) entries(ctx context.Context) (map[string][]byte, error) {
	m, err := kvview.Entries(ctx, s.kv)
	if err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	return m, nil
}

// Watch returns a View of the registry once it holds the whole current
// state, then keeps it up to date until ctx ends or the NATS connection
// closes (see kvview.Watch). A key or value that is not a valid channel
// is skipped as kvview.Watch says; an absent "active" field counts as
// true, as in a channels file.
func (s *Store) Watch(ctx context.Context) (*View, error) {
	v, err := kvview.Watch(ctx, s.kv, codec)
	if err != nil {
		return nil, fmt.Errorf("registry: watch: %w", err)
	}
	return v, nil
}

// wireChannel is the stored JSON of a channel. Active is a pointer so that
// an absent field can default to true.
type wireChannel struct {
	Name   string        `json:"name"`
	Level  instant.Level `json:"level"`
	Active *bool         `json:"active"`
	Groups []string      `json:"groups"`
}

// decodeEntry decodes the value stored under key. Unknown fields are
// ignored, so that a newer program may add some. The error wraps
// ErrBadEntry.
func decodeEntry(key string, value []byte) (instant.Channel, error) {
	name, err := kvview.NameOfKey(key)
	if err != nil {
		return instant.Channel{}, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	var w wireChannel
	if err := json.Unmarshal(value, &w); err != nil {
		return instant.Channel{}, fmt.Errorf("%w %q: %w", ErrBadEntry, name, err)
	}
	c := instant.Channel{Name: w.Name, Level: w.Level, Active: w.Active == nil || *w.Active}
	if len(w.Groups) > 0 {
		c.Groups = slices.Clip(w.Groups)
	}
	if err := c.Validate(); err != nil {
		return instant.Channel{}, fmt.Errorf("%w %q: %w", ErrBadEntry, name, err)
	}
	if c.Name != name {
		return instant.Channel{}, fmt.Errorf("%w %q: value names channel %q", ErrBadEntry, name, c.Name)
	}
	return c, nil
}
