package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/centrifugo"
)

// settings are the environment settings of README's configuration table.
type settings struct {
	NATSURL       string
	NATS          natsSettings
	Replicas      int    // of the streams and KV buckets instant creates
	CentrifugoCA  string // PEM file of the CA of Centrifugo's https API
	CentrifugoURL string // base URL, e.g. http://localhost:8000
	APIKey        string
	BatchBytes    int // most bytes per relay request (centrifugo.Config.MaxRequestBytes)
	MetricsAddr   string
	// BridgeMetricsURL is where the console reads the bridge's counters;
	// "" when unknown.
	BridgeMetricsURL string
	// WebsocketURL is Centrifugo's websocket endpoint as browsers reach
	// it, for the console's live tail.
	WebsocketURL   string
	ChannelsFile   string
	RequestTimeout time.Duration
	AuthAddr       string
	// AuthMetricsAddr serves auth's /metrics, /healthz and /readyz apart
	// from its public port; "" disables.
	AuthMetricsAddr string
	// LogLevel is one of logLevels.
	LogLevel string
	// HTTP bounds the connections of every HTTP server.
	HTTP   httpTimeouts
	Bridge bridge.Config
	Auth   auth.Config
}

// The defaults of the instant command's own settings (the libraries'
// are theirs): the ports of one machine, which `instant dev` and
// `instant init` take as their flags' defaults too.
const (
	defaultNATSPort        = 4222
	defaultCentrifugoHost  = "http://localhost"
	defaultCentrifugoPort  = 8000
	defaultAuthPort        = 8001
	defaultMetricsPort     = 8002
	defaultAuthMetricsPort = 8003
)

var defaultNATSURL = fmt.Sprintf("nats://127.0.0.1:%d", defaultNATSPort)

// logLevels are the values of INSTANT_LOG_LEVEL.
var logLevels = []string{"debug", "info", "warn", "error"}

// apiURL is the Centrifugo HTTP API endpoint.
func (s settings) apiURL() string { return s.CentrifugoURL + "/api" }

// loadSettings reads the settings through lookup (os.LookupEnv). Each
// is read once: a library field left unset takes the library's default
// (bridge.Config.Validate, auth.Config.Validate), and the library checks
// its range. A malformed value is a *instant.SettingError naming the
// variable.
func loadSettings(lookup func(string) (string, bool)) (settings, error) {
	r := envReader{lookup: lookup}
	s := settings{
		NATSURL:      r.str("NATS_URL", defaultNATSURL),
		LogLevel:     r.oneOf("INSTANT_LOG_LEVEL", "info", logLevels...),
		APIKey:       r.str("CENTRIFUGO_API_KEY", ""),
		BatchBytes:   r.positive("INSTANT_BATCH_BYTES", centrifugo.DefaultMaxRequestBytes),
		MetricsAddr:  r.strAllowEmpty("INSTANT_METRICS_ADDR", fmt.Sprintf(":%d", defaultMetricsPort)),
		ChannelsFile: r.str("INSTANT_CHANNELS_FILE", ""),
		NATS: natsSettings{
			CA:    r.str("NATS_CA", ""),
			Cert:  r.str("NATS_CERT", ""),
			Key:   r.str("NATS_KEY", ""),
			Creds: r.str("NATS_CREDS", ""),
			NKey:  r.str("NATS_NKEY", ""),
		},
		CentrifugoCA: r.str("CENTRIFUGO_CA", ""),
		Bridge: bridge.Config{
			Mode:            bridge.Mode(r.str("INSTANT_MODE", "")),
			Subject:         r.str("INSTANT_SUBJECT", ""),
			RequestSubject:  r.str("INSTANT_REQUEST_SUBJECT", ""),
			DeadSubject:     r.str("INSTANT_DEAD_SUBJECT", ""),
			Site:            r.str("SITE_NAME", ""),
			MaxPayload:      r.positive("INSTANT_MAX_PAYLOAD", 0),
			BatchSize:       r.positive("INSTANT_BATCH_SIZE", 0),
			Encoding:        instant.PayloadEncoding(r.str("INSTANT_PAYLOAD_ENCODING", "")),
			ShutdownTimeout: r.duration("INSTANT_SHUTDOWN_TIMEOUT", 0),
			Partitions:      r.positive("INSTANT_PARTITIONS", 0),
			LeaseTTL:        r.duration("INSTANT_LEASE_TTL", 0),
			Replicas:        r.positive("INSTANT_REPLICAS", 0),
			StreamMaxBytes:  int64(r.positive("INSTANT_STREAM_MAX_BYTES", 0)),
			StreamMaxAge:    r.duration("INSTANT_STREAM_MAX_AGE", 0),
		},
		RequestTimeout:  10 * time.Second,
		AuthAddr:        r.str("INSTANT_AUTH_ADDR", fmt.Sprintf(":%d", defaultAuthPort)),
		AuthMetricsAddr: r.strAllowEmpty("INSTANT_AUTH_METRICS_ADDR", fmt.Sprintf(":%d", defaultAuthMetricsPort)),
		HTTP:            defaultHTTPTimeouts,
		Auth: auth.Config{
			HMACKey:          r.str("CENTRIFUGO_HMAC_KEY", ""),
			TokenTTL:         r.duration("INSTANT_TOKEN_TTL", 0),
			AllowedOrigins:   splitList(r.str("INSTANT_ALLOWED_ORIGINS", "")),
			IdentityKey:      r.str("INSTANT_IDENTITY_KEY", ""),
			IdentityMaxTTL:   r.duration("INSTANT_IDENTITY_MAX_TTL", 0),
			IdentityIssuer:   r.str("INSTANT_IDENTITY_ISSUER", ""),
			IdentityAudience: r.str("INSTANT_IDENTITY_AUDIENCE", ""),
			Anonymous:        r.oneOf("INSTANT_ANONYMOUS", "false", "true", "false") == "true",
			SecureCookies:    r.oneOf("INSTANT_SECURE_COOKIES", "false", "true", "false") == "true",
			ClientIPHeader:   r.str("INSTANT_CLIENT_IP_HEADER", ""),
			TrustedProxies:   r.prefixes("INSTANT_TRUSTED_PROXIES"),
		},
	}
	if (s.NATS.Cert == "") != (s.NATS.Key == "") {
		r.fail("NATS_CERT", "NATS_CERT and NATS_KEY go together (the client certificate and its key)")
	}
	if s.NATS.Creds != "" && s.NATS.NKey != "" {
		r.fail("NATS_CREDS", "set NATS_CREDS or NATS_NKEY, not both")
	}
	r.refusePlaceholders()
	host := r.str("CENTRIFUGO_HOST", defaultCentrifugoHost)
	port := r.positive("CENTRIFUGO_PORT", defaultCentrifugoPort)
	if !validPort(port) {
		r.fail("CENTRIFUGO_PORT", "%d is not a TCP port", port)
	}
	if u, err := url.Parse(host); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail("CENTRIFUGO_HOST", "%q is not an http(s) URL such as http://localhost", host)
	}
	if s.CentrifugoCA != "" && !strings.HasPrefix(host, "https://") {
		r.fail("CENTRIFUGO_CA", "set, but CENTRIFUGO_HOST %q is not an https:// URL", host)
	}
	s.CentrifugoURL = fmt.Sprintf("%s:%d", strings.TrimRight(host, "/"), port)
	s.BridgeMetricsURL = r.str("INSTANT_BRIDGE_METRICS_URL", "")
	s.WebsocketURL = r.str("INSTANT_WEBSOCKET_URL", "")
	if r.err != nil {
		return s, r.err
	}
	// Every command checks the bridge's settings: they name the subjects
	// and buckets the others use too.
	if err := s.Bridge.Validate(); err != nil {
		return s, err
	}
	s.Replicas = s.Bridge.Replicas
	return s, nil
}

// bridgeMetricsURL returns INSTANT_BRIDGE_METRICS_URL, or else the
// /metrics of a bridge on this machine at MetricsAddr ("" when empty).
func (s settings) bridgeMetricsURL() string {
	if s.BridgeMetricsURL != "" {
		return s.BridgeMetricsURL
	}
	return localMetricsURL(s.MetricsAddr)
}

// localMetricsURL returns the /metrics URL of a bridge listening on addr
// on this machine (INSTANT_METRICS_ADDR), or "" for an empty or
// malformed addr.
func localMetricsURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// requireAPIKey fails unless CENTRIFUGO_API_KEY is set.
func (s settings) requireAPIKey() error {
	if s.APIKey == "" {
		return settingf("CENTRIFUGO_API_KEY", "required: set it to Centrifugo's http_api.key")
	}
	return nil
}

// requireAuth fails unless the auth settings are complete and valid: the
// error of auth.Config.Validate, naming the variable of each invalid one.
func (s *settings) requireAuth() error {
	return s.Auth.Validate()
}

// settingf returns the error of a setting the instant command reads for
// itself, such as NATS_URL: exit status 2.
func settingf(name, format string, args ...any) error {
	return instant.SettingErrorf(name, "", format, args...)
}

// envReader reads typed values and keeps the first error.
type envReader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *envReader) fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = settingf(name, format, args...)
	}
}

func (r *envReader) str(name, def string) string {
	if v, _ := r.lookup(name); strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// strAllowEmpty is like str, but a variable set to "" (as opposed to
// unset) yields "": used where empty disables a feature.
func (r *envReader) strAllowEmpty(name, def string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	return strings.TrimSpace(v)
}

func (r *envReader) oneOf(name, def string, allowed ...string) string {
	v := r.str(name, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

func (r *envReader) positive(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		r.fail(name, "%q is not a positive integer", v)
		return def
	}
	return n
}

func (r *envReader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(name, "%q is not a positive duration such as 10s", v)
		return def
	}
	return d
}

// prefixes reads a comma-separated list of IP addresses and CIDR
// prefixes (an address is a prefix of its full length).
func (r *envReader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range splitList(r.str(name, "")) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				r.fail(name, "%q is neither an IP address nor a CIDR prefix such as 10.0.0.0/8", v)
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// placeholderSettings hold secrets; the deploy examples fill them with
// placeholders (containing "change-me") that must never reach production.
var placeholderSettings = []string{"NATS_URL", "CENTRIFUGO_API_KEY", "CENTRIFUGO_HMAC_KEY", "INSTANT_IDENTITY_KEY"}

// refusePlaceholders fails on a secret setting that still holds a
// placeholder of the deploy examples. The value is not repeated: it may
// hold real passwords beside the placeholder.
func (r *envReader) refusePlaceholders() {
	for _, name := range placeholderSettings {
		v := strings.ToLower(r.str(name, ""))
		if strings.Contains(v, "change-me") || strings.Contains(v, "changeme") {
			r.fail(name, "holds a placeholder (change-me…) of the deploy examples: set a secret of your own (`instant init` makes some)")
		}
	}
}
