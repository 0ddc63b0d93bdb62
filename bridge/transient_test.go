package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The setup retries what may go away by itself, including a stream not
// found (just created by another worker: on a fresh cluster three
// workers starting together saw it), and gives up on JetStream being off.
func TestSetupTransient(t *testing.T) {
	notFound := &jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeStreamNotFound, Description: "stream not found"}
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("bridge: stream INSTANT: %w", notFound), true},
		{fmt.Errorf("bridge: stream INSTANT: %w", jetstream.ErrStreamNotFound), true},
		{fmt.Errorf("bridge: stream INSTANT: %w", context.DeadlineExceeded), true},
		{nats.ErrNoResponders, true},
		// As nats.go reports a 503 status when a KV watch opens on a
		// cluster whose nodes just came back.
		{fmt.Errorf("registry: watch: %w", errors.New("nats: JetStream system temporarily unavailable")), true},
		{&jetstream.APIError{Code: 503, ErrorCode: jetstream.JSErrCodeJetStreamNotEnabled}, false},
		{errors.New("bridge: something else"), false},
	}
	for _, tt := range tests {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
