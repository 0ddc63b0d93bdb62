// Package producer publishes instant envelopes on NATS: what a Go backend
// imports to push events to browsers through the bridge.
//
// It is a module of its own, github.com/instanthq/instant/producer, that
// requires nats.go only: importing it adds nothing of the bridge, the
// auth module or their tests to a backend's module graph. It therefore
// carries the part of the wire contract a producer sees (the envelope
// rules it checks before sending, Accepted and ReplyError); the instant
// module tests that both sides agree.
//
//	p, err := producer.New(nc, producer.Config{})
//	ack, err := p.Publish(ctx, producer.Event{Channel: "public", Message: "Hello"})
//	res, err := p.Request(ctx, producer.Event{Channel: "$users", Data: order})
package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one publish envelope. Empty strings and a nil Data are left
// out of the JSON body.
type Event struct {
	// Channel is the target channel, e.g. "public" or "$users"; it is also
	// the suffix of the subject the envelope goes on. Required.
	Channel string `json:"channel"`
	// Message is human text. Message or Data is required.
	Message string `json:"message,omitempty"`
	// Data is the structured payload: any value encoding/json marshals
	// (json.RawMessage for JSON at hand).
	Data any `json:"data,omitempty"`
	// EventClass is a free tag for client-side routing, e.g. "important".
	EventClass string `json:"event_class,omitempty"`
	// Bucket is a free tag for client-side grouping.
	Bucket string `json:"bucket,omitempty"`
	// Site overrides the bridge's SITE_NAME.
	Site string `json:"site,omitempty"`
	// Level, when set, is the level the producer expects the channel to
	// have: "public", "users", "groups", "staff" or "superuser". The bridge
	// refuses the envelope (level_mismatch) if the registry says otherwise.
	Level string `json:"level,omitempty"`
}

// Marshal returns the envelope body. Errors wrap ErrBadEnvelope when ev is
// not an envelope the bridge would parse (no or an invalid channel,
// neither message nor data, an unknown level).
func (ev Event) Marshal() ([]byte, error) {
	w := wireEvent{Channel: ev.Channel, Message: ev.Message, EventClass: ev.EventClass, Bucket: ev.Bucket, Site: ev.Site, Level: ev.Level}
	if ev.Data != nil {
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadEnvelope, err)
		}
		if string(data) != "null" {
			w.Data = data
		}
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// wireEvent is Event with its Data encoded.
type wireEvent struct {
	Channel    string          `json:"channel"`
	Message    string          `json:"message,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	EventClass string          `json:"event_class,omitempty"`
	Bucket     string          `json:"bucket,omitempty"`
	Site       string          `json:"site,omitempty"`
	Level      string          `json:"level,omitempty"`
}

// The defaults of Config, the bridge's own (instant.DefaultSubject and
// instant.DefaultRequestSubject, which a test of the instant module
// checks these against).
const (
	DefaultSubject        = "instant.publish"
	DefaultRequestSubject = "instant.request"
	DefaultTimeout        = 10 * time.Second
)

// Config configures a Publisher. The zero value of a field means its
// default; the zero Config suits a bridge with the default settings.
type Config struct {
	// Subject is the publish subject prefix, the bridge's INSTANT_SUBJECT.
	// Defaults to DefaultSubject, "instant.publish".
	Subject string
	// RequestSubject is the request subject prefix, the bridge's
	// INSTANT_REQUEST_SUBJECT. Defaults to DefaultRequestSubject,
	// "instant.request".
	RequestSubject string
	// Core makes Publish skip JetStream: it returns once the NATS server
	// has the message instead of waiting for the INSTANT stream's storage
	// acknowledgement. Set it when the bridge runs with INSTANT_MODE=core.
	Core bool
	// Timeout bounds a Publish or Request whose context has no deadline.
	// Defaults to DefaultTimeout, 10s.
	Timeout time.Duration
}

// Validate sets the defaults, then reports the invalid fields, each as
// "producer: Field: what is wrong".
func (c *Config) Validate() error {
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.RequestSubject == "" {
		c.RequestSubject = DefaultRequestSubject
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	var errs []error
	for _, f := range []struct{ name, subject string }{{"Subject", c.Subject}, {"RequestSubject", c.RequestSubject}} {
		if !literalSubject(f.subject) {
			errs = append(errs, fmt.Errorf("producer: %s: %q is not a literal subject", f.name, f.subject))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("producer: Timeout: %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Publisher publishes envelopes on one NATS connection, which the caller
// keeps owning and closes. It is safe for concurrent use.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream // nil with Config.Core
	cfg Config
}

// New returns a Publisher on nc, or the error of cfg.Validate.
func New(nc *nats.Conn, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Publisher{nc: nc, cfg: cfg}
	if !cfg.Core {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("producer: %w", err)
		}
		p.js = js
	}
	return p, nil
}

// Option tunes the message of one Publish or Request.
type Option func(*nats.Msg)

// WithMsgID sets the Nats-Msg-Id header: JetStream drops a second envelope
// with the same id published within its duplicate window (2 minutes by
// default) — on any channel of the stream, so use ids other producers
// cannot guess —, and the publication id browsers see is derived from it
// and the channel.
func WithMsgID(id string) Option {
	return func(m *nats.Msg) { m.Header.Set(nats.MsgIdHdr, id) }
}

// Ack says where Publish put an envelope.
type Ack struct {
	// Subject is the subject the envelope went on.
	Subject string
	// Stream and Sequence locate it in JetStream; Stream is empty with
	// Config.Core.
	Stream   string
	Sequence uint64
	// Duplicate is set when JetStream had already stored an envelope with
	// the same WithMsgID and dropped this one.
	Duplicate bool
}

// ErrNoAnswer wraps the failure of a Request that got no reply: no bridge
// is listening (nats.ErrNoResponders), or none answered in time. After a
// timeout the envelope may still be relayed.
var ErrNoAnswer = errors.New("producer: no answer")

// Publish puts ev on <Subject>.<ev.Channel>, fire-and-forget: the bridge
// relays it later and dead-letters it if it is refused. It returns once
// JetStream stored the envelope (with Config.Core: once the NATS server
// has it). Errors wrap ErrBadEnvelope for an invalid ev, else the
// NATS or JetStream error (jetstream.ErrNoStreamResponse when no stream
// captures the subject: the bridge creates it at its first start).
func (p *Publisher) Publish(ctx context.Context, ev Event, opts ...Option) (Ack, error) {
	m, err := message(p.cfg.Subject, ev, opts)
	if err != nil {
		return Ack{}, err
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	ack := Ack{Subject: m.Subject}
	if p.js == nil {
		err = p.nc.PublishMsg(m)
		if err == nil {
			err = p.nc.FlushWithContext(ctx)
		}
	} else {
		var pa *jetstream.PubAck
		if pa, err = p.js.PublishMsg(ctx, m); err == nil {
			ack.Stream, ack.Sequence, ack.Duplicate = pa.Stream, pa.Sequence, pa.Duplicate
		}
	}
	if err != nil {
		return Ack{}, fmt.Errorf("publishing on %s: %w", m.Subject, err)
	}
	return ack, nil
}

// Request sends ev on <RequestSubject>.<ev.Channel> and waits for the
// bridge's outcome: where Centrifugo stored the publication, or the
// refusal as a *ReplyError (errors.As, then its Code). Requests bypass
// JetStream: on any error the caller decides whether to retry. Other
// errors wrap ErrBadEnvelope (invalid ev), ErrNoAnswer, or say the reply
// was unreadable.
func (p *Publisher) Request(ctx context.Context, ev Event, opts ...Option) (Accepted, error) {
	m, err := message(p.cfg.RequestSubject, ev, opts)
	if err != nil {
		return Accepted{}, err
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()
	resp, err := p.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return Accepted{}, fmt.Errorf("%w on %s: %w", ErrNoAnswer, m.Subject, err)
	}
	return decodeReply(m.Subject, resp.Data)
}

// decodeReply returns what a bridge's reply on subject says.
func decodeReply(subject string, data []byte) (Accepted, error) {
	var r reply
	if err := json.Unmarshal(data, &r); err != nil {
		return Accepted{}, fmt.Errorf("unreadable answer on %s: %w", subject, err)
	}
	switch {
	case r.OK:
		return r.Accepted, nil
	case r.Error == nil:
		return Accepted{}, fmt.Errorf("unreadable answer on %s: refused without a reason: %s", subject, data)
	}
	return Accepted{}, r.Error
}

// message builds the NATS message carrying ev on prefix.<channel>.
func message(prefix string, ev Event, opts []Option) (*nats.Msg, error) {
	body, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(prefix + "." + ev.Channel)
	m.Data = body
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// bound gives ctx the Timeout unless it has a deadline.
func (p *Publisher) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.cfg.Timeout)
}
