//go:build unix

package sfnsvc

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts node in its own process group, so Close can signal everything it
// started and a terminal's Ctrl-C doesn't race our own shutdown.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends SIGTERM (or SIGKILL) to the process group led by cmd's process.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
