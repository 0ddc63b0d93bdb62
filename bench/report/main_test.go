package main

import (
	"io"
	"strings"
	"testing"
)

const sample = `# config: msgs=1000 channels=10 latency-msgs=100 latency-rate=200 default-batch-size=500 gomaxprocs=2 outage=2s outage-msgs=2000
goos: linux
BenchmarkPublishEach-2   	       1	        90.00 cent-cpu-us/msg	      5000 msg/s	        80.00 proc-cpu-us/msg
BenchmarkPublishBatch-2  	       1	        12.00 cent-cpu-us/msg	     60000 msg/s	         5.000 proc-cpu-us/msg
BenchmarkCentrifugoConsumer/max_ack_pending=100-2 	1	12.00 cent-cpu-us/msg	50000 msg/s	10.00 proc-cpu-us/msg
BenchmarkBridgeCore/batch=100-2 	1	15.00 cent-cpu-us/msg	40000 msg/s	20.00 proc-cpu-us/msg
BenchmarkBridgeCore/batch=500-2 	1	13.00 cent-cpu-us/msg	45000 msg/s	17.00 proc-cpu-us/msg
BenchmarkBridgeJetStream-2 	1	15.00 cent-cpu-us/msg	30000 msg/s	25.00 proc-cpu-us/msg	12.00 first-ms	40000 steady-msg/s
BenchmarkPublishBatchEndpoint-2 	1	9.000 cent-cpu-us/msg	90000 msg/s	3.000 proc-cpu-us/msg
BenchmarkRedisEngine/consumer/max_ack_pending=100-2 	1	40.00 cent-cpu-us/msg	10000 msg/s	10.00 proc-cpu-us/msg	30.00 redis-cpu-us/msg
BenchmarkRedisEngine/bridge-jetstream-2 	1	30.00 cent-cpu-us/msg	25000 msg/s	20.00 proc-cpu-us/msg	10.00 redis-cpu-us/msg
BenchmarkOutageRSS-2 	1	3.000 drain-s	40.00 end-rss-MB	0 ns/op	45.00 peak-rss-MB
BenchmarkLatency/direct-2 	1	2.000 max-ms	0.4000 p50-ms	1.000 p99-ms
BenchmarkLatency/bridge-core-2 	1	2.000 max-ms	0.5000 p50-ms	1.000 p99-ms
PASS
# round 2
BenchmarkPublishEach-2   	       1	        90.00 cent-cpu-us/msg	      7000 msg/s	        80.00 proc-cpu-us/msg
BenchmarkBridgeCore/batch=500-2 	1	13.00 cent-cpu-us/msg	55000 msg/s	17.00 proc-cpu-us/msg
PASS
`

func TestParse(t *testing.T) {
	res, err := parse(strings.NewReader(sample), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.config["default-batch-size"]; got != "500" {
		t.Errorf("default-batch-size = %q, want 500", got)
	}
	if got := res.series(nameCore+"500", "msg/s"); len(got) != 2 || got[0] != 45000 || got[1] != 55000 {
		t.Errorf("core batch=500 msg/s = %v, want [45000 55000]", got)
	}
	if got := summarize(res.series(nameEach, "msg/s")).med; got != 6000 {
		t.Errorf("median of (a) = %v, want 6000", got)
	}
	if got := res.rounds(); got != 2 {
		t.Errorf("rounds = %d, want 2", got)
	}
}

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader(sample), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"(d)/(b') core bridge vs /api/batch ceiling      0.56",
		"Redis engine: (e)/(c)                           2.50",
		"(e)/(c) Redis engine                          0.75",
		"highest median: BatchSize 500", "added by the bridge, core:      p50 +0.100 ms",
		"added by the bridge, core:      p99 +0.000 ms",
		"peak RSS 45.0 MB [45.0–45.0]  target < 100 MB: met",
		"BridgeJetStream 12",
		"(e)/(c) JetStream bridge vs consumer            0.80",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name, input string
	}{
		{"empty", ""},
		{"failed", sample + "--- FAIL: BenchmarkBridgeJetStream\nFAIL\n"},
		{"bad metrics", "BenchmarkX-2 1 12 msg/s 3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(strings.NewReader(tt.input), io.Discard, io.Discard); err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
}
