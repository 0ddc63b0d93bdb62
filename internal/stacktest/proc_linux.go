package stacktest

import (
	"os/exec"
	"syscall"
)

// SetParentDeathSignal makes the kernel kill the child when the test
// binary dies without running its cleanups (e.g. on a -timeout panic).
func SetParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
