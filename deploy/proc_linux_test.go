package deploy_test

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the child when the test
// binary dies without running its cleanups (e.g. on a -timeout panic).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
