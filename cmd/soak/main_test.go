package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad flags are refused before any stack starts.
func TestFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-focus", "nope"}, `no focus "nope"`},
		{[]string{"-count", "0"}, "-count 0 needs a -duration"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-count", "x"}, "invalid value"},
	} {
		var out, errs bytes.Buffer
		if code := run(c.args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", c.args, code, errs.String())
		}
		if !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: stderr %q, want %q", c.args, errs.String(), c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", c.args, out.String())
		}
	}
}
