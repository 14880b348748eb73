package export_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/flow"
)

// The step fixtures work on two export jobs of tenant_acme that TestStepFixtures
// records first, as POST /tenants/{id}/exports would (queued, flow not started).
const (
	fixtureJob      = "exp_fixture_acme"
	fixtureStuckJob = "exp_fixture_acme_stuck"
)

// stepFixtures lists every events/export-*/*.json in the order they run: the first
// job is started, written in one chunk (acme is small), finalized, and a late Release
// leaves the completed job alone; the second job fails and Release records why.
var stepFixtures = []struct {
	file  string
	check func(t *testing.T, s *stack.Stack, payload []byte)
}{
	{"export-start/acme.json", func(t *testing.T, s *stack.Stack, p []byte) {
		job := fixtureJobOf(t, s, fixtureJob)
		if job.Status != export.Running || job.UploadID == "" || job.Estimated == 0 || !job.EstimateDone {
			t.Errorf("after start: %s, upload %q, estimate %d (complete %v)", job.Status, job.UploadID, job.Estimated, job.EstimateDone)
		}
		if pr := progressOf(t, p); !pr.More || pr.Parts != 0 {
			t.Errorf("start answered %s", p)
		}
	}},
	{"export-chunk/acme.json", func(t *testing.T, s *stack.Stack, p []byte) {
		job := fixtureJobOf(t, s, fixtureJob)
		if job.PartCount != 1 || job.Cursor.Phase != export.PhaseDone || job.Manifest == nil || job.Items != job.Manifest.Items {
			t.Errorf("after chunk: %d parts, phase %s, manifest %+v", job.PartCount, job.Cursor.Phase, job.Manifest)
		}
		if pr := progressOf(t, p); pr.More || pr.Parts != 1 {
			t.Errorf("chunk answered %s", p)
		}
	}},
	{"export-finalize/acme.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		job := fixtureJobOf(t, s, fixtureJob)
		if job.Status != export.Completed || len(job.SHA256) != 64 || job.SizeBytes != job.Bytes || job.SizeBytes == 0 {
			t.Errorf("after finalize: %s, sha256 %q, size %d of %d", job.Status, job.SHA256, job.SizeBytes, job.Bytes)
		}
	}},
	{"export-release/acme-completed.json", func(t *testing.T, s *stack.Stack, p []byte) {
		if out := outcomeOf(t, p); out.Status != "SUCCEEDED" {
			t.Errorf("release of a completed export answered %s", p)
		}
		if job := fixtureJobOf(t, s, fixtureJob); job.Status != export.Completed || job.Error != "" {
			t.Errorf("a late release changed the completed job: %s %q", job.Status, job.Error)
		}
	}},
	{"export-release/acme-stuck.json", func(t *testing.T, s *stack.Stack, p []byte) {
		if out := outcomeOf(t, p); out.Status != "FAILED" {
			t.Errorf("release answered %s", p)
		}
		job := fixtureJobOf(t, s, fixtureStuckJob)
		if job.Status != export.Failed || job.Error != "States.TaskFailed" || job.Cause != "chunk failed (fixture)" {
			t.Errorf("after release: %s %q %q", job.Status, job.Error, job.Cause)
		}
	}},
}

func TestStepFixtures(t *testing.T) {
	var files []string
	for _, f := range stepFixtures {
		files = append(files, f.file)
	}
	st.CheckListed(t, "export-*/*.json", files, nil)
	s := stackFor(t)
	jobs := &export.Jobs{DB: s.DynamoDB(), Table: s.TenantsTable}
	now := time.Now().UTC()
	for _, id := range []string{fixtureJob, fixtureStuckJob} {
		job := &export.Job{ID: id, TenantID: "tenant_acme", Status: export.Queued, RequestedBy: "operator_fixture", CreatedAt: now, UpdatedAt: now,
			Key: export.ObjectKey("tenant_acme", id), Counts: map[string]int64{}, Cursor: export.Cursor{Phase: export.PhaseControl}}
		if err := jobs.Put(context.Background(), job, -1, ""); err != nil {
			t.Fatal(err)
		}
	}
	st.PlaySteps(t, s, files, func(t *testing.T, i int, p []byte) { stepFixtures[i].check(t, s, p) })
}

func fixtureJobOf(t *testing.T, s *stack.Stack, id string) *export.Job {
	t.Helper()
	job, err := (&export.Jobs{DB: s.DynamoDB(), Table: s.TenantsTable}).Get(context.Background(), "tenant_acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func progressOf(t *testing.T, p []byte) export.Progress {
	t.Helper()
	var pr export.Progress
	if err := json.Unmarshal(p, &pr); err != nil {
		t.Fatalf("answer %s: %v", p, err)
	}
	return pr
}

func outcomeOf(t *testing.T, p []byte) flow.Outcome {
	t.Helper()
	var out flow.Outcome
	if err := json.Unmarshal(p, &out); err != nil {
		t.Fatalf("answer %s: %v", p, err)
	}
	return out
}
