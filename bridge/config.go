package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/instanthq/instant"
)

// Mode selects how the bridge takes envelopes from NATS.
type Mode string

// The delivery modes.
const (
	// ModeJetStream pulls from a durable consumer on the INSTANT stream:
	// at-least-once, nothing lost when a worker or Centrifugo dies.
	ModeJetStream Mode = "jetstream"
	// ModeCore uses a plain queue subscription: at-most-once, for NATS
	// servers without JetStream.
	ModeCore Mode = "core"
)

// Config configures a Bridge. The zero value of a field means its default.
type Config struct {
	// Mode defaults to ModeJetStream.
	Mode Mode
	// Subject is the publish subject prefix. Defaults to "instant.publish".
	Subject string
	// RequestSubject is the request/reply subject prefix. Defaults to
	// "instant.request".
	RequestSubject string
	// DeadSubject receives rejected envelopes. Defaults to "instant.dead".
	DeadSubject string
	// Stream captures the publish subjects in JetStream mode. Defaults to
	// "INSTANT".
	Stream string
	// DeadStream keeps dead letters in JetStream mode. Defaults to
	// "INSTANT_DEAD".
	DeadStream string
	// Group is the durable consumer name (JetStream) and queue group name
	// (core and request subjects). Defaults to "instant-bridge".
	Group string
	// Site is the publication's site when the envelope names none.
	// Defaults to "Site".
	Site string
	// MaxPayload is the largest envelope body accepted, in bytes. Defaults
	// to instant.DefaultMaxPayload.
	MaxPayload int
	// BatchSize is the most envelopes sent to Centrifugo in one request.
	// Defaults to DefaultBatchSize.
	BatchSize int
	// Encoding of the publication data. Defaults to instant.EncodingObject.
	Encoding instant.PayloadEncoding
	// AckWait is the consumer's ack wait when the bridge creates it; held
	// messages are marked in progress well before it runs out. After a
	// worker crash, the messages it held are redelivered this much later.
	// Defaults to 10s.
	AckWait time.Duration
	// MaxDeliver bounds redeliveries: a message delivered more often than
	// this is dead-lettered as redelivery_limit. Defaults to 20.
	MaxDeliver int
	// RetryMin and RetryMax bound the exponential backoff between retries
	// of a transient failure. Default to 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds the flush on shutdown; what is still held then
	// is handed back to JetStream. Defaults to 10s.
	ShutdownTimeout time.Duration
}

// DefaultBatchSize is the default BatchSize, chosen by benchmark (see the
// README's performance section).
const DefaultBatchSize = 500

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def((*string)(&c.Mode), string(ModeJetStream))
	def(&c.Subject, "instant.publish")
	def(&c.RequestSubject, "instant.request")
	def(&c.DeadSubject, "instant.dead")
	def(&c.Stream, "INSTANT")
	def(&c.DeadStream, "INSTANT_DEAD")
	def(&c.Group, "instant-bridge")
	def(&c.Site, "Site")
	def((*string)(&c.Encoding), string(instant.EncodingObject))
	setDefault(&c.MaxPayload, instant.DefaultMaxPayload)
	setDefault(&c.BatchSize, DefaultBatchSize)
	setDefault(&c.MaxDeliver, 20)
	setDefault(&c.AckWait, 10*time.Second)
	setDefault(&c.RetryMin, 100*time.Millisecond)
	setDefault(&c.RetryMax, 5*time.Second)
	setDefault(&c.ShutdownTimeout, 10*time.Second)
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// Validate sets the defaults, then reports every invalid field.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Mode != ModeJetStream && c.Mode != ModeCore {
		errs = append(errs, fmt.Errorf("field Mode: %q is neither jetstream nor core", c.Mode))
	}
	for _, f := range []struct{ name, subject string }{
		{"Subject", c.Subject}, {"RequestSubject", c.RequestSubject}, {"DeadSubject", c.DeadSubject},
	} {
		if !instant.LiteralSubject(f.subject) {
			errs = append(errs, fmt.Errorf("field %s: %q is not a literal subject", f.name, f.subject))
		}
	}
	if overlaps(c.Subject, c.RequestSubject) || overlaps(c.Subject, c.DeadSubject) || overlaps(c.RequestSubject, c.DeadSubject) {
		errs = append(errs, fmt.Errorf("fields Subject, RequestSubject and DeadSubject must not overlap (%q, %q, %q)", c.Subject, c.RequestSubject, c.DeadSubject))
	}
	if _, err := instant.ParsePayloadEncoding(string(c.Encoding)); err != nil {
		errs = append(errs, fmt.Errorf("field Encoding: %w", err))
	}
	for _, f := range []struct {
		name  string
		value int
	}{{"MaxPayload", c.MaxPayload}, {"BatchSize", c.BatchSize}, {"MaxDeliver", c.MaxDeliver}} {
		if f.value < 0 {
			errs = append(errs, fmt.Errorf("field %s: %d is negative", f.name, f.value))
		}
	}
	if c.RetryMin > c.RetryMax {
		errs = append(errs, fmt.Errorf("field RetryMin %s exceeds RetryMax %s", c.RetryMin, c.RetryMax))
	}
	return errors.Join(errs...)
}

// overlaps reports whether subject prefix a equals b or one is a prefix
// token sequence of the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}
