//go:build !linux

package child

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal does nothing where the kernel has no parent death
// signal: the caller's stop or cleanup still ends the child.
func setParentDeathSignal(*exec.Cmd, syscall.Signal) {}
