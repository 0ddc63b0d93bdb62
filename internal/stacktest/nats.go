package stacktest

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS starts an in-process nats-server on 127.0.0.1 with a random port
// and JetStream on, storing in tb.TempDir(). Connect with s.ClientURL().
// The server is shut down at cleanup (a test may shut it down earlier).
func NATS(tb testing.TB) *server.Server {
	tb.Helper()
	return NATSWithStore(tb, tb.TempDir(), -1)
}

// NATSWithStore is NATS with the JetStream store in dir and the client
// port port (-1 or 0 picks a random one). A test restarts NATS keeping
// its streams and KV buckets by shutting the first server down
// (Shutdown, WaitForShutdown) and calling NATSWithStore again with the
// same dir and the first server's port (see Port).
func NATSWithStore(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		ServerName:            "stacktest",
		Host:                  "127.0.0.1",
		Port:                  port,
		NoLog:                 true,
		NoSigs:                true,
		MaxControlLine:        4096,
		DisableShortFirstPing: true,
		JetStream:             true,
		StoreDir:              dir,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("stacktest: nats server: %v", err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatalf("stacktest: nats server on port %d not ready within 10s", port)
	}
	if !s.JetStreamEnabled() {
		tb.Fatalf("stacktest: nats server started without JetStream")
	}
	return s
}

// Port returns the client port s listens on.
func Port(tb testing.TB, s *server.Server) int {
	tb.Helper()
	addr := s.Addr()
	if addr == nil {
		tb.Fatalf("stacktest: nats server is not listening")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		tb.Fatalf("stacktest: nats server address %v is not TCP", addr)
	}
	return tcp.Port
}

// Connect connects to the NATS server at url and closes the connection at
// cleanup.
func Connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("stacktest: connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// WaitBridge waits until a bridge answers on nc: its micro service
// "instant" lists the request endpoints, which it adds after its stream
// and publish subscriptions exist. It fails the test after 30s.
func WaitBridge(tb testing.TB, nc *nats.Conn) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msg, err := nc.Request("$SRV.INFO.instant", nil, 200*time.Millisecond)
		if err == nil && strings.Contains(string(msg.Data), "request-channel") {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("stacktest: the bridge's request service did not come up within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
