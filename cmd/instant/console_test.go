package main

import "testing"

func TestConsoleSettings(t *testing.T) {
	tests := []struct {
		metricsAddr, metricsURL, centrifugo, wsURL string
		want, wantWS                               string
	}{
		{":8002", "", "http://localhost:8000", "", "http://127.0.0.1:8002/metrics", "ws://localhost:8000/connection/websocket"},
		{"0.0.0.0:9", "", "https://rt.example:443", "", "http://127.0.0.1:9/metrics", "wss://rt.example:443/connection/websocket"},
		{"10.0.0.5:8002", "", "http://c:8000", "wss://rt.example/connection/websocket", "http://10.0.0.5:8002/metrics", "wss://rt.example/connection/websocket"},
		{"", "", "http://c:8000", "", "", "ws://c:8000/connection/websocket"},
		{"", "http://bridge:8002/metrics", "http://c:8000", "", "http://bridge:8002/metrics", "ws://c:8000/connection/websocket"},
	}
	for _, tt := range tests {
		s := settings{MetricsAddr: tt.metricsAddr, BridgeMetricsURL: tt.metricsURL, CentrifugoURL: tt.centrifugo, WebsocketURL: tt.wsURL}
		if got := s.bridgeMetricsURL(); got != tt.want {
			t.Errorf("bridgeMetricsURL of %+v: got %q, want %q", s, got, tt.want)
		}
		if got := s.websocketURL(); got != tt.wantWS {
			t.Errorf("websocketURL of %+v: got %q, want %q", s, got, tt.wantWS)
		}
	}
}
