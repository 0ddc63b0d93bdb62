package kvview

import (
	"context"
	"errors"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStreamFor returns a JetStream context on a new in-process server,
// with JetStream on or off.
func jetStreamFor(t *testing.T, enabled bool) jetstream.JetStream {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = enabled
	opts.StoreDir = t.TempDir()
	srv := natstest.RunServer(&opts)
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	js := jetStreamFor(t, true)
	kv, err := Open(ctx, js, Bucket{Default: "things", Description: "things", History: 5, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kv.Bucket() != "things" || st.History() != 5 {
		t.Errorf("bucket %q history %d, want things and 5", kv.Bucket(), st.History())
	}
	// An existing bucket is used as it is.
	kv, err = Open(ctx, js, Bucket{Name: "things", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 5 {
		t.Errorf("reopened: history %v, %v; want 5", st, err)
	}
	if _, err := kv.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if m, err := Entries(ctx, kv); err != nil || len(m) != 1 || string(m["a"]) != "1" {
		t.Errorf("Entries = %q, %v; want a=1", m, err)
	}

	if _, err := Open(ctx, js, Bucket{Name: "bad.bucket"}); err == nil {
		t.Error("Open(bad.bucket) succeeded, want an error")
	}
	if _, err := Open(ctx, nil, Bucket{Name: "x"}); err == nil {
		t.Error("Open(nil JetStream) succeeded, want an error")
	}
}

func TestOpenWithoutJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := Open(ctx, jetStreamFor(t, false), Bucket{Name: "x"}); !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		t.Errorf("got %v, want %v", err, jetstream.ErrJetStreamNotEnabled)
	}
}
