// Package monitor serves the operational endpoints of a long-running
// command: /metrics (Prometheus), /healthz (the process is alive) and
// /readyz (its dependencies answer).
package monitor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is usable; it must return within
// its context's deadline.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 2 * time.Second

// Register adds /metrics for gatherer, /healthz and /readyz running checks
// to mux. /readyz answers 200 "ok" when every check passes, else 503 with
// one line per failing check.
func Register(mux *http.ServeMux, gatherer prometheus.Gatherer, checks ...Check) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	RegisterHealth(mux, checks...)
}

// RegisterHealth adds /healthz and /readyz (see Register) without
// /metrics: for a public port that load balancers probe.
func RegisterHealth(mux *http.ServeMux, checks ...Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), CheckTimeout)
		defer cancel()
		if err := Ready(ctx, checks...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// Ready runs checks and joins their errors, each prefixed with its name.
func Ready(ctx context.Context, checks ...Check) error {
	var errs []error
	for _, c := range checks {
		if err := c.Func(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}
