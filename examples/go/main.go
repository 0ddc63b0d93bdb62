// Command go publishes to instant from Go with package producer: one
// envelope fire-and-forget (stored by JetStream, relayed by the bridge
// later), then one on the request subject, printing where Centrifugo
// stored it.
//
//	go run ./examples/go [CHANNEL [MESSAGE]]
//
// NATS_URL names the server (default nats://127.0.0.1:4222). The exit
// status is 1, with one line on stderr, when NATS is unreachable or the
// bridge refuses the envelope.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/instanthq/instant/producer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	channel, message := "public", "Hello from Go"
	if len(args) > 0 {
		channel = args[0]
	}
	if len(args) > 1 {
		message = args[1]
	}
	url := cmp.Or(os.Getenv("NATS_URL"), nats.DefaultURL)
	nc, err := nats.Connect(url, nats.Name("instant example (go)"))
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	p, err := producer.New(nc, producer.Config{})
	if err != nil {
		return err
	}

	// Fire-and-forget: returns once JetStream stored it. The message id
	// becomes the publication id; JetStream drops a second envelope with
	// the same id, so a retry after a lost ack cannot duplicate it.
	id := fmt.Sprintf("%s-%d", channel, time.Now().UnixNano())
	ack, err := p.Publish(ctx, producer.Event{
		Channel:    channel,
		Message:    message,
		Data:       map[string]string{"from": "go"},
		EventClass: "info",
		Bucket:     "examples",
	}, producer.WithMsgID(id))
	if err != nil {
		return err
	}
	fmt.Printf("stored in %s as #%d (id %s)\n", ack.Stream, ack.Sequence, id)

	// Request: waits until Centrifugo accepted or the bridge refused it.
	res, err := p.Request(ctx, producer.Event{Channel: channel, Message: message, EventClass: "important"})
	var refused *producer.ReplyError
	switch {
	case errors.As(err, &refused): // refused.Code says why, refused.Temporary whether to retry
		return fmt.Errorf("refused: %w", refused)
	case err != nil:
		return err
	}
	fmt.Printf("relayed to %s as %s (offset %d)\n", res.Channel, res.ID, res.Offset)
	return nil
}
