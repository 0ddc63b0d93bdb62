// Package bench measures, on the machine it runs on, how fast envelopes
// reach Centrifugo through the bridge, and the baselines to judge it by:
//
//   - (a) one API publish per message, sequential (gocent Publish, as
//     django-instant publishes);
//   - (b) batches of 500 through gocent's Pipe (Centrifugo's legacy /api
//     route), sequential; (b') the same through POST /api/batch with the
//     bridge's own client (centrifugo.Client, idempotency keys): the
//     ceiling the bridge's relay can reach;
//   - (c) Centrifugo's built-in nats_jetstream consumer draining a stream,
//     with its default max_ack_pending (100) and 1000;
//   - (d) the bridge in core mode, with a BatchSize sweep;
//   - (e) the bridge in JetStream mode draining the INSTANT stream;
//   - (e) with 1, 2 and 3 workers (BenchmarkScaleOut), and the time from
//     a worker's SIGKILL to its successor's first relayed envelope,
//     median of 5 (BenchmarkTakeover, `instant bridge` processes);
//   - (c) and (e) again with Centrifugo on its Redis engine, against a
//     redis-server of their own on loopback (skipped when redis-server is
//     not installed; `make packages` installs it), its CPU time counted;
//
// the end-to-end latency (publish → websocket arrival at a centrifuge-go
// subscriber) at a low rate, direct and through the bridge; and the
// resident memory of `instant bridge`, in its own process, while
// envelopes wait during a Centrifugo outage.
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
// -consumer-max-ack-pending, -outage, -outage-msgs, -instant-bin (the
// binary the outage and takeover runs start; default bin/instant) and -window-profile
// DIR (a CPU profile of this process over each measured throughput
// window).
package bench
