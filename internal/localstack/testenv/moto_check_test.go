package testenv

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMotoSpeedupsChangeNoAnswer runs tools/moto_server_check.py: the launcher's
// partition lookup for Query and its direct encoding of item responses must give the
// same pages and bytes as moto's own code, for every Query shape the check tries
// (limits, 1 MB pages, both directions, COUNT, filters, projections, range
// conditions, an index) and every item-carrying operation.
func TestMotoSpeedupsChangeNoAnswer(t *testing.T) {
	py, err := Tool("venv/bin/python")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join(RepoRoot(), "tools", "moto_server_check.py")).CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("moto_server_check.py: %v", err)
	}
	if !strings.Contains(string(out), ": 0 differ;") || !strings.HasSuffix(strings.TrimSpace(string(out)), ": 0 differ") {
		t.Fatalf("unexpected report: %s", out)
	}
}
