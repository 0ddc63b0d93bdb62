package bench

import (
	"bufio"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/instanthq/instant/internal/stacktest"
)

// redisServer is a redis-server child process on a loopback port, without
// persistence, for Centrifugo's Redis engine.
type redisServer struct {
	addr string
	pid  int
}

// startRedis starts redis-server (the Debian package, which `make
// packages` installs) on a free loopback port and returns once it answers
// PING. It is stopped by its PID at cleanup. The benchmark is skipped when
// redis-server is not installed.
func startRedis(b *testing.B) *redisServer {
	b.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		b.Skip("redis-server is not installed (Debian: apt-get install redis-server, or `make packages`)")
	}
	for attempt := 1; ; attempt++ {
		port := strconv.Itoa(stacktest.FreePort(b))
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
			"--dir", b.TempDir(), "--loglevel", "warning")
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			b.Fatalf("redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		r := &redisServer{addr: "127.0.0.1:" + port, pid: cmd.Process.Pid}
		deadline := time.Now().Add(setupTimeout)
		for {
			err = redisPing(r.addr)
			if err == nil {
				b.Cleanup(stop)
				return r
			}
			select {
			case <-exited:
				err = errors.New("exited: " + out.String())
			case <-time.After(50 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
			}
			break
		}
		stop()
		if attempt == 3 {
			b.Fatalf("redis-server on %s: %v", r.addr, err)
		}
	}
}

// redisPing sends PING and expects +PONG.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
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
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("redis answered " + strings.TrimSpace(line))
	}
	return nil
}
