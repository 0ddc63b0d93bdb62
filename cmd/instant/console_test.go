package main

import "testing"

func TestConsoleSettings(t *testing.T) {
	tests := []struct {
		metricsAddr, metricsURL string
		want                    string
	}{
		{":8002", "", "http://127.0.0.1:8002/metrics"},
		{"0.0.0.0:9", "", "http://127.0.0.1:9/metrics"},
		{"[::]:9", "", "http://127.0.0.1:9/metrics"},
		{"10.0.0.5:8002", "", "http://10.0.0.5:8002/metrics"},
		{"", "", ""},
		{"", "http://bridge:8002/metrics", "http://bridge:8002/metrics"},
	}
	for _, tt := range tests {
		s := settings{MetricsAddr: tt.metricsAddr, BridgeMetricsURL: tt.metricsURL}
		if got := s.bridgeMetricsURL(); got != tt.want {
			t.Errorf("bridgeMetricsURL of %+v: got %q, want %q", s, got, tt.want)
		}
	}
}
