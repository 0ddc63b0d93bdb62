package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"

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

// ParseMode returns the Mode s names; the error says which are valid.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeJetStream, ModeCore:
		return m, nil
	}
	return "", fmt.Errorf("%q is neither jetstream nor core", s)
}

// The defaults of Config's fields that the instant command's settings
// (INSTANT_MODE, SITE_NAME, …) share; the subjects' and the streams' are
// the root package's (instant.DefaultSubject, …).
const (
	DefaultMode            = ModeJetStream
	DefaultSite            = "Site"
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures a Bridge. The zero value of a field means its default.
type Config struct {
	// Mode defaults to DefaultMode, ModeJetStream.
	Mode Mode
	// Subject is the publish subject prefix. Defaults to
	// instant.DefaultSubject, "instant.publish".
	Subject string
	// RequestSubject is the request/reply subject prefix. Defaults to
	// instant.DefaultRequestSubject, "instant.request".
	RequestSubject string
	// DeadSubject receives rejected envelopes. Defaults to
	// instant.DefaultDeadSubject, "instant.dead".
	DeadSubject string
	// Stream captures the publish subjects in JetStream mode. Defaults to
	// instant.DefaultStream, "INSTANT".
	Stream string
	// DeadStream keeps dead letters in JetStream mode. Defaults to
	// instant.DefaultDeadStream, "INSTANT_DEAD".
	DeadStream string
	// Group prefixes the partitions' consumer names (JetStream) and is the
	// queue group name (core and request subjects). Defaults to
	// "instant-bridge".
	Group string
	// Partitions is the number of partitions the stream splits channels
	// into (JetStream mode); a channel's envelopes are relayed by one
	// worker at a time, in order. Every worker must use the same count; an
	// existing stream split otherwise is refused (ErrPartitionsChanged).
	// Defaults to DefaultPartitions.
	Partitions int
	// LeaseBucket is the KV bucket of worker and partition leases.
	// Defaults to "instant_bridge".
	LeaseBucket string
	// LeaseTTL is how long a partition lease lasts without renewal: a
	// worker that died or stalled loses its partitions this long after its
	// last renewal (renewals come every LeaseTTL/5), and a stalled worker
	// stops relaying before then. Defaults to DefaultLeaseTTL; at least 2s.
	LeaseTTL time.Duration
	// WorkerID names this worker among the others. Defaults to a random
	// unique id.
	WorkerID string
	// Site is the publication's site when the envelope names none.
	// Defaults to DefaultSite, "Site".
	Site string
	// MaxPayload is the largest envelope body accepted, in bytes. Defaults
	// to instant.DefaultMaxPayload.
	MaxPayload int
	// BatchSize is the most envelopes sent to Centrifugo in one request.
	// Defaults to DefaultBatchSize.
	BatchSize int
	// Encoding of the publication data. Defaults to instant.EncodingObject.
	Encoding instant.PayloadEncoding
	// AckWait is the partition consumers' ack wait; held messages are
	// marked in progress well before it runs out. Defaults to 10s.
	AckWait time.Duration
	// MaxDeliver bounds redeliveries by one partition consumer: a message
	// delivered more often than this is dead-lettered as
	// redelivery_limit. Defaults to 20.
	MaxDeliver int
	// RetryMin and RetryMax bound the exponential backoff between retries
	// of a transient failure. Default to 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds the flush on shutdown; what is still held then
	// is handed back to JetStream. Defaults to DefaultShutdownTimeout, 10s.
	ShutdownTimeout time.Duration
	// Replicas is the replica count of the streams when the bridge
	// creates them (INSTANT_REPLICAS): 3 on a 3-node cluster, so one node
	// can be down without loss. An existing stream keeps its own, with a
	// warning when it has fewer. Defaults to 1.
	Replicas int
	// StreamMaxBytes and StreamMaxAge bound the stream Stream when the
	// bridge creates it (INSTANT_STREAM_MAX_BYTES, INSTANT_STREAM_MAX_AGE).
	// A full stream refuses new envelopes (discard policy new): a producer
	// waiting for JetStream's ack gets an error and can retry, nothing
	// stored is dropped; an envelope older than StreamMaxAge is removed
	// unrelayed. Default to 1 GiB and 24h.
	StreamMaxBytes int64
	StreamMaxAge   time.Duration
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
	def((*string)(&c.Mode), string(DefaultMode))
	def(&c.Subject, instant.DefaultSubject)
	def(&c.RequestSubject, instant.DefaultRequestSubject)
	def(&c.DeadSubject, instant.DefaultDeadSubject)
	def(&c.Stream, instant.DefaultStream)
	def(&c.DeadStream, instant.DefaultDeadStream)
	def(&c.Group, "instant-bridge")
	def(&c.LeaseBucket, "instant_bridge")
	if c.WorkerID == "" {
		c.WorkerID = nuid.Next()
	}
	setDefault(&c.Partitions, DefaultPartitions)
	setDefault(&c.LeaseTTL, DefaultLeaseTTL)
	def(&c.Site, DefaultSite)
	def((*string)(&c.Encoding), string(instant.EncodingObject))
	setDefault(&c.MaxPayload, instant.DefaultMaxPayload)
	setDefault(&c.BatchSize, DefaultBatchSize)
	setDefault(&c.MaxDeliver, 20)
	setDefault(&c.AckWait, 10*time.Second)
	setDefault(&c.RetryMin, 100*time.Millisecond)
	setDefault(&c.RetryMax, 5*time.Second)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.Replicas, 1)
	setDefault(&c.StreamMaxBytes, DefaultStreamMaxBytes)
	setDefault(&c.StreamMaxAge, DefaultStreamMaxAge)
}

// The defaults of StreamMaxBytes and StreamMaxAge.
const (
	DefaultStreamMaxBytes = 1 << 30
	DefaultStreamMaxAge   = 24 * time.Hour
)

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// Validate sets the defaults, then reports every invalid field.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	if _, err := ParseMode(string(c.Mode)); err != nil {
		errs = append(errs, fmt.Errorf("field Mode: %w", err))
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
	if c.Partitions < 1 || c.Partitions > maxPartitions {
		errs = append(errs, fmt.Errorf("field Partitions: %d is not between 1 and %d", c.Partitions, maxPartitions))
	}
	if c.LeaseTTL < 2*minRelayWindow {
		errs = append(errs, fmt.Errorf("field LeaseTTL: %s is shorter than %s", c.LeaseTTL, 2*minRelayWindow))
	}
	if !validToken(c.WorkerID) {
		errs = append(errs, fmt.Errorf("field WorkerID: %q may hold only letters, digits, - and _", c.WorkerID))
	}
	if !validToken(c.Group) {
		errs = append(errs, fmt.Errorf("field Group: %q may hold only letters, digits, - and _", c.Group))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("field Replicas: %d is not between 1 and 5", c.Replicas))
	}
	if c.StreamMaxBytes < 0 || c.StreamMaxAge < 0 {
		errs = append(errs, fmt.Errorf("fields StreamMaxBytes and StreamMaxAge must not be negative (%d, %s)", c.StreamMaxBytes, c.StreamMaxAge))
	}
	if c.RetryMin > c.RetryMax {
		errs = append(errs, fmt.Errorf("field RetryMin %s exceeds RetryMax %s", c.RetryMin, c.RetryMax))
	}
	return errors.Join(errs...)
}

// maxPartitions bounds Config.Partitions: each is a consumer on the stream.
const maxPartitions = 1024

// validToken reports whether s is a non-empty name of letters, digits, -
// and _ (usable in KV keys, consumer and subject names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// overlaps reports whether subject prefix a equals b or one is a prefix
// token sequence of the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(b, a+".")
}
