package lambdasvc

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one live process of a function, as the kernel reports it.
type Process struct {
	PID int `json:"pid"`
	// PeakRSSBytes is the process's high-water mark of resident memory (VmHWM of
	// /proc/<pid>/status): what Lambda's "Max Memory Used" reports for an
	// execution environment. 0 where /proc is not readable.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

// Processes lists the live processes of one function (by logical ID or name), so a
// benchmark can read the memory a function really used.
func (s *Service) Processes(name string) ([]Process, error) {
	f, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var pids []int
	for inst := range s.live {
		if inst.fn == f {
			pids = append(pids, inst.pid)
		}
	}
	s.mu.Unlock()
	sort.Ints(pids)
	out := make([]Process, 0, len(pids))
	for _, pid := range pids {
		out = append(out, Process{PID: pid, PeakRSSBytes: peakRSS(pid)})
	}
	return out, nil
}

// Recycle ends the warm (idle) processes of a function, so that its next invocation
// starts a fresh execution environment: a measurement of one run's peak memory must
// not inherit the high-water mark of an earlier run. Busy processes are left alone.
func (s *Service) Recycle(name string) error {
	f, err := s.lookup(name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	idle := f.idle
	f.idle = nil
	f.mu.Unlock()
	for _, inst := range idle {
		inst.kill(syscall.SIGTERM)
	}
	for _, inst := range idle {
		inst.waitExit(2 * time.Second)
	}
	return nil
}

// Kill ends every live process of a function at once (SIGKILL to its process
// group), as a crash of its execution environments would: an invocation in flight
// ends with Runtime.ExitError wherever its work had got to, and the next invocation
// starts a new process. It reports how many processes it killed. Tests use it to
// kill a function between two of its writes, from outside.
func (s *Service) Kill(name string) (int, error) {
	f, err := s.lookup(name)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	var victims []*instance
	for inst := range s.live {
		if inst.fn == f {
			victims = append(victims, inst)
		}
	}
	s.mu.Unlock()
	for _, inst := range victims {
		inst.kill(syscall.SIGKILL)
	}
	for _, inst := range victims {
		inst.waitExit(2 * time.Second)
	}
	return len(victims), nil
}

// peakRSS reads VmHWM (kB) of a process.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
