package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// Traffic are the bridge's counters since it started.
type Traffic struct {
	// Relayed envelopes Centrifugo accepted (instant_bridge_relayed_total).
	Relayed float64 `json:"relayed"`
	// Rejected envelopes, dead-lettered (instant_bridge_rejected_total,
	// every code).
	Rejected float64 `json:"rejected"`
	// Retried Centrifugo requests (instant_bridge_retries_total).
	Retried float64 `json:"retried"`
}

// TrafficSource reads the bridge's counters. *BridgeMetrics implements
// it.
type TrafficSource interface {
	Traffic(ctx context.Context) (Traffic, error)
}

// BridgeMetrics reads the counters from a bridge's Prometheus endpoint
// (the /metrics of its INSTANT_METRICS_ADDR). With several bridges it
// reads the one at URL.
type BridgeMetrics struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:8002/metrics".
	URL string
	// Client sends the requests; nil: one with a 2-second timeout.
	Client *http.Client
}

var _ TrafficSource = (*BridgeMetrics)(nil)

// maxMetricsBody bounds the metrics page read.
const maxMetricsBody = 4 << 20

// Traffic scrapes the endpoint once.
func (b *BridgeMetrics) Traffic(ctx context.Context) (Traffic, error) {
	hc := b.Client
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
	if err != nil {
		return Traffic{}, fmt.Errorf("auth: bridge metrics: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return Traffic{}, fmt.Errorf("auth: bridge metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return Traffic{}, fmt.Errorf("auth: bridge metrics: %s answered %s", b.URL, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return Traffic{}, fmt.Errorf("auth: bridge metrics: %w", err)
	}
	return trafficOf(families)
}

var errNoBridgeMetrics = errors.New("auth: bridge metrics: no instant_bridge_relayed_total: is it a bridge's /metrics?")

// trafficOf sums the bridge's counters.
func trafficOf(families map[string]*dto.MetricFamily) (Traffic, error) {
	sum := func(name string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
		var n float64
		for _, m := range f.GetMetric() {
			n += m.GetCounter().GetValue()
		}
		return n, true
	}
	relayed, ok := sum("instant_bridge_relayed_total")
	if !ok {
		return Traffic{}, errNoBridgeMetrics
	}
	rejected, _ := sum("instant_bridge_rejected_total")
	retried, _ := sum("instant_bridge_retries_total")
	return Traffic{Relayed: relayed, Rejected: rejected, Retried: retried}, nil
}

func (s *Server) adminTraffic(w http.ResponseWriter, r *http.Request, c caller) {
	resp := struct {
		Available bool     `json:"available"`
		Time      int64    `json:"time"` // Unix milliseconds of the reading
		Counters  *Traffic `json:"counters,omitempty"`
		Error     string   `json:"error,omitempty"`
	}{Time: s.cfg.Now().UnixMilli()}
	if s.admin.Traffic != nil {
		t, err := s.admin.Traffic.Traffic(r.Context())
		if err != nil {
			s.log.Debug("admin: bridge metrics", zap.String("by", c.id.Username), zap.Error(err))
			resp.Error = "the bridge's metrics cannot be read"
		} else {
			resp.Available, resp.Counters = true, &t
		}
	}
	s.writeJSON(w, resp)
}
