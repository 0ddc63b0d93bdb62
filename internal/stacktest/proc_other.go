//go:build !linux

package stacktest

import "os/exec"

// SetParentDeathSignal does nothing where the kernel has no parent death
// signal; cleanups still kill the child.
func SetParentDeathSignal(*exec.Cmd) {}
