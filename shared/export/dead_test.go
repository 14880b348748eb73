package export_test

import (
	"context"
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
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
)

// TestDeadExportDoesNotBlockANewOne: an export job whose execution ended without
// ending the job (its steps and its release all failed), or that never got an
// execution (the API died between its job write and StartExecution), must not be
// handed back to every later request: the next POST ends it failed, says why, aborts
// its upload, and creates a new export that runs to completion.
func TestDeadExportDoesNotBlockANewOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		// kill leaves a dead job of tenant_acme and returns its id.
		kill      func(t *testing.T, s *stack.Stack) string
		wantError string
		complete  bool
	}{
		{"execution ended, job running with an upload", func(t *testing.T, s *stack.Stack) string {
			return deadExecution(t, s, "ExportChunkFunction", export.Running)
		}, "ExecutionEnded", true},
		{"execution ended, job queued", func(t *testing.T, s *stack.Stack) string {
			return deadExecution(t, s, "ExportStartFunction", export.Queued)
		}, "ExecutionEnded", false},
		{"execution never started", func(t *testing.T, s *stack.Stack) string {
			return neverStarted(t, s, "tenant_acme", time.Hour)
		}, "ExecutionNeverStarted", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stackFor(t)
			dead := tc.kill(t, s)
			code, b := request(t, s, "tenant_acme", st.TenantToken("tenant_acme"))
			if code != 202 || b["export_id"] == dead || b["status"] != "queued" {
				t.Fatalf("POST exports after export %s died: %d %v, want 202 with a new queued export", dead, code, b)
			}
			old := fixtureJobOf(t, s, dead)
			if old.Status != export.Failed || old.Error != tc.wantError || old.Cause == "" {
				t.Errorf("dead export %s is %s %q (%q), want failed %s with its cause", dead, old.Status, old.Error, old.Cause, tc.wantError)
			}
			checkAborted(t, s, old)
			if tc.complete {
				waitCompleted(t, s, "tenant_acme", b["export_id"].(string))
			}
		})
	}
}

// deadExecution requests an export of tenant_acme whose step fails for good and whose
// release fails too, waits for its execution to end and checks that it left the job
// in status want: the dead job of issue 19.
func deadExecution(t *testing.T, s *stack.Stack, step string, want export.Status) string {
	t.Helper()
	defer s.Lambda.ClearFaults()
	for _, fn := range []string{step, "ExportReleaseFunction"} {
		if err := s.Lambda.Inject(lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "Lambda.ServiceException", Message: "down (test)"}); err != nil {
			t.Fatal(err)
		}
	}
	code, b := request(t, s, "tenant_acme", admin)
	if code != 202 {
		t.Fatalf("POST exports: %d %v", code, b)
	}
	id := b["export_id"].(string)
	if status := waitExecutionEnd(t, s, id); status == "RUNNING" {
		t.Fatalf("execution %s still running", id)
	}
	if job := fixtureJobOf(t, s, id); job.Status != want {
		t.Fatalf("setup: the dead export is %s, want %s", job.Status, want)
	}
	return id
}

// neverStarted records what a request that died between its two writes leaves: the
// tenant's marker naming a queued job, written age ago, with no execution.
func neverStarted(t *testing.T, s *stack.Stack, tenantID string, age time.Duration) string {
	t.Helper()
	ctx := context.Background()
	jobs := &export.Jobs{DB: s.DynamoDB(), Table: s.TenantsTable}
	seen, _, err := jobs.Active(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-age)
	id := export.NewExportID()
	if err := jobs.MoveActive(ctx, tenantID, seen, id, at); err != nil {
		t.Fatal(err)
	}
	job := &export.Job{ID: id, TenantID: tenantID, Status: export.Queued, RequestedBy: "user_" + tenantID, CreatedAt: at, UpdatedAt: at,
		Key: export.ObjectKey(tenantID, id), Counts: map[string]int64{}, Cursor: export.Cursor{Phase: export.PhaseControl}}
	if err := jobs.Put(ctx, job, -1, ""); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitExecutionEnd polls the export's execution until it is no longer running and
// returns its status.
func waitExecutionEnd(t *testing.T, s *stack.Stack, exportID string) string {
	t.Helper()
	arn := flow.ExecutionARN(s.StateMachines["ExportStateMachine"], exportID)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := s.SFNClient().DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != "RUNNING" {
			return string(out.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "RUNNING"
}

// TestEndDeadJobs is the reconciler's side of the same rule: every open job (through
// the Open index) without a live execution is ended once StartGrace has passed, its
// upload aborted and its index keys removed; younger jobs and ended ones are left
// alone, and a second run finds nothing more to do.
func TestEndDeadJobs(t *testing.T) {
	s := stackFor(t)
	ctx := context.Background()
	bucket, _ := s.Template.Ref("ExportsBucket")
	svc := &export.Service{Jobs: &export.Jobs{DB: s.DynamoDB(), Table: s.TenantsTable}, Tenants: s.Store(),
		SFN: sfnexec.New(s.SFNClient()), StateMachineARN: s.StateMachines["ExportStateMachine"], Uploads: s.S3(), Bucket: bucket.(string)}

	code, b := request(t, s, "tenant_suspended", admin)
	if code != 202 {
		t.Fatalf("POST exports of tenant_suspended: %d %v", code, b)
	}
	completed := b["export_id"].(string)
	waitCompleted(t, s, "tenant_suspended", completed)
	if item := rawJob(t, s, completed); item["open_kind"] != nil {
		t.Errorf("completed export %s still carries Open index keys", completed)
	}
	running := deadExecution(t, s, "ExportChunkFunction", export.Running)
	queued := neverStarted(t, s, "tenant_techstart", 0)
	for _, id := range []string{running, queued} {
		if item := rawJob(t, s, id); item["open_kind"] == nil || item["open_at"] == nil {
			t.Errorf("open export %s carries no Open index keys: %v", id, item)
		}
	}

	if checked, ended, err := svc.EndDeadJobs(ctx, time.Now()); err != nil || ended != 0 {
		t.Errorf("within the grace period: checked %d, ended %d (%v), want none ended", checked, ended, err)
	}
	later := time.Now().Add(export.StartGrace + time.Minute)
	checked, ended, err := svc.EndDeadJobs(ctx, later)
	if err != nil || checked != 2 || ended != 2 {
		t.Errorf("EndDeadJobs: checked %d, ended %d (%v), want 2 and 2", checked, ended, err)
	}
	for id, want := range map[string]string{running: "ExecutionEnded", queued: "ExecutionNeverStarted"} {
		tenantID := "tenant_acme"
		if id == queued {
			tenantID = "tenant_techstart"
		}
		job, err := svc.Jobs.Get(ctx, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		if job.Status != export.Failed || job.Error != want {
			t.Errorf("export %s: %s %q, want failed %s", id, job.Status, job.Error, want)
		}
		if item := rawJob(t, s, id); item["open_kind"] != nil || item["open_at"] != nil {
			t.Errorf("ended export %s still carries Open index keys", id)
		}
		checkAborted(t, s, job)
	}
	if checked, ended, err := svc.EndDeadJobs(ctx, later); err != nil || checked != 0 || ended != 0 {
		t.Errorf("second run: checked %d, ended %d (%v), want nothing open", checked, ended, err)
	}
}

// rawJob reads a job's item as stored (any tenant), for the index keys.
func rawJob(t *testing.T, s *stack.Stack, exportID string) map[string]any {
	t.Helper()
	out, err := s.DynamoDB().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.TenantsTable),
		FilterExpression:          aws.String("export_id = :id AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":id": &dbtypes.AttributeValueMemberS{Value: exportID}, ":p": &dbtypes.AttributeValueMemberS{Value: "EXPORT#"}}})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("job %s: %d items, %v", exportID, len(out.Items), err)
	}
	m := map[string]any{}
	for k, v := range out.Items[0] {
		m[k] = v
	}
	return m
}
