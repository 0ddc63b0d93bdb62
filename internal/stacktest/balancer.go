package stacktest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Balancer is a TCP load balancer on 127.0.0.1, as in front of several
// Centrifugo nodes in production: each connection goes to the first
// backend, in order of preference, that accepts it, so that while the
// preferred node is down clients reconnect to another one and stay
// there. A connection whose backend goes away is closed on the client's
// side too. Its methods are safe for concurrent use; it is closed at
// cleanup.
type Balancer struct {
	Addr     string // 127.0.0.1:Port, where clients connect
	Port     int
	backends []string // host:port, preferred first
	ln       net.Listener

	mu    sync.Mutex
	conns map[net.Conn]int // open client connections → backend index
	dials []int            // connections made to each backend
}

// dialTimeout bounds the dial of one backend.
const dialTimeout = time.Second

// StartBalancer listens on a free loopback port and balances onto
// backends (host:port), preferring them in the order given.
func StartBalancer(tb testing.TB, backends ...string) *Balancer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("stacktest: balancer: %v", err)
	}
	b := &Balancer{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port, backends: backends, ln: ln,
		conns: map[net.Conn]int{}, dials: make([]int, len(backends))}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
	})
	return b
}

// serve pipes c to the first backend that accepts a connection.
func (b *Balancer) serve(c net.Conn) {
	defer c.Close()
	for i, addr := range b.backends {
		up, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			continue
		}
		b.mu.Lock()
		b.conns[c] = i
		b.dials[i]++
		b.mu.Unlock()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
		<-done // either side ended: end both
		up.Close()
		c.Close()
		<-done
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		return
	}
}

// Open returns how many connections are open to each backend.
func (b *Balancer) Open() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]int, len(b.backends))
	for _, i := range b.conns {
		out[i]++
	}
	return out
}

// Dials returns how many connections were made to each backend so far.
func (b *Balancer) Dials() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.dials...)
}
