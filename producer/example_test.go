package producer_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"

	"github.com/instanthq/instant/producer"
)

// Publish an event fire-and-forget, then ask for the outcome of another.
// (Not run by go test: it needs NATS and a bridge.)
func Example() {
	ctx := context.Background()
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	p, err := producer.New(nc, producer.Config{})
	if err != nil {
		log.Fatal(err)
	}
	// Returns once JetStream stored it; the bridge relays it even if
	// Centrifugo is down right now. The id makes a retry safe.
	order := map[string]any{"id": 42, "status": "shipped"}
	_, err = p.Publish(ctx, producer.Event{Channel: "$users", Message: "Order shipped", Data: order},
		producer.WithMsgID("order-42-shipped"))
	if err != nil {
		log.Fatal(err)
	}
	// Or wait for the outcome.
	res, err := p.Request(ctx, producer.Event{Channel: "public", Message: "hello"})
	var refused *producer.ReplyError
	switch {
	case errors.As(err, &refused) && refused.Code == producer.CodeUnknownChannel:
		log.Fatalf("register the channel first: %v", refused)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("stored at offset", res.Offset, "of", res.Channel)
}

// The envelope Publish sends: fields left empty stay out, and what the
// bridge would refuse is refused before it is sent.
func ExampleEvent_Marshal() {
	body, err := producer.Event{Channel: "$staff", Message: "Deploy finished", EventClass: "info",
		Data: map[string]string{"version": "1.4.2"}}.Marshal()
	fmt.Println(string(body), err)

	_, err = producer.Event{Channel: "ops.deploys", Message: "Deploy finished"}.Marshal()
	fmt.Println(errors.Is(err, producer.ErrBadEnvelope), err)
	// Output:
	// {"channel":"$staff","message":"Deploy finished","data":{"version":"1.4.2"},"event_class":"info"} <nil>
	// true bad envelope: channel name "ops.deploys" contains '.'
}
