//go:build !linux

package deploy_test

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent death
// signal; cleanups still kill the child.
func setParentDeathSignal(*exec.Cmd) {}
