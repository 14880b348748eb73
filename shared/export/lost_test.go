package export_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/flow"
)

// losingTable is the tenants table behind a connection that loses the answer of the
// first PutItem lose matches: the write is done, the caller sees an error. It stands
// for a DynamoDB answer lost on the network, injected from outside the export code.
type losingTable struct {
	export.ControlPlane
	lose func(item map[string]dbtypes.AttributeValue) bool

	mu   sync.Mutex
	lost int
}

func (l *losingTable) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := l.ControlPlane.PutItem(ctx, in, optFns...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.lost == 0 && l.lose(in.Item) {
		l.lost++
		return nil, errors.New("read tcp: connection reset by peer (answer lost, test)")
	}
	return out, err
}

// stepsOn builds the export steps in this process on the stack's moto, the tenants
// table reached through db.
func stepsOn(s *stack.Stack, db export.ControlPlane) *export.Steps {
	bucket, _ := s.Template.Ref("ExportsBucket")
	r := &export.Reader{ControlPlane: s.DynamoDB(), Table: s.TenantsTable, Data: s.DynamoDB(), DataTable: s.DataTable,
		Objects: s.S3(), Bucket: bucket.(string)}
	return &export.Steps{Jobs: &export.Jobs{DB: db, Table: s.TenantsTable}, Reader: r, Now: time.Now,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), PartBytes: export.MinPartBytes}
}

// TestStartKeepsItsUploadWhenOnlyTheAnswerWasLost: Start's write that moves the job to
// running succeeds but its answer is lost. The upload that write recorded is the
// export's: Start must not abort it but answer as started, and the export then
// completes (chunks and finalize write into that upload).
func TestStartKeepsItsUploadWhenOnlyTheAnswerWasLost(t *testing.T) {
	s := stackFor(t)
	ctx := context.Background()
	db := &losingTable{ControlPlane: s.DynamoDB(), lose: func(item map[string]dbtypes.AttributeValue) bool {
		st, _ := item["status"].(*dbtypes.AttributeValueMemberS)
		return st != nil && st.Value == string(export.Running)
	}}
	steps := stepsOn(s, db)
	id := neverStarted(t, s, "tenant_acme", 0)
	in := export.Input{Ref: flow.Ref{OperationID: id, TenantID: "tenant_acme", Kind: export.Kind}}

	// Start's work is done: it must answer so. An error here is not one the state
	// machine retries (it is no TransientError); it would send the export to its
	// release, which fails it and aborts the upload.
	pr, err := steps.Start(ctx, in)
	if err != nil || db.lost != 1 {
		t.Errorf("start answered %v after its write was done and only the answer lost (answers lost: %d)", err, db.lost)
		if pr, err = steps.Start(ctx, in); err != nil { // as a retry would
			t.Fatalf("start again: %v", err)
		}
	}
	job := fixtureJobOf(t, s, id)
	if job.Status != export.Running || job.UploadID == "" {
		t.Fatalf("after start: %s, upload %q", job.Status, job.UploadID)
	}
	ups, err := s.S3().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(steps.Reader.Bucket), Prefix: aws.String(job.Key)})
	if err != nil {
		t.Fatal(err)
	}
	open := false
	for _, u := range ups.Uploads {
		open = open || aws.ToString(u.UploadId) == job.UploadID
	}
	if !open {
		t.Errorf("the upload %s the job records was aborted (%d uploads open under its key)", job.UploadID, len(ups.Uploads))
	}
	for in.Chunk = &pr; pr.More; in.Chunk = &pr {
		if pr, err = steps.Chunk(ctx, in); err != nil {
			t.Fatalf("chunk: %v", err)
		}
	}
	if _, err := steps.Finalize(ctx, in); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if job := fixtureJobOf(t, s, id); job.Status != export.Completed || len(job.SHA256) != 64 {
		t.Errorf("export %s %q, want completed", job.Status, job.SHA256)
	}
}

// TestFinalizeRefusesAPartOverwrittenAfterItsCommit: the job keeps no ETags, only a
// count and a digest of its parts, and Finalize must still refuse an upload whose part
// is not the committed one (a zombie chunk invocation writing other bytes after the
// commit): the file would not match its checksum.
func TestFinalizeRefusesAPartOverwrittenAfterItsCommit(t *testing.T) {
	s := stackFor(t)
	ctx := context.Background()
	steps := stepsOn(s, s.DynamoDB())
	id := neverStarted(t, s, "tenant_acme", 0)
	in := export.Input{Ref: flow.Ref{OperationID: id, TenantID: "tenant_acme", Kind: export.Kind}}
	pr, err := steps.Start(ctx, in)
	for in.Chunk = &pr; err == nil && pr.More; in.Chunk = &pr {
		pr, err = steps.Chunk(ctx, in)
	}
	if err != nil {
		t.Fatal(err)
	}
	job := fixtureJobOf(t, s, id)
	if job.PartCount != 1 {
		t.Fatalf("acme's export took %d parts, want 1", job.PartCount)
	}
	// Other bytes of the same size: only the ETag tells them apart.
	body := bytes.Repeat([]byte("x"), int(job.Bytes))
	if _, err := s.S3().UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(steps.Reader.Bucket), Key: aws.String(job.Key), UploadId: aws.String(job.UploadID),
		PartNumber: aws.Int32(int32(job.PartCount)), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}); err != nil {
		t.Fatal(err)
	}
	_, err = steps.Finalize(ctx, in)
	var mismatch *export.PartsMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("finalize over an overwritten part: %v, want a PartsMismatchError", err)
	}
	t.Logf("finalize refused: %v", err)
	if job := fixtureJobOf(t, s, id); job.Status != export.Running || job.SHA256 != "" {
		t.Errorf("the job is %s with sha256 %q after the refusal", job.Status, job.SHA256)
	}
}
