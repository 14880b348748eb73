//go:build !unix

package sfnsvc

import "os/exec"

// setProcessGroup does nothing where there are no Unix process groups.
func setProcessGroup(*exec.Cmd) {}

// signalGroup can only kill the process itself where there are no Unix process groups.
func signalGroup(cmd *exec.Cmd, _ bool) {
	_ = cmd.Process.Kill()
}
