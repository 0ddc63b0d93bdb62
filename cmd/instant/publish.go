package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/kvview"
	"github.com/instanthq/instant/producer"
	"github.com/instanthq/instant/registry"
)

// runPublish is `instant publish CHANNEL [MESSAGE] [flags]`.
func runPublish(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("publish")
	data := fs.String("data", "", "structured payload (JSON)")
	eventClass := fs.String("event-class", "", "event class tag")
	bucket := fs.String("bucket", "", "bucket tag")
	wait := fs.Bool("wait", false, "wait for the bridge's outcome and print it")
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if err := instant.ValidChannelName(pos[0]); err != nil {
		return usagef("publish: %v", err)
	}
	ev := producer.Event{Channel: pos[0], EventClass: *eventClass, Bucket: *bucket}
	if len(pos) == 2 {
		ev.Message = pos[1]
	}
	if *data != "" {
		if !json.Valid([]byte(*data)) || strings.TrimSpace(*data) == "null" {
			return usagef("publish: --data is not a JSON value other than null")
		}
		ev.Data = json.RawMessage(*data)
	}
	if ev.Message == "" && ev.Data == nil {
		return usagef("publish: give a MESSAGE or --data")
	}
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	nc, err := connectNATS(s, "publish", newLogger(env, s))
	if err != nil {
		return err
	}
	defer nc.Close()
	if !*wait {
		if err := checkRegistered(ctx, nc.Conn, s, ev.Channel); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	core := s.Bridge.Mode == bridge.ModeCore
	p, err := producer.New(nc.Conn, producer.Config{
		Subject:        s.Bridge.Subject,
		RequestSubject: s.Bridge.RequestSubject,
		Core:           core,
		Timeout:        s.RequestTimeout,
	})
	if err != nil {
		return err
	}
	if *wait {
		return request(ctx, p, ev, env)
	}
	return publish(ctx, p, ev, core, env)
}

// request sends ev on the request subject and prints the bridge's reply;
// a refusal is an error.
func request(ctx context.Context, p *producer.Publisher, ev producer.Event, env *Env) error {
	accepted, err := p.Request(ctx, ev)
	var refused *producer.ReplyError
	switch {
	case errors.As(err, &refused):
		printReply(env, instant.Reply{Error: &instant.ReplyError{Code: instant.Code(refused.Code), Message: refused.Message}})
		return fmt.Errorf("refused: %w", err)
	case errors.Is(err, producer.ErrNoAnswer):
		return fmt.Errorf("%w (is `instant bridge` running?)", err)
	case err != nil:
		return err
	}
	printReply(env, instant.Reply{OK: true, Accepted: instant.Accepted(accepted)})
	return nil
}

// printReply prints r as the bridge sends it: one line of JSON.
func printReply(env *Env, r instant.Reply) {
	b, _ := json.Marshal(r) // strings and numbers only: it cannot fail
	fmt.Fprintln(env.Stdout, string(b))
}

// publish hands ev to NATS: in JetStream mode it waits for the stream's
// storage acknowledgement, in core mode for the server to have it.
func publish(ctx context.Context, p *producer.Publisher, ev producer.Event, core bool, env *Env) error {
	ack, err := p.Publish(ctx, ev)
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("%w (is the bridge's stream created? start `instant bridge` once)", err)
	case err != nil:
		return err
	case core:
		fmt.Fprintf(env.Stdout, "published on %s\n", ack.Subject)
	default:
		fmt.Fprintf(env.Stdout, "stored in %s as #%d\n", ack.Stream, ack.Sequence)
	}
	return nil
}

// checkRegistered refuses a fire-and-forget publish to a channel the
// registry lacks (the bridge would only dead-letter it), saying which
// registered name was probably meant. When the registry cannot be read
// (no bucket yet, no JetStream, no permission) it lets the bridge decide.
func checkRegistered(ctx context.Context, nc *nats.Conn, s settings, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a user without access to the bucket waits no longer
	defer cancel()
	var registered func(string) bool
	if s.ChannelsFile != "" {
		view, err := channelsFile(s)
		if err != nil {
			return err
		}
		registered = func(n string) bool { _, ok := view.Lookup(n); return ok }
	} else {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil
		}
		kv, err := js.KeyValue(ctx, registry.DefaultBucket)
		if err != nil {
			return nil
		}
		registered = func(n string) bool {
			_, err := kv.Get(ctx, kvview.Key(n))
			return !errors.Is(err, jetstream.ErrKeyNotFound)
		}
	}
	if registered(name) {
		return nil
	}
	return instant.UnknownChannelError(name, registered)
}
