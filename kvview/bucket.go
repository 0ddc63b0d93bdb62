package kvview

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OpenBucket returns the KV bucket named cfg.Bucket, creating it with cfg
// if it does not exist; an existing bucket is used as it is, and so is
// one another process creates meanwhile. Errors are those of package
// jetstream; a server without JetStream gives one wrapping
// jetstream.ErrJetStreamNotEnabled.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if errors.Is(err, nats.ErrNoResponders) {
		// What a server without JetStream answers, as in js.AccountInfo.
		return nil, fmt.Errorf("%w: %w", jetstream.ErrJetStreamNotEnabled, err)
	}
	return kv, err
}
