package bridge

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bridge's Prometheus metrics.
type Metrics struct {
	Received  prometheus.Counter
	Relayed   prometheus.Counter
	Rejected  *prometheus.CounterVec // by code
	Retries   prometheus.Counter
	Dropped   prometheus.Counter // core mode: held at shutdown, never relayed
	BatchSize prometheus.Histogram
	Latency   prometheus.Histogram // from receipt to Centrifugo's acceptance
	InFlight  prometheus.Gauge

	// JetStream mode: the partitions this worker relays.
	PartitionsOwned prometheus.Gauge
	PartitionOwned  *prometheus.GaugeVec // 1 for each partition this worker holds
	PartitionLag    *prometheus.GaugeVec // envelopes not yet acked, by partition held
	Takeovers       prometheus.Counter   // partition leases taken
	Fenced          prometheus.Counter   // batches not relayed because the lease ran out
	Resets          prometheus.Counter   // partition consumers reset to the ack floor after a missing delivery

	// Of the stream (JetStream mode), read by WatchStream.
	Backlog        prometheus.Gauge // envelopes stored, not yet relayed and acked
	StreamBytes    prometheus.Gauge
	StreamMaxBytes prometheus.Gauge // -1: no limit
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and embedding).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "instant", "bridge"
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "received_total", Help: "Envelopes received from NATS."}),
		Relayed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "relayed_total", Help: "Envelopes Centrifugo accepted."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rejected_total", Help: "Envelopes dead-lettered, by error code."}, []string{"code"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "retries_total", Help: "Retries of Centrifugo requests after a transient failure."}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dropped_total", Help: "Core-mode envelopes still held when the shutdown timeout ran out."}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_size", Help: "Envelopes per Centrifugo request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "relay_latency_seconds", Help: "Time from receipt of an envelope to Centrifugo's acceptance.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "in_flight", Help: "Envelopes in the Centrifugo request under way."}),
		PartitionsOwned: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "partitions_owned", Help: "Partitions this worker relays (JetStream mode)."}),
		PartitionOwned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "partition_owned", Help: "1 for each partition this worker holds the lease of."}, []string{"partition"}),
		PartitionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "partition_lag", Help: "Envelopes of a partition this worker holds that are stored but not yet acked."}, []string{"partition"}),
		Takeovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "partition_takeovers_total", Help: "Partition leases this worker took."}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "fenced_total", Help: "Batches not relayed because the partition's lease ran out or was lost."}),
		Resets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "partition_resets_total", Help: "Partition consumers reset to their ack floor because a delivery went missing."}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "backlog_messages", Help: "Envelopes in the stream INSTANT waiting to be relayed and acked, every partition (JetStream mode)."}),
		StreamBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "stream_bytes", Help: "Bytes the stream INSTANT holds (JetStream mode)."}),
		StreamMaxBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "stream_max_bytes", Help: "The stream INSTANT's byte limit, -1 for none; once reached, publications are refused."}),
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Relayed, m.Rejected, m.Retries, m.Dropped, m.BatchSize, m.Latency, m.InFlight,
			m.PartitionsOwned, m.PartitionOwned, m.PartitionLag, m.Takeovers, m.Fenced, m.Resets,
			m.Backlog, m.StreamBytes, m.StreamMaxBytes)
	}
	return m
}
