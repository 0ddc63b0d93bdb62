// Package bench measures, on the machine it runs on, how fast envelopes
// reach Centrifugo through the bridge, and the baselines to judge it by:
// one API call per message, Centrifugo's own batch-ingest ceiling, and
// Centrifugo's built-in nats_jetstream consumer. It also measures the
// end-to-end latency the bridge adds at a low rate.
//
// Everything runs on 127.0.0.1: NATS in-process, Centrifugo as the real
// binary from ./bin. The benchmarks live in bench_test.go; `make bench`
// runs them several rounds (interleaved, so that a noisy machine drifts
// evenly over all of them) and pipes the output to ./bench/report, which
// prints medians and ratios. One round by hand:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench
//
// Each benchmark iteration is one fixed-size run (see the -msgs,
// -latency-msgs, -latency-rate and -batch-sizes flags of the test binary);
// -benchtime 1x runs each exactly once.
package bench
