// Package bench measures, on the machine it runs on, how fast envelopes
// reach Centrifugo through the bridge, and the baselines to judge it by:
//
//   - (a) one API publish per message, sequential (gocent Publish, as
//     django-instant publishes);
//   - (b) Centrifugo's batch ingest: gocent Pipe, 500 publishes per
//     request, sequential; (b') the same through POST /api/batch;
//   - (c) Centrifugo's built-in nats_jetstream consumer draining a stream;
//   - (d) the bridge in core mode, with a BatchSize sweep;
//   - (e) the bridge in JetStream mode draining the INSTANT stream;
//
// and the end-to-end latency (publish → websocket arrival at a
// centrifuge-go subscriber) at a low rate, direct and through the bridge.
//
// Everything runs on 127.0.0.1: NATS in-process, Centrifugo as the real
// binary from ./bin. `make bench` runs every benchmark in several rounds
// (interleaved, so that a noisy machine drifts evenly over all of them)
// and pipes the output to ./bench/report, which prints medians and
// ratios. One round by hand:
//
//	go test -run '^$' -bench . -benchtime 1x ./bench
//
// Each benchmark iteration is one fixed-size run; -benchtime 1x runs each
// once. Flags of the test binary (after -args with go test): -msgs,
// -channels, -latency-msgs, -latency-rate, -batch-sizes,
// -consumer-max-ack-pending, -window-profile DIR (a CPU profile of this
// process over each measured throughput window) and -experiments (the
// bridge with the /api/batch relay of (b')).
package bench
