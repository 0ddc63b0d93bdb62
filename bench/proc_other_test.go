//go:build !linux

package bench

import (
	"errors"
	"time"
)

// procs measure and control nothing outside Linux.
type procs struct{}

func newProcs() *procs { return &procs{} }

type cpuSample struct {
	centrifugo, self time.Duration
	ok               bool
}

func (m *procs) sample() cpuSample { return cpuSample{} }

var errNotLinux = errors.New("suspending Centrifugo needs Linux")

func (m *procs) suspend() error { return errNotLinux }
func (m *procs) resume() error  { return errNotLinux }
