package export_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
)

// exportScale is the size of TestExportAtScale: small in `make test`, the issue's
// figures with TENANTFLOW_EXPORT_SCALE=full.
type exportScale struct {
	Items, ItemBytes int
	// MinChunks is the fewest chunk invocations the export must take.
	MinChunks int
	Limit     time.Duration
}

func scale() exportScale {
	if os.Getenv("TENANTFLOW_EXPORT_SCALE") == "full" {
		// 200,000 items of ~500 bytes: ~100 MB of items, ~75 MB compressed.
		return exportScale{Items: 200_000, ItemBytes: 450, MinChunks: 3, Limit: 20 * time.Minute}
	}
	// ~10 MB of NDJSON, ~8 MB compressed: two parts of 5 MiB.
	return exportScale{Items: 10_000, ItemBytes: 900, MinChunks: 2, Limit: 3 * time.Minute}
}

const chunkFunction = "ExportChunkFunction"

// TestExportAtScale exports a big tenant twice: once cleanly, once with the second
// chunk invocation failing after its handler ran (its part uploaded and committed,
// its answer lost as with a Lambda timeout), which the state machine retries. Both
// files must check out against their reported checksum, hold every item exactly once
// in order, and carry the same lines (the second also lists the first file among the
// tenant's objects, and its manifest names its own export).
func TestExportAtScale(t *testing.T) {
	sc := scale()
	s := stackFor(t)
	ctx := context.Background()
	const id = "tenant_bigco"
	st.Clone(t, s, "tenant_acme", id)
	start := time.Now()
	if err := s.LoadData(ctx, id, sc.Items, sc.ItemBytes); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d items of %d characters in %s", sc.Items, sc.ItemBytes, time.Since(start).Round(time.Millisecond))

	clean := runExport(t, s, id, sc, nil)
	t.Logf("clean export: %d chunk invocations, %d bytes, %d lines, %s, chunk peak RSS %.1f MB",
		clean.chunks, clean.size, len(clean.lines), clean.took.Round(time.Millisecond), float64(clean.peakRSS)/1e6)
	if clean.chunks < sc.MinChunks {
		t.Errorf("the export took %d chunk invocations, want at least %d", clean.chunks, sc.MinChunks)
	}

	fault := &lambdasvc.FaultSpec{Function: chunkFunction, After: true, Skip: 1, Count: 1,
		ErrorType: "Sandbox.Timedout", Message: "Task timed out after 60.00 seconds"}
	retried := runExport(t, s, id, sc, fault)
	t.Logf("export with a lost chunk answer: %d chunk invocations (%d faulted), %d bytes, %s",
		retried.chunks, retried.faults, retried.size, retried.took.Round(time.Millisecond))
	if retried.faults != 1 || retried.chunks != clean.chunks+1 {
		t.Errorf("faulted run: %d chunk invocations with %d faults, want %d with 1 (the fault must hit once and be retried once)",
			retried.chunks, retried.faults, clean.chunks+1)
	}
	if !slices.Equal(clean.lines, retried.lines) {
		t.Errorf("the retried export's lines differ from the clean one's (%d vs %d lines)", len(retried.lines), len(clean.lines))
	}
	if retried.manifest["export_id"] != retried.exportID || retried.manifest["generated_at"] == nil {
		t.Errorf("manifest %v does not name export %s", retried.manifest, retried.exportID)
	}
}

type exportRun struct {
	exportID       string
	chunks, faults int
	size           int
	took           time.Duration
	peakRSS        int64
	// lines are the SHA-256 of every line but the object listing and the manifest,
	// which name other exports by design.
	lines    [][32]byte
	manifest map[string]any
}

func runExport(t *testing.T, s *stack.Stack, id string, sc exportScale, fault *lambdasvc.FaultSpec) exportRun {
	t.Helper()
	s.Lambda.ResetStats()
	if fault != nil {
		if err := s.Lambda.Inject(*fault); err != nil {
			t.Fatal(err)
		}
		defer s.Lambda.ClearFaults()
	}
	begin := time.Now()
	code, b := request(t, s, id, admin)
	if code != 202 {
		t.Fatalf("POST exports: %d %v", code, b)
	}
	run := exportRun{exportID: b["export_id"].(string)}
	done := waitCompletedWithin(t, s, id, run.exportID, sc.Limit)
	run.took = time.Since(begin)
	stats := s.Lambda.Stats()[chunkFunction]
	run.chunks, run.faults = stats.Invocations, stats.Faults
	if procs, err := s.Lambda.Processes(chunkFunction); err == nil {
		for _, p := range procs {
			run.peakRSS = max(run.peakRSS, p.PeakRSSBytes)
		}
	}

	res, err := http.Get(done["download_url"].(string))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, res)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	run.size = len(raw)
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != done["sha256"] || float64(len(raw)) != done["size_bytes"] {
		t.Fatalf("export %s: downloaded %d bytes with sha256 %x; reported %v bytes, %v", run.exportID, len(raw), sum, done["size_bytes"], done["sha256"])
	}
	run.lines, run.manifest = scanExport(t, raw, sc.Items)
	counts := run.manifest["counts"].(map[string]any)
	if counts["tenant_data"] != float64(sc.Items) {
		t.Errorf("manifest counts %v, want tenant_data %d", counts, sc.Items)
	}
	return run
}

// scanExport reads the file as one gzip stream: every line parses, the tenant's items
// appear exactly once and in key order, and the last line is the manifest.
func scanExport(t *testing.T, raw []byte, items int) ([][32]byte, map[string]any) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var (
		lines    [][32]byte
		manifest map[string]any
		next     int
	)
	for sc.Scan() {
		var rec struct {
			Source string         `json:"source"`
			Data   map[string]any `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d does not parse: %v", len(lines)+1, err)
		}
		if manifest != nil {
			t.Fatalf("a %s line follows the manifest", rec.Source)
		}
		switch rec.Source {
		case "manifest":
			manifest = rec.Data
			continue
		case "exports":
			continue
		case "tenant_data":
			if want := fmt.Sprintf("item#%09d", next); rec.Data["item_id"] != want {
				t.Fatalf("tenant_data line %d is %v, want %s (a line lost or written twice)", next, rec.Data["item_id"], want)
			}
			next++
		}
		lines = append(lines, sha256.Sum256(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if manifest == nil {
		t.Fatal("the export has no manifest line")
	}
	if next != items {
		t.Errorf("the export holds %d items, want %d", next, items)
	}
	return lines, manifest
}
