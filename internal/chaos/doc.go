// Package chaos runs instant's production shape on loopback under faults
// and checks its delivery guarantees: three nats-server nodes from
// deploy/nats with the streams and buckets at three replicas, two
// Centrifugo nodes from deploy/centrifugo on the Redis engine, each
// behind a load balancer that prefers it (stacktest.Balancer), three
// `instant bridge` workers and one `instant auth`, producers on every NATS
// node, centrifuge-go subscribers with recovery on both Centrifugo nodes
// and a headless Chromium page running the browser client as an
// anonymous visitor. While envelopes flow, the fault schedule (schedule
// in chaos_test.go) kills, stops and restarts every kind of process in
// turn; afterwards the run checks that nothing was lost, reordered or
// doubled (in Centrifugo's history, at the subscribers, at the browser),
// that exactly the bad envelopes were dead-lettered with their codes,
// that every request was answered rightly or timed out, and that nobody
// received a channel its user may not see.
//
// TestChaos is the short run of `make test` (a few faults, about two
// minutes; skipped with -short); `make chaos` runs the long one
// (INSTANT_CHAOS=long: 100,000 envelopes, every fault). Both write
// artifacts/chaos/report.md and artifacts/chaos/relayed.png.
package chaos
