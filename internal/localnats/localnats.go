// Package localnats runs a NATS server with JetStream inside the process:
// the bus of the one-command local stack.
package localnats

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure Start.
type Options struct {
	// Host to listen on. Defaults to "127.0.0.1".
	Host string
	// Port to listen on; -1 picks a free one. Defaults to 4222.
	Port int
	// StoreDir keeps JetStream data (streams, the registry) across runs.
	StoreDir string
}

// Start starts the server and waits until it accepts connections. The
// caller stops it with Shutdown and WaitForShutdown.
func Start(o Options) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "instant-dev",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not listening on %s:%d after 10s (port in use?)", o.Host, o.Port)
	}
	return s, nil
}
