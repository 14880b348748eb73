package export_test

// End-to-end test of the export as it runs in AWS: the real api bootstrap records the
// job and starts statemachines/export.asl.json on the local Step Functions service,
// whose tasks run the real export bootstraps against moto. The file is downloaded
// with net/http from the presigned URL and checked without the code under test.

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var admin = map[string]string{"sub": "operator_1", "scope": "tenants/admin"}

func request(t *testing.T, s *stack.Stack, id string, claims map[string]string) (int, map[string]any) {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/"+id+"/exports", "/tenants/{id}/exports", map[string]string{"id": id}, nil, claims))
	return resp.StatusCode, st.Body(t, resp)
}

func get(t *testing.T, s *stack.Stack, id, exportID string, claims map[string]string) (int, map[string]any) {
	t.Helper()
	resp := st.Call(t, s, st.Event(t, "GET", "/tenants/"+id+"/exports/"+exportID, "/tenants/{id}/exports/{export_id}",
		map[string]string{"id": id, "export_id": exportID}, nil, claims))
	return resp.StatusCode, st.Body(t, resp)
}

func waitCompleted(t *testing.T, s *stack.Stack, id, exportID string) map[string]any {
	t.Helper()
	return waitCompletedWithin(t, s, id, exportID, 3*time.Minute)
}

func waitCompletedWithin(t *testing.T, s *stack.Stack, id, exportID string, limit time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		_, b := get(t, s, id, exportID, admin)
		switch b["status"] {
		case "completed":
			return b
		case "failed":
			t.Fatalf("export failed: %v", b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("export %s did not complete", exportID)
	return nil
}

// stackFor is the binary's stack: parts of S3's minimum size (5 MiB), so that a few
// thousand items already take several chunk invocations.
func stackFor(t *testing.T) *stack.Stack {
	return st.SharedWith(t, st.Options{Params: map[string]string{"ExportPartBytes": "5242880"}})
}

func TestExportOfAcmeCompletesAndVerifies(t *testing.T) {
	s := stackFor(t)
	code, b := request(t, s, "tenant_acme", st.TenantToken("tenant_acme"))
	if code != 202 || b["status"] != "queued" {
		t.Fatalf("POST exports: %d %v", code, b)
	}
	id := b["export_id"].(string)
	if code, _ := get(t, s, "tenant_acme", id, st.TenantToken("tenant_globex")); code != 403 && code != 404 {
		t.Errorf("other tenant's token read the export: %d", code)
	}
	if code, _ := request(t, s, "tenant_acme", st.TenantToken("tenant_globex")); code != 403 {
		t.Errorf("other tenant's token created an export: %d", code)
	}
	done := waitCompleted(t, s, "tenant_acme", id)
	res, err := http.Get(done["download_url"].(string))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, res)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := sha256.Sum256(raw)
	t.Logf("acme export: %d bytes, sha256 %s (reported %v, size %v)", len(raw), hex.EncodeToString(sum[:]), done["sha256"], done["size_bytes"])
	if hex.EncodeToString(sum[:]) != done["sha256"] || float64(len(raw)) != done["size_bytes"] {
		t.Fatalf("checksum/size mismatch")
	}
	counts := readLines(t, raw)
	manifest := done["manifest"].(map[string]any)["counts"].(map[string]any)
	for src, n := range manifest {
		if float64(counts[src]) != n {
			t.Errorf("source %s: %d lines, manifest %v", src, counts[src], n)
		}
	}
	t.Logf("per-source lines %v; manifest %v", counts, manifest)
}

// readLines gunzips the file, parses every line as JSON and counts lines per source;
// the last line must be the manifest.
func readLines(t *testing.T, raw []byte) map[string]int {
	t.Helper()
	zr, err := gzip.NewReader(bytesReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	counts := map[string]int{}
	last := ""
	for sc.Scan() {
		var rec struct {
			Source string `json:"source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line does not parse: %v", err)
		}
		counts[rec.Source]++
		last = rec.Source
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if last != "manifest" {
		t.Errorf("last line is %q, not the manifest", last)
	}
	return counts
}

type byteReader struct {
	b []byte
	i int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }
