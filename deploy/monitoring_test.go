package deploy_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/monitor"
)

// instantMetric matches the names of instant's metrics in expressions.
var instantMetric = regexp.MustCompile(`\binstant_[a-z_]+\b`)

// TestMonitoringMetricsExist checks that every instant metric the alert
// rules and the Grafana dashboard query is one the code registers (a
// histogram's _bucket, _sum and _count series included), and that the
// issue's alerts are there: relay errors, dead letters, backlog, auth 5xx,
// Centrifugo unreachable.
func TestMonitoringMetricsExist(t *testing.T) {
	known := registeredMetrics(t)

	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, "monitoring/alerts.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("monitoring/alerts.yaml: %v", err)
	}
	var exprs []string
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: rule %q needs alert, expr and a summary", g.Name, r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"InstantRelayErrors", "InstantDeadLetters", "InstantBacklog", "InstantAuthErrors", "InstantCentrifugoUnreachable"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing", want)
		}
	}

	var dash struct {
		Title  string
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(readFile(t, "monitoring/grafana-dashboard.json")), &dash); err != nil {
		t.Fatalf("monitoring/grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard %q (uid %q) with %d panels, want a title, a uid and panels", dash.Title, dash.UID, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}

	used := 0
	for _, e := range exprs {
		if strings.Count(e, "(") != strings.Count(e, ")") {
			t.Errorf("unbalanced parentheses in %q", e)
		}
		for _, name := range instantMetric.FindAllString(e, -1) {
			used++
			if !known[name] {
				t.Errorf("%q queries %s, which the code does not register", e, name)
			}
		}
	}
	if used == 0 {
		t.Fatal("no instant metric found in the rules and the dashboard")
	}
}

// registeredMetrics returns the names of the metrics bridge and auth
// register (as `instant bridge` and `instant auth` do), with the series
// names of histograms.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := &recorder{names: map[string]bool{}}
	bridge.NewMetrics(r)
	auth.NewMetrics(r)
	monitor.CountResponses(r, "auth", http.NotFoundHandler())
	for _, want := range []string{"instant_bridge_backlog_messages", "instant_auth_http_responses_total"} {
		if !r.names[want] {
			t.Fatalf("%s not among the registered metrics %v: the extraction is broken", want, r.names)
		}
	}
	return r.names
}

// recorder is a prometheus.Registerer that records the names of what is
// registered.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([a-z_]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		r.names[m[1]] = true
		if _, ok := c.(prometheus.Histogram); ok {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				r.names[m[1]+s] = true
			}
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }
