package monitor

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CountResponses returns h counting its responses by status code in
// instant_<subsystem>_http_responses_total{code}, registered with reg.
func CountResponses(reg prometheus.Registerer, subsystem string, h http.Handler) http.Handler {
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "instant", Subsystem: subsystem,
		Name: "http_responses_total", Help: "HTTP responses, by status code."}, []string{"code"})
	reg.MustRegister(responses)
	return promhttp.InstrumentHandlerCounter(responses, h)
}
