//go:build unix

package sfnsvc

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
)

func TestCloseLeavesNoProcess(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:9", nil)
	cfg.StateMachines = cfg.StateMachines[:1]
	svc, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := svc.cmd.Process.Pid
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("node %d not running after Start: %v", pid, err)
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("node %d still exists after Close: %v", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Close: %v", pid, err)
	}
	if _, err := os.Stat(svc.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left behind: %v", svc.dir, err)
	}
	if err := svc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
