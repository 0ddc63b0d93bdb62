package stacktest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// Redis is the system's redis-server on a free loopback port, with its
// append-only file on (so a restart with SIGTERM keeps Centrifugo's
// history, as a production Redis would); Centrifugo's Redis engine uses
// it.
type Redis struct {
	*Proc
	Port int
}

// RedisServer is where Debian's redis-server package installs it.
const RedisServer = "/usr/bin/redis-server"

// StartRedis starts redis-server and returns once it answers PING; args
// are further redis-server options, which override the defaults (e.g.
// "--appendonly", "no" for a benchmark). The test is skipped when
// redis-server is not installed.
func StartRedis(tb testing.TB, args ...string) *Redis {
	tb.Helper()
	if _, err := os.Stat(RedisServer); err != nil {
		tb.Skipf("%s not installed", RedisServer)
	}
	r := &Redis{Port: FreePort(tb)}
	opts := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--dir", tb.TempDir()}
	r.Proc = NewProc(tb, "redis", nil, RedisServer, append(opts, args...)...)
	r.Start(tb)
	return r
}

// Addr returns 127.0.0.1:Port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start starts redis-server and waits until it answers PING (at most
// 30s).
func (r *Redis) Start(tb testing.TB) {
	tb.Helper()
	r.Proc.Start(tb)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := r.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stacktest: redis on %s: %v", r.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *Redis) ping() error {
	conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
