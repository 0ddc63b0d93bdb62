package bridge

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultPartitions is the default Config.Partitions.
const DefaultPartitions = 16

// PartitionOf returns the partition of channel among n, as the stream's
// partition() subject transform places it: FNV-1a (32 bits) of the
// channel name, modulo n.
func PartitionOf(channel string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(channel))
	return int(h.Sum32() % uint32(n))
}

// layout names the stream, its partitions and their consumers. The stream
// stores an envelope published on <Subject>.<channel> as
// <Stream>.<partition>.<channel>; the bare <Subject> (channel in the body)
// and anything deeper than one token stay as published and form one more
// partition, number n, called "bare".
type layout struct {
	stream, subject, group string
	n                      int // partitions by channel; the bare one is number n
}

func newLayout(cfg Config) layout {
	return layout{stream: cfg.Stream, subject: cfg.Subject, group: cfg.Group, n: cfg.Partitions}
}

// count is the number of partitions including the bare one.
func (l layout) count() int { return l.n + 1 }

// name is partition p's name in keys, metrics and consumer names.
func (l layout) name(p int) string {
	if p == l.n {
		return "bare"
	}
	return strconv.Itoa(p)
}

// transform is the stream's subject transform.
func (l layout) transform() *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      l.subject + ".*",
		Destination: fmt.Sprintf("%s.{{partition(%d,1)}}.{{wildcard(1)}}", l.stream, l.n),
	}
}

func (l layout) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:             l.stream,
		Description:      "instant: publish envelopes waiting for the bridge",
		Subjects:         []string{l.subject, l.subject + ".>"},
		SubjectTransform: l.transform(),
		Storage:          jetstream.FileStorage,
		// Limits: acking keeps a message; the partition's runner purges
		// what its consumer acked (see relayPartition), so that
		// consumers may ack whole batches (a work-queue stream refuses
		// AckAll).
		Retention: jetstream.LimitsPolicy,
	}
}

// partitionsOf returns the partition count of an existing stream's
// transform, or 0 when it has none of the bridge's.
func (l layout) partitionsOf(cfg jetstream.StreamConfig) int {
	tr := cfg.SubjectTransform
	if tr == nil || tr.Source != l.subject+".*" {
		return 0
	}
	var n int
	if _, err := fmt.Sscanf(tr.Destination, l.stream+".{{partition(%d,1)}}.{{wildcard(1)}}", &n); err != nil {
		return 0
	}
	return n
}

// filters are the stored subjects of partition p.
func (l layout) filters(p int) []string {
	if p == l.n {
		return []string{l.subject, l.subject + ".>"}
	}
	return []string{fmt.Sprintf("%s.%d.*", l.stream, p)}
}

// consumerPrefix starts the names of partition p's consumers; the lease
// revision that created one follows it.
func (l layout) consumerPrefix(p int) string { return fmt.Sprintf("%s-p%s-", l.group, l.name(p)) }

// consumerConfig is partition p's consumer for the lease of revision rev;
// only the lease holder pulls from it. With batchAcks it acks all (one ack
// settles every earlier delivery; a work-queue stream refuses that, so
// there each message is acked). It delivers from stream sequence start
// on, or from the partition's first stored message when start is 0.
func (l layout) consumerConfig(p int, rev uint64, ackWait time.Duration, maxAckPending int, batchAcks bool, start uint64) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:           l.consumerPrefix(p) + strconv.FormatUint(rev, 10),
		Description:       "instant bridge: partition " + l.name(p),
		FilterSubjects:    l.filters(p),
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxAckPending:     maxAckPending,
		InactiveThreshold: time.Hour,
	}
	if batchAcks {
		cfg.AckPolicy = jetstream.AckAllPolicy
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return cfg
}

// publishSubject returns the subject an envelope stored as stored was
// published on.
func (l layout) publishSubject(stored string) string {
	rest, ok := strings.CutPrefix(stored, l.stream+".")
	if !ok {
		return stored
	}
	_, ch, ok := strings.Cut(rest, ".")
	if !ok {
		return stored
	}
	return l.subject + "." + ch
}
