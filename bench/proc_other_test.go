//go:build !linux

package bench

import (
	"errors"
	"time"
)

// procs measure and control nothing outside Linux.
type procs struct{ redis int }

func newProcs() *procs { return &procs{} }

type cpuSample struct {
	centrifugo, redis, self time.Duration
	ok                      bool
}

func (m *procs) sample() cpuSample { return cpuSample{} }

var errNotLinux = errors.New("suspending Centrifugo needs Linux")

func (m *procs) suspend() error { return errNotLinux }
func (m *procs) resume() error  { return errNotLinux }

func rss(int) (int64, error) { return 0, errors.New("measuring RSS needs Linux") }
