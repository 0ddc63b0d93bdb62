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
	// Mode (INSTANT_MODE) defaults to DefaultMode, ModeJetStream.
	Mode Mode
	// Subject is the publish subject prefix (INSTANT_SUBJECT). Defaults to
	// instant.DefaultSubject, "instant.publish".
	Subject string
	// RequestSubject is the request/reply subject prefix
	// (INSTANT_REQUEST_SUBJECT). Defaults to instant.DefaultRequestSubject,
	// "instant.request".
	RequestSubject string
	// DeadSubject receives rejected envelopes (INSTANT_DEAD_SUBJECT).
	// Defaults to instant.DefaultDeadSubject, "instant.dead".
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
	// Defaults to DefaultPartitions (INSTANT_PARTITIONS).
	Partitions int
	// LeaseBucket is the KV bucket of worker and partition leases.
	// Defaults to "instant_bridge".
	LeaseBucket string
	// LeaseTTL is how long a partition lease lasts without renewal: a
	// worker that died or stalled loses its partitions this long after its
	// last renewal (renewals come every LeaseTTL/5), and a stalled worker
	// stops relaying before then (INSTANT_LEASE_TTL). Defaults to
	// DefaultLeaseTTL; at least 2s.
	LeaseTTL time.Duration
	// WorkerID names this worker among the others. Defaults to a random
	// unique id.
	WorkerID string
	// Site is the publication's site when the envelope names none
	// (SITE_NAME). Defaults to DefaultSite, "Site".
	Site string
	// MaxPayload is the largest envelope body accepted, in bytes
	// (INSTANT_MAX_PAYLOAD). Defaults to instant.DefaultMaxPayload.
	MaxPayload int
	// BatchSize is the most envelopes sent to Centrifugo in one request
	// (INSTANT_BATCH_SIZE). Defaults to DefaultBatchSize.
	BatchSize int
	// Encoding of the publication data (INSTANT_PAYLOAD_ENCODING).
	// Defaults to instant.EncodingObject.
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
	// is handed back to JetStream (INSTANT_SHUTDOWN_TIMEOUT). Defaults to
	// DefaultShutdownTimeout, 10s.
	ShutdownTimeout time.Duration
	// Replicas is the replica count of the streams when the bridge
	// creates them (INSTANT_REPLICAS): 3 on a 3-node cluster, so one node
	// can be down without loss. An existing stream keeps its own, with a
	// warning when it has fewer. Defaults to 1; at most 5.
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

// Validate sets the defaults, then reports every invalid field: the
// error joins one *instant.SettingError per problem, naming the
// environment variable of the instant command that sets the field
// (INSTANT_PARTITIONS (Partitions): …) or the field alone.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(setting, field, format string, args ...any) {
		errs = append(errs, instant.SettingErrorf(setting, field, format, args...))
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		errs = append(errs, &instant.SettingError{Setting: "INSTANT_MODE", Field: "Mode", Err: err})
	}
	subjects := []struct{ setting, field, subject, def string }{
		{"INSTANT_SUBJECT", "Subject", c.Subject, instant.DefaultSubject},
		{"INSTANT_REQUEST_SUBJECT", "RequestSubject", c.RequestSubject, instant.DefaultRequestSubject},
		{"INSTANT_DEAD_SUBJECT", "DeadSubject", c.DeadSubject, instant.DefaultDeadSubject},
	}
	for i, f := range subjects {
		if !instant.LiteralSubject(f.subject) {
			bad(f.setting, f.field, "%q is not a literal NATS subject such as %s", f.subject, f.def)
			continue
		}
		for _, g := range subjects[:i] {
			if overlaps(f.subject, g.subject) {
				bad(f.setting, f.field, "%q overlaps %s %q: the three subjects must not contain one another", f.subject, g.setting, g.subject)
			}
		}
	}
	if _, err := instant.ParsePayloadEncoding(string(c.Encoding)); err != nil {
		errs = append(errs, &instant.SettingError{Setting: "INSTANT_PAYLOAD_ENCODING", Field: "Encoding", Err: err})
	}
	for _, f := range []struct {
		setting, field string
		value          int
	}{{"INSTANT_MAX_PAYLOAD", "MaxPayload", c.MaxPayload}, {"INSTANT_BATCH_SIZE", "BatchSize", c.BatchSize}, {"", "MaxDeliver", c.MaxDeliver}} {
		if f.value < 0 {
			bad(f.setting, f.field, "%d is negative", f.value)
		}
	}
	if c.Partitions < 1 || c.Partitions > maxPartitions {
		bad("INSTANT_PARTITIONS", "Partitions", "%d is not between 1 and %d", c.Partitions, maxPartitions)
	}
	if c.LeaseTTL < 2*minRelayWindow {
		bad("INSTANT_LEASE_TTL", "LeaseTTL", "%s is shorter than %s", c.LeaseTTL, 2*minRelayWindow)
	}
	if !validToken(c.WorkerID) {
		bad("", "WorkerID", "%q may hold only letters, digits, - and _", c.WorkerID)
	}
	if !validToken(c.Group) {
		bad("", "Group", "%q may hold only letters, digits, - and _", c.Group)
	}
	if c.Replicas < 0 || c.Replicas > maxReplicas {
		bad("INSTANT_REPLICAS", "Replicas", "%d is not between 1 and %d, JetStream's limit", c.Replicas, maxReplicas)
	}
	if c.StreamMaxBytes < 0 {
		bad("INSTANT_STREAM_MAX_BYTES", "StreamMaxBytes", "%d is negative", c.StreamMaxBytes)
	}
	if c.StreamMaxAge < 0 {
		bad("INSTANT_STREAM_MAX_AGE", "StreamMaxAge", "%s is negative", c.StreamMaxAge)
	}
	if c.ShutdownTimeout < 0 {
		bad("INSTANT_SHUTDOWN_TIMEOUT", "ShutdownTimeout", "%s is negative", c.ShutdownTimeout)
	}
	if c.RetryMin > c.RetryMax {
		bad("", "RetryMin", "%s exceeds RetryMax %s", c.RetryMin, c.RetryMax)
	}
	return errors.Join(errs...)
}

// maxReplicas bounds Config.Replicas: JetStream keeps at most 5 copies.
const maxReplicas = 5

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
