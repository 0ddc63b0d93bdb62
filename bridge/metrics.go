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
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Relayed, m.Rejected, m.Retries, m.Dropped, m.BatchSize, m.Latency, m.InFlight)
	}
	return m
}
