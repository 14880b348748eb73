package lambdasvc

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// logSink serialises whole lines onto the shared log writer, so lines printed at
// the same time by concurrent function processes never interleave mid-line.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) writeLine(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(line)
}

func (s *logSink) printf(prefix, format string, args ...any) {
	s.writeLine([]byte(prefix + fmt.Sprintf(format, args...) + "\n"))
}

// maxLine bounds a buffered partial line; a longer one is emitted in pieces rather
// than growing without limit.
const maxLine = 64 << 10

// lineWriter prefixes every line of one output stream of one process. os/exec
// calls Write from a single goroutine per stream, so buf needs no lock; the sink
// has one.
type lineWriter struct {
	sink   *logSink
	prefix []byte
	buf    []byte
}

func newLineWriter(sink *logSink, prefix string) *lineWriter {
	return &lineWriter{sink: sink, prefix: []byte(prefix)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// flush emits a final line without a newline (a process that died mid-line).
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(append(append(out, w.prefix...), line...), '\n')
	w.sink.writeLine(out)
}
