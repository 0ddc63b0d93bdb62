package centrifugo

import "encoding/json"

// ServerConfig holds what instant needs from a Centrifugo v6 server
// configuration.
type ServerConfig struct {
	Address        string   // listen address; "" for all interfaces
	Port           int      // HTTP port (websocket and API)
	APIKey         string   // http_api.key
	HMACKey        string   // client.token.hmac_secret_key
	AllowedOrigins []string // client.allowed_origins
	HistorySize    int      // history kept per channel for recovery
	HistoryTTL     string   // e.g. "300s"
	Namespaces     []string // extra channel namespaces, same options
}

// JSON returns the Centrifugo v6 JSON configuration: token-only
// subscriptions (every channel needs a subscription token; never enable
// allow_subscribe_for_client, instant's "ns:$chan" names rely on it),
// history and recovery so reconnecting browsers get what they missed, and
// the health endpoint.
func (c ServerConfig) JSON() ([]byte, error) {
	return json.MarshalIndent(c.Map(), "", "  ")
}

// Map is the configuration JSON writes, as nested maps (keys as in
// Centrifugo's configtypes), for callers that add settings of their own.
func (c ServerConfig) Map() map[string]any {
	channel := map[string]any{
		"history_size":                 c.HistorySize,
		"history_ttl":                  c.HistoryTTL,
		"force_recovery":               true,
		"allow_history_for_subscriber": true,
	}
	namespaces := make([]map[string]any, 0, len(c.Namespaces))
	for _, ns := range c.Namespaces {
		n := map[string]any{"name": ns}
		for k, v := range channel {
			n[k] = v
		}
		namespaces = append(namespaces, n)
	}
	httpServer := map[string]any{"port": c.Port}
	if c.Address != "" {
		httpServer["address"] = c.Address
	}
	return map[string]any{
		"http_server": httpServer,
		"http_api":    map[string]any{"key": c.APIKey},
		"client": map[string]any{
			"token":           map[string]any{"hmac_secret_key": c.HMACKey},
			"allowed_origins": c.AllowedOrigins,
		},
		"channel": map[string]any{
			"without_namespace": channel,
			"namespaces":        namespaces,
		},
		"health": map[string]any{"enabled": true},
	}
}
