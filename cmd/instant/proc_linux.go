package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel stop the child if instant dies
// without cleaning up (SIGKILL).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
