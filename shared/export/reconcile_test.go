package export_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/export"
)

// TestReconcilerEndsAStoppedExport: an export whose execution is stopped while its
// job runs (its upload open) is ended by nothing in the export itself: its release
// step never runs. The job stays running until one scheduled ReconcileFunction run,
// the same run that ends dead operations, which ends it failed (ExecutionEnded),
// aborts its upload and takes it out of the Open index; a second run finds nothing.
func TestReconcilerEndsAStoppedExport(t *testing.T) {
	s := stackFor(t)
	ctx := context.Background()
	defer s.Lambda.ClearFaults()
	// The first chunk is slow to answer; the execution is stopped meanwhile.
	if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: "ExportChunkFunction", Count: 1, Delay: 3 * time.Second,
		ErrorType: "Lambda.ServiceException", Message: "slow chunk (injected)"}); err != nil {
		t.Fatal(err)
	}
	code, b := request(t, s, "tenant_acme", admin)
	if code != 202 {
		t.Fatalf("POST exports: %d %v", code, b)
	}
	id := b["export_id"].(string)
	waitJob(t, s, id, func(j *export.Job) bool { return j.Status == export.Running && j.UploadID != "" })
	if _, err := s.SFNClient().StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(st.ExecutionARN(s, "ExportStateMachine", id)), Error: aws.String("StoppedByOperator"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := st.WaitExecutionEnded(t, s, "ExportStateMachine", id); got != "ABORTED" {
		t.Fatalf("execution %s ended %s, want ABORTED", id, got)
	}
	time.Sleep(3500 * time.Millisecond) // the delayed chunk invocation has answered (faulted, nothing written)
	if job := fixtureJobOf(t, s, id); job.Status != export.Running || job.UploadID == "" {
		t.Fatalf("setup: the stopped export is %s (upload %q), want running with its upload open", job.Status, job.UploadID)
	}
	if !contains(openExports(t, s), id) {
		t.Fatalf("setup: the Open index does not hold running export %s", id)
	}

	res := st.Reconcile(t, s, time.Now().UTC().Add(5*time.Minute))
	t.Logf("reconcile: %v", res)
	if res["exports_checked"] != float64(1) || res["exports_ended"] != float64(1) || res["exports_failed"] != float64(0) {
		t.Errorf("reconcile answered exports checked %v, ended %v, failed %v, want 1, 1, 0", res["exports_checked"], res["exports_ended"], res["exports_failed"])
	}
	for _, k := range []string{"now", "checked", "running", "ended", "released", "failed"} {
		if _, ok := res[k]; !ok {
			t.Errorf("reconcile answer lost its field %q: %v", k, res)
		}
	}
	job := fixtureJobOf(t, s, id)
	if job.Status != export.Failed || job.Error != "ExecutionEnded" || !strings.Contains(job.Cause, "ABORTED") {
		t.Errorf("stopped export %s after one reconcile run: %s %q (%q), want failed ExecutionEnded naming ABORTED", id, job.Status, job.Error, job.Cause)
	}
	checkAborted(t, s, job)
	if open := openExports(t, s); contains(open, id) {
		t.Errorf("the Open index still holds ended export %s: %v", id, open)
	}
	if code, v := get(t, s, "tenant_acme", id, admin); code != 200 || v["status"] != "failed" {
		t.Errorf("GET export %s: %d %v, want failed", id, code, v)
	}

	again := st.Reconcile(t, s, time.Now().UTC().Add(10*time.Minute))
	if again["exports_checked"] != float64(0) || again["exports_ended"] != float64(0) {
		t.Errorf("second reconcile run: %v, want no export checked or ended", again)
	}
}

// waitJob polls tenant_acme's job until ok says it is there.
func waitJob(t *testing.T, s *stack.Stack, id string, ok func(*export.Job) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if job := fixtureJobOf(t, s, id); ok(job) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("export %s did not reach the state the test waits for: %+v", id, fixtureJobOf(t, s, id))
}

// openExports lists the export ids the sparse Open index holds (open_kind EXPORT).
func openExports(t *testing.T, s *stack.Stack) []string {
	t.Helper()
	p := dynamodb.NewQueryPaginator(s.DynamoDB(), &dynamodb.QueryInput{
		TableName: aws.String(s.TenantsTable), IndexName: aws.String("Open"),
		KeyConditionExpression:    aws.String("open_kind = :k"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":k": &dbtypes.AttributeValueMemberS{Value: "EXPORT"}},
	})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("query the Open index: %v", err)
		}
		for _, it := range page.Items {
			if v, ok := it["export_id"].(*dbtypes.AttributeValueMemberS); ok {
				out = append(out, v.Value)
			}
		}
	}
	return out
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
