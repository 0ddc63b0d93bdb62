package auth

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the auth server's Prometheus metrics.
type Metrics struct {
	// Logins counts login attempts by result: "ok", "failed" (bad
	// credentials) or "error" (the user store failed).
	Logins *prometheus.CounterVec
	// Tokens counts the tokens issued by kind: "connection" or
	// "subscription".
	Tokens *prometheus.CounterVec
	// RateLimited counts logins refused with 429 by the limit that
	// refused them: "address", "address_username" or "username".
	RateLimited *prometheus.CounterVec
	// Revocations counts the server API calls of revocation by kind
	// ("unsubscribe" or "disconnect") and result ("ok" or "error").
	Revocations *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and embedding).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "instant", "auth"
	m := &Metrics{
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "logins_total", Help: "Login attempts, by result (ok, failed, error)."}, []string{"result"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "tokens_issued_total", Help: "Centrifugo tokens issued, by kind (connection, subscription)."}, []string{"kind"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rate_limited_total", Help: "Logins refused by the rate limit, by key (address, address_username, username)."}, []string{"key"}),
		Revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "revocations_total", Help: "Centrifugo server API calls that end access, by kind (unsubscribe, disconnect) and result (ok, error)."},
			[]string{"kind", "result"}),
	}
	for _, r := range []string{"ok", "failed", "error"} {
		m.Logins.WithLabelValues(r)
	}
	for _, k := range []string{"connection", "subscription"} {
		m.Tokens.WithLabelValues(k)
	}
	for _, k := range []string{limitAddress, limitAddressUsername, limitUsername} {
		m.RateLimited.WithLabelValues(k)
	}
	for _, k := range []string{"unsubscribe", "disconnect"} {
		for _, r := range []string{"ok", "error"} {
			m.Revocations.WithLabelValues(k, r)
		}
	}
	if reg != nil {
		reg.MustRegister(m.Logins, m.Tokens, m.RateLimited, m.Revocations)
	}
	return m
}
