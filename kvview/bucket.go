package kvview

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket says which bucket Open opens, and how to create it when it does
// not exist.
type Bucket struct {
	// Name is the bucket's name; Default when empty.
	Name string
	// Default is the name used when Name is empty.
	Default string
	// Description is set on a bucket Open creates.
	Description string
	// History is how many values per key a bucket Open creates keeps.
	// Defaults to 1.
	History uint8
	// Replicas is the replica count of a bucket Open creates (3 on a
	// 3-node cluster). Defaults to 1.
	Replicas int
	// TTL, when set, makes a bucket Open creates drop each key TTL after
	// its last write (the bridge's leases). Zero: keys never expire.
	TTL time.Duration
}

// Open returns the KV bucket b names, creating it (file storage, b's
// history, replicas and TTL) if it does not exist; an existing bucket is used as it is, and
// so is one another process creates meanwhile. Errors name the bucket and
// wrap those of package jetstream; a server without JetStream gives one
// wrapping jetstream.ErrJetStreamNotEnabled.
func Open(ctx context.Context, js jetstream.JetStream, b Bucket) (jetstream.KeyValue, error) {
	name := b.Name
	if name == "" {
		name = b.Default
	}
	if js == nil {
		return nil, fmt.Errorf("open bucket %q: nil JetStream", name)
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      name,
		Description: b.Description,
		History:     max(b.History, 1),
		Storage:     jetstream.FileStorage,
		Replicas:    b.Replicas,
		TTL:         b.TTL,
	}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if errors.Is(err, nats.ErrNoResponders) {
		// What a server without JetStream answers, as in js.AccountInfo.
		err = fmt.Errorf("%w: %w", jetstream.ErrJetStreamNotEnabled, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %q: %w", name, err)
	}
	return kv, nil
}

// Entries returns the current value of every key of the bucket kv, read
// once. The error wraps ctx's when ctx ends first.
func Entries(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer StopWatcher(w)
	m := make(map[string][]byte)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, errors.New("watch closed early")
			case e == nil:
				return m, nil
			}
			m[e.Key()] = e.Value()
		}
	}
}
