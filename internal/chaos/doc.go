// Package chaos runs instant's production shape on loopback under faults
// and checks its delivery guarantees: three nats-server nodes from
// deploy/nats with the streams and buckets at three replicas, two
// Centrifugo nodes from deploy/centrifugo on the Redis engine, three
// `instant bridge` workers and one `instant auth`, producers on every NATS
// node, centrifuge-go subscribers with recovery on both Centrifugo nodes.
// While envelopes flow, the fault schedule (schedule in chaos_test.go)
// kills, stops and restarts every kind of process in turn; afterwards
// the run checks that nothing was lost, reordered or doubled, that
// exactly the bad envelopes were dead-lettered with their codes, and
// that every request was answered rightly or timed out.
//
// The short run is TestChaos (INSTANT_CHAOS=1 to run it, it is skipped
// otherwise); `make chaos` runs the long one (INSTANT_CHAOS=long: 100,000
// envelopes) and writes artifacts/chaos/report.md.
package chaos
