package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

func notifySignals(c chan<- os.Signal) { signal.Notify(c, os.Interrupt, syscall.SIGTERM) }

// prefixWriter prefixes every line written to w. Callers write whole lines (slog
// handlers and the builder do), so no partial line is buffered.
func prefixWriter(w io.Writer, prefix string) io.Writer { return &prefixed{w: w, prefix: prefix} }

type prefixed struct {
	w      io.Writer
	prefix string
}

func (p *prefixed) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out.WriteString(p.prefix)
		out.Write(line)
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// prettyLog renders the functions' JSON log lines ("[Fn] {"time":...,"level":...,
// "msg":...}") as "[Fn] LEVEL msg key=value ..." so one stream of many functions stays
// readable; any other line passes through unchanged. The local Lambda service writes
// one whole line per Write.
type prettyLog struct{ w io.Writer }

func (p *prettyLog) Write(b []byte) (int, error) {
	if line, ok := renderJSONLine(b); ok {
		if _, err := p.w.Write(line); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return p.w.Write(b)
}

// renderJSONLine rewrites "[prefix] {json}\n"; ok is false when b is not such a line.
func renderJSONLine(b []byte) ([]byte, bool) {
	prefix, rest, found := bytes.Cut(b, []byte("] {"))
	if !found || len(prefix) == 0 || prefix[0] != '[' || bytes.ContainsAny(prefix, " \n") {
		return nil, false
	}
	raw := bytes.TrimRight(append([]byte("{"), rest...), "\r\n")
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil, false
	}
	msg, hasMsg := m["msg"].(string)
	if !hasMsg {
		if msg, hasMsg = m["message"].(string); !hasMsg {
			return nil, false
		}
	}
	level, _ := m["level"].(string)
	var out bytes.Buffer
	out.Write(prefix)
	out.WriteString("] ")
	if level != "" {
		fmt.Fprintf(&out, "%-5s ", strings.ToUpper(level))
	}
	out.WriteString(msg)
	keys := make([]string, 0, len(m))
	for k := range m {
		switch k {
		case "time", "level", "msg", "message":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.WriteByte(' ')
		out.WriteString(k)
		out.WriteByte('=')
		switch v := m[k].(type) {
		case string:
			if v == "" || strings.ContainsAny(v, " \t\"=") {
				out.WriteString(fmt.Sprintf("%q", v))
			} else {
				out.WriteString(v)
			}
		default:
			j, _ := json.Marshal(v)
			out.Write(j)
		}
	}
	out.WriteByte('\n')
	return out.Bytes(), true
}

// accessLog renders the gateway's slog records as one short line each:
// "[gateway] GET /tenants/tenant_acme -> 200 12ms ApiFunction" (or the authorizer's
// reason instead of the function on a 401/403), and any other record as "LEVEL msg key=value".
type accessLog struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *accessLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *accessLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &accessLog{w: h.w, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *accessLog) WithGroup(string) slog.Handler { return h }

func (h *accessLog) Handle(_ context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	get := func(k string) string {
		for _, a := range attrs {
			if a.Key == k {
				if a.Value.Kind() == slog.KindDuration {
					return a.Value.Duration().Round(100 * time.Microsecond).String()
				}
				return a.Value.String()
			}
		}
		return ""
	}
	var b strings.Builder
	b.WriteString("[gateway] ")
	if r.Message == "http request" {
		fmt.Fprintf(&b, "%s %s -> %s %s", get("method"), get("path"), get("status"), get("latency"))
		if e := get("auth_error"); e != "" {
			b.WriteString(" (authorizer: " + e + ")")
		} else if fn := get("function"); fn != "" {
			b.WriteString(" " + fn)
		}
	} else {
		b.WriteString(r.Level.String() + " " + r.Message)
		for _, a := range attrs {
			fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}
