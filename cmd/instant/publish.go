package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/bridge"
)

// runPublish is `instant publish CHANNEL [MESSAGE] [flags]`.
func runPublish(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("publish")
	data := fs.String("data", "", "structured payload (JSON)")
	eventClass := fs.String("event-class", "", "event class tag")
	bucket := fs.String("bucket", "", "bucket tag")
	wait := fs.Bool("wait", false, "wait for the bridge's outcome and print it")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("publish", pos, 1, 2); err != nil {
		return err
	}
	if err := instant.ValidChannelName(pos[0]); err != nil {
		return usagef("publish: %v", err)
	}
	envelope := map[string]any{}
	if len(pos) == 2 {
		envelope["message"] = pos[1]
	}
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return usagef("publish: --data is not valid JSON")
		}
		envelope["data"] = json.RawMessage(*data)
	}
	if len(envelope) == 0 {
		return usagef("publish: give a MESSAGE or --data")
	}
	if *eventClass != "" {
		envelope["event_class"] = *eventClass
	}
	if *bucket != "" {
		envelope["bucket"] = *bucket
	}
	body, err := json.Marshal(envelope)
	if err != nil {
		return err
	}
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	nc, err := connectNATS(s.NATSURL, "instant publish", newLogger(env))
	if err != nil {
		return err
	}
	defer nc.Close()
	channel := pos[0]
	if *wait {
		return request(ctx, nc, s.Bridge.RequestSubject+"."+channel, body, s, env)
	}
	return publish(ctx, nc, s.Bridge.Subject+"."+channel, body, s, env)
}

// request sends body on the request subject and prints the bridge's reply;
// a refusal is an error.
func request(ctx context.Context, nc *natsConn, subject string, body []byte, s settings, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return fmt.Errorf("no answer on %s: %w (is `instant bridge` running?)", subject, err)
	}
	fmt.Fprintln(env.Stdout, string(msg.Data))
	var r bridge.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("unreadable answer on %s: %w", subject, err)
	}
	if !r.OK {
		if r.Error == nil {
			return fmt.Errorf("refused without a reason")
		}
		return fmt.Errorf("refused: %s: %s", r.Error.Code, r.Error.Message)
	}
	return nil
}

// publish hands body to NATS: in JetStream mode it waits for the stream's
// storage acknowledgement, in core mode for the server to have it.
func publish(ctx context.Context, nc *natsConn, subject string, body []byte, s settings, env *Env) error {
	if s.Bridge.Mode == bridge.ModeCore {
		if err := nc.Publish(subject, body); err != nil {
			return err
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "published on %s\n", subject)
		return nil
	}
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, subject, body)
	if err != nil {
		return fmt.Errorf("publishing on %s: %w (is the bridge's stream created? start `instant bridge` once)", subject, err)
	}
	fmt.Fprintf(env.Stdout, "stored in %s as #%d\n", ack.Stream, ack.Sequence)
	return nil
}
