//go:build !linux

package main

import "os/exec"

// setParentDeathSignal is a no-op where the kernel offers no such signal.
func setParentDeathSignal(*exec.Cmd) {}
