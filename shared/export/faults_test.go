package export_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestFaultMatrix fails each export step before or after its handler runs, once or
// always, from outside (the local Lambda service), and checks how the export ends:
// a single fault is retried and the file is complete and checks out; a fault that
// never clears ends the export failed with its upload aborted, except a Finalize
// whose work was done (after-always), which ends completed. The export never claims
// the tenant, so the tenant is ACTIVE and held by nobody in every case.
func TestFaultMatrix(t *testing.T) {
	cases, passed := 0, 0
	for _, step := range []string{"ExportStartFunction", "ExportChunkFunction", "ExportFinalizeFunction"} {
		for _, after := range []bool{false, true} {
			for _, count := range []int{1, -1} {
				name := fmt.Sprintf("%s/after=%v/count=%d", step, after, count)
				cases++
				ok := t.Run(name, func(t *testing.T) {
					s := stackFor(t)
					defer s.Lambda.ClearFaults()
					s.Lambda.ResetStats()
					if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: step, After: after, Count: count,
						ErrorType: "Sandbox.Timedout", Message: "Task timed out (fault matrix)"}); err != nil {
						t.Fatal(err)
					}
					code, b := request(t, s, "tenant_acme", admin)
					if code != 202 {
						t.Fatalf("POST exports: %d %v", code, b)
					}
					id := b["export_id"].(string)
					done := waitTerminal(t, s, "tenant_acme", id)
					if f := s.Lambda.Stats()[step].Faults; f < 1 || (count == 1 && f != 1) {
						t.Errorf("%d faults served by %s, want %s", f, step, map[bool]string{true: "1", false: "at least 1"}[count == 1])
					}
					wantCompleted := count == 1 || (after && step == "ExportFinalizeFunction")
					job := fixtureJobOf(t, s, id)
					if wantCompleted {
						if done["status"] != "completed" {
							t.Fatalf("export %v, want completed", done)
						}
						checkDownload(t, done)
					} else {
						if done["status"] != "failed" || job.Error == "" {
							t.Fatalf("export %v (job error %q), want failed with the error recorded", done, job.Error)
						}
						checkAborted(t, s, job)
					}
					if tn := st.Tenant(t, s, "tenant_acme"); tn.State != tenant.Active || tn.Operation != "" {
						t.Errorf("tenant %s held by %q after the export", tn.State, tn.Operation)
					}
				})
				if ok {
					passed++
				}
			}
		}
	}
	t.Logf("export fault matrix: %d cases run, %d passed", cases, passed)
}

func waitTerminal(t *testing.T, s *stack.Stack, id, exportID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, b := get(t, s, id, exportID, admin)
		if b["status"] == "completed" || b["status"] == "failed" {
			return b
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("export %s did not end", exportID)
	return nil
}

// checkDownload downloads a completed export and checks size, checksum and lines.
func checkDownload(t *testing.T, done map[string]any) {
	t.Helper()
	res, err := http.Get(done["download_url"].(string))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, res)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != done["sha256"] || float64(len(raw)) != done["size_bytes"] {
		t.Fatalf("downloaded %d bytes, sha256 %x; reported %v, %v", len(raw), sum, done["size_bytes"], done["sha256"])
	}
	counts := readLines(t, raw)
	manifest := done["manifest"].(map[string]any)["counts"].(map[string]any)
	for src, n := range manifest {
		if float64(counts[src]) != n {
			t.Errorf("source %s: %d lines, manifest %v", src, counts[src], n)
		}
	}
}

// checkAborted: a failed export leaves no object and no open multipart upload.
func checkAborted(t *testing.T, s *stack.Stack, job *export.Job) {
	t.Helper()
	ctx := context.Background()
	for _, bucket := range s.Buckets {
		if _, err := s.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(job.Key)}); err == nil {
			t.Errorf("a failed export left its object %s/%s", bucket, job.Key)
		}
		ups, err := s.S3().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(job.Key)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 0 {
			t.Errorf("a failed export left %d open multipart upload(s)", len(ups.Uploads))
		}
	}
}
