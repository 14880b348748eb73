package samlocal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Row is one fixture invocation and its verdict.
type Row struct {
	Fixture  string `json:"fixture"` // path below events/
	Function string `json:"function"`
	// Invoker is "sam local invoke" or "lambdasvc".
	Invoker string `json:"invoker"`
	// Via is how sam ran for a "sam local invoke" row: ViaForkServer or ViaExec.
	Via      string  `json:"via,omitempty"`
	Expected string  `json:"expected"`
	Got      string  `json:"got"`
	Match    bool    `json:"match"`
	Seconds  float64 `json:"seconds"`
	// Error is why the invocation itself failed (no answer at all).
	Error string `json:"error,omitempty"`
}

// AppendRow appends row to the report file path as one JSON line. Test binaries of
// several packages append to one file at once; a line this short is one write, which
// O_APPEND keeps whole.
func AppendRow(path string, row Row) error {
	line, err := json.Marshal(row)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadRows reads a report file, sorted by fixture (a fixture played twice keeps both
// rows, in the order they were written).
func ReadRows(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []Row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var r Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Fixture < rows[j].Fixture })
	return rows, sc.Err()
}

// WriteTable prints rows as a table (fixture, function, expected, got, match) and
// returns how many were invoked by `sam local invoke` and how many of those matched.
func WriteTable(w io.Writer, rows []Row) (invoked, matching int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIXTURE\tFUNCTION\tEXPECTED\tGOT\tMATCH")
	for _, r := range rows {
		got := r.Got
		if r.Error != "" {
			got = "no answer: " + firstLine(r.Error)
		}
		match := "no"
		if r.Match {
			match = "yes"
		}
		if r.Invoker == InvokerSAM {
			invoked++
			if r.Match {
				matching++
			}
		} else {
			match += " (" + r.Invoker + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Fixture, r.Function, r.Expected, got, match)
	}
	tw.Flush()
	return invoked, matching
}

// HowSAMRan says how sam ran for the "sam local invoke" rows, for the report's last
// line: "sam local invoke via a preloaded SAM CLI fork server", "... as its own sam
// process per invocation", or the count of each when the run mixed them (a fork
// server that did not start, or stopped answering, in one of the test binaries).
func HowSAMRan(rows []Row) string {
	n := map[string]int{}
	var order []string
	for _, r := range rows {
		if r.Invoker != InvokerSAM {
			continue
		}
		if n[r.Via] == 0 {
			order = append(order, r.Via)
		}
		n[r.Via]++
	}
	switch len(order) {
	case 0:
		return "no sam local invoke"
	case 1:
		return "sam local invoke " + describeVia(order[0])
	}
	sort.Strings(order) // "" < "exec" < "fork server": a stable order
	parts := make([]string, len(order))
	for i, via := range order {
		parts[i] = fmt.Sprintf("%d %s", n[via], describeVia(via))
	}
	return "sam local invoke: " + strings.Join(parts, ", ")
}

func describeVia(via string) string {
	switch via {
	case ViaForkServer:
		return "via a preloaded SAM CLI fork server"
	case ViaExec:
		return "as its own sam process per invocation"
	case "":
		return "run in a way the row does not say"
	}
	return "via " + via
}

// Invoker names of Row.Invoker.
const (
	InvokerSAM    = "sam local invoke"
	InvokerLambda = "lambdasvc"
)

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
