package stacktest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// LogLine is one line of output of the stack: what a function printed (its slog and
// metric lines, as Lambda would send them to the function's log group).
type LogLine struct {
	// Function is the template logical id of the function that printed it ("" for a
	// line without the "[LogicalId] " prefix, from another service).
	Function string
	// Text is the line without the prefix.
	Text string
}

// LogCapture holds the lines printed while one test runs.
type LogCapture struct {
	mu    sync.Mutex
	lines []LogLine
}

var (
	capturesMu sync.Mutex
	captures   = map[*LogCapture]bool{}
)

// CaptureLogs records every line the stack's functions print from now until t ends,
// so a test can check what a flow logged (for example its EMF metric lines). Other
// tests keep nothing.
func CaptureLogs(t *testing.T) *LogCapture {
	t.Helper()
	c := &LogCapture{}
	capturesMu.Lock()
	captures[c] = true
	capturesMu.Unlock()
	t.Cleanup(func() {
		capturesMu.Lock()
		delete(captures, c)
		capturesMu.Unlock()
	})
	return c
}

// Lines returns the lines captured so far. Function output reaches the capture
// through a pipe, a moment after the function wrote it: poll for what you expect.
func (c *LogCapture) Lines() []LogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogLine(nil), c.lines...)
}

// capture hands output of the stack to every active capture.
func capture(p []byte) {
	capturesMu.Lock()
	defer capturesMu.Unlock()
	if len(captures) == 0 {
		return
	}
	var lines []LogLine
	for _, raw := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		l := LogLine{Text: string(raw)}
		if rest, ok := strings.CutPrefix(l.Text, "["); ok {
			if fn, text, ok := strings.Cut(rest, "] "); ok && !strings.ContainsAny(fn, " \"{") {
				l.Function, l.Text = fn, text
			}
		}
		lines = append(lines, l)
	}
	for c := range captures {
		c.mu.Lock()
		c.lines = append(c.lines, lines...)
		c.mu.Unlock()
	}
}
