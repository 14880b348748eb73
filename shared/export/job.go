// Package export is the GDPR data export of one tenant: POST /tenants/{id}/exports
// records a job (Service.Request) and starts statemachines/export.asl.json, whose steps
// (Steps) read every data source of the tenant in chunks and stream it as gzipped
// NDJSON into one S3 multipart upload under exports/<tenant_id>/.
//
// Why it is built this way:
//   - Unbounded by Lambda's 15 minutes: each Chunk invocation writes exactly one
//     multipart part (≥ 5 MiB, S3's minimum for every part but the last) and hands a
//     cursor back to the state machine's loop, so an export of any size is a sequence
//     of short invocations.
//   - Flat memory: a chunk holds one part's compressed bytes and one Query page,
//     whatever the tenant's size. The running SHA-256 of the whole file travels
//     between invocations as the digest's marshalled state (sha256 implements
//     encoding.BinaryMarshaler), not as data.
//   - Exactly-once lines over at-least-once steps: a chunk commits cursor, hash state
//     and the part's ETag to the job record only after the part is uploaded, with a
//     condition on the part count. A chunk that dies before its commit is re-run from
//     the state recorded before the part and re-uploads the same part number with the
//     same bytes (S3 keeps the last upload of a part number); a re-run of a chunk whose
//     commit happened (its answer was lost) finds the part recorded and does nothing.
//   - Each part is one gzip member; concatenated members are one valid gzip file, so
//     `gunzip` and Go's gzip.Reader read the export as one stream.
//
// The export never claims the tenant (it reads, it changes nothing), so it runs for
// ACTIVE, SUSPENDED and DELETED-in-retention tenants alongside any other flow.
package export

import (
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
)

// Kind is the flow kind of exports (the Ref.Kind of every step input).
const Kind = "export"

// FormatVersion is the version of the NDJSON format (docs/export-format.md).
const FormatVersion = 1

// Status of an export job.
type Status string

// The statuses of a job: queued (recorded, flow not yet started reading), running,
// completed (the file is complete and checksummed) and failed.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Completed Status = "completed"
	Failed    Status = "failed"
)

// Source names of the export's records (the "source" field of every line).
const (
	SourceTenant       = "tenant"
	SourceAudit        = "audit"
	SourceEntitlements = "entitlements"
	SourceOperations   = "operations"
	SourceTenantData   = "tenant_data"
	SourceExports      = "exports"
)

// Sources lists every source in the order the export writes them.
var Sources = []string{SourceTenant, SourceAudit, SourceEntitlements, SourceOperations, SourceTenantData, SourceExports}

// Phases of the cursor: the control-plane records are written in full by the first
// chunk (they are small), then the data table and the object listing page by page.
const (
	PhaseControl = "control"
	PhaseData    = "data"
	PhaseObjects = "objects"
	PhaseDone    = "done"
)

// Cursor is where the next chunk resumes.
type Cursor struct {
	Phase string `json:"phase" dynamodbav:"phase"`
	// After is the last item_id (data) or object key (objects) already written.
	After string `json:"after,omitempty" dynamodbav:"after,omitempty"`
}

// Part is one uploaded multipart part.
type Part struct {
	Number int32  `json:"number" dynamodbav:"number"`
	ETag   string `json:"etag" dynamodbav:"etag"`
	Size   int64  `json:"size" dynamodbav:"size"`
}

// Manifest is the export's last line and is kept on the job.
type Manifest struct {
	FormatVersion int              `json:"format_version" dynamodbav:"format_version"`
	TenantID      string           `json:"tenant_id" dynamodbav:"tenant_id"`
	ExportID      string           `json:"export_id" dynamodbav:"export_id"`
	GeneratedAt   time.Time        `json:"generated_at" dynamodbav:"generated_at"`
	Sources       []string         `json:"sources" dynamodbav:"sources"`
	Counts        map[string]int64 `json:"counts" dynamodbav:"counts"`
	Items         int64            `json:"items" dynamodbav:"items"`
}

// Job is the export's record in the tenants table (pk TENANT#<id>, sk EXPORT#<id>):
// the purge deletes it with the rest of the tenant's partition.
type Job struct {
	PK          string    `json:"-" dynamodbav:"pk"`
	SK          string    `json:"-" dynamodbav:"sk"`
	ID          string    `json:"export_id" dynamodbav:"export_id"`
	TenantID    string    `json:"tenant_id" dynamodbav:"tenant_id"`
	Status      Status    `json:"status" dynamodbav:"status"`
	RequestedBy string    `json:"requested_by,omitempty" dynamodbav:"requested_by,omitempty"`
	CreatedAt   time.Time `json:"created_at" dynamodbav:"created_at"`
	UpdatedAt   time.Time `json:"updated_at" dynamodbav:"updated_at"`
	// GeneratedAt is when the export started reading (the manifest's generated_at):
	// fixed once, so a re-written part carries the same bytes.
	GeneratedAt *time.Time `json:"generated_at,omitempty" dynamodbav:"generated_at,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty" dynamodbav:"completed_at,omitempty"`

	Key       string           `json:"-" dynamodbav:"object_key"`
	UploadID  string           `json:"-" dynamodbav:"upload_id,omitempty"`
	Parts     []Part           `json:"-" dynamodbav:"parts"`
	PartCount int              `json:"parts" dynamodbav:"part_count"`
	HashState []byte           `json:"-" dynamodbav:"hash_state,omitempty"`
	Cursor    Cursor           `json:"-" dynamodbav:"cursor"`
	Counts    map[string]int64 `json:"counts" dynamodbav:"counts"`
	Items     int64            `json:"items" dynamodbav:"items"`
	Bytes     int64            `json:"bytes" dynamodbav:"bytes"`
	Estimated int64            `json:"estimated_items" dynamodbav:"estimated_items"`
	// EstimateAfter and EstimateDone are where the budgeted count stands (see
	// EstimateBudget): until it is done, Estimated is a lower bound.
	EstimateAfter string `json:"-" dynamodbav:"estimate_after,omitempty"`
	EstimateDone  bool   `json:"estimate_complete" dynamodbav:"estimate_done"`

	SizeBytes int64     `json:"size_bytes,omitempty" dynamodbav:"size_bytes,omitempty"`
	SHA256    string    `json:"sha256,omitempty" dynamodbav:"sha256,omitempty"`
	Manifest  *Manifest `json:"manifest,omitempty" dynamodbav:"manifest,omitempty"`
	Error     string    `json:"error,omitempty" dynamodbav:"error,omitempty"`
	Cause     string    `json:"cause,omitempty" dynamodbav:"cause,omitempty"`
}

// Percent is the progress against the estimate (capped at 99 until the export
// completes: the estimate is a count taken while reading, and a lower bound until
// EstimateDone).
func (j *Job) Percent() float64 {
	switch {
	case j.Status == Completed:
		return 100
	case j.Estimated <= 0:
		return 0
	}
	return min(99, float64(j.Items)*100/float64(max(j.Estimated, j.Items)))
}

// Key prefixes of the job record and the object.
const skPrefix = "EXPORT#"

// ObjectKey is where an export's file lives in the exports bucket.
func ObjectKey(tenantID, exportID string) string {
	return "exports/" + tenantID + "/" + exportID + ".ndjson.gz"
}

// Input is the execution input and what every step receives.
type Input struct {
	flow.Ref
	// Chunk is the last chunk's answer (ResultPath $.chunk); the loop runs while More.
	Chunk *Progress `json:"chunk,omitempty"`
	// Error is set by the state machine's Catch (ResultPath $.error).
	Error *flow.CaughtError `json:"error,omitempty"`
}

// Progress is what the last chunk left: how many parts are recorded and whether more
// remain. Parts is what the next chunk expects to find recorded: a chunk that finds
// more already recorded is a re-run of a committed chunk and does nothing.
type Progress struct {
	Parts int   `json:"parts"`
	More  bool  `json:"more"`
	Items int64 `json:"items"`
	Bytes int64 `json:"bytes"`
}

func checkRef(ref flow.Ref) error {
	if ref.Kind != Kind {
		return &ValidationError{Field: "kind", Reason: "must be " + Kind}
	}
	if ref.OperationID == "" || ref.TenantID == "" {
		return &ValidationError{Field: "operation_id", Reason: "operation_id (the export id) and tenant_id are required"}
	}
	return nil
}

// ValidationError is a step input the export cannot work with.
type ValidationError struct{ Field, Reason string }

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// JobStateError is a step run on a job in a state it cannot act on (a chunk of a
// failed export, a finalize before the last chunk): final, caught by the machine.
type JobStateError struct {
	ExportID string
	Reason   string
}

func (e *JobStateError) Error() string { return "export " + e.ExportID + ": " + e.Reason }
