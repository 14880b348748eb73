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
//     and the part (count and a digest chained over the parts' ETags) to the job
//     record only after the part is uploaded, with a condition on the part count. A chunk that dies before its commit is re-run from
//     the state recorded before the part and re-uploads the same part number with the
//     same bytes (S3 keeps the last upload of a part number); a re-run of a chunk whose
//     commit happened (its answer was lost) finds the part recorded and does nothing.
//   - Bounded bookkeeping: the job is one item of constant size whatever the number
//     of parts; Finalize lists the parts from S3 and checks them against the count and
//     digest (docs/export-format.md states the largest export this allows).
//   - Each part is one gzip member; concatenated members are one valid gzip file, so
//     `gunzip` and Go's gzip.Reader read the export as one stream.
//
// The export never claims the tenant (it reads, it changes nothing), so it runs for
// ACTIVE, SUSPENDED and DELETED-in-retention tenants alongside any other flow.
package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Kind is the flow kind of exports (the Ref.Kind of every step input).
const Kind = "export"

// FormatVersion is the version of the NDJSON format (docs/export-format.md). Version 2
// writes audit and operation lines in the views a tenant's own token gets (tenantview).
const FormatVersion = 2

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

	Key      string `json:"-" dynamodbav:"object_key"`
	UploadID string `json:"-" dynamodbav:"upload_id,omitempty"`
	// PartCount is how many parts the chunks have committed, and PartsDigest a hash
	// chained over each of them (number, ETag, size: see recordPart). The parts
	// themselves are not kept: S3 lists them (ListParts) when Finalize completes the
	// upload and checks them against these two, so the job stays one small item
	// whatever the export's size, where a list of ETags would pass DynamoDB's 400 KB
	// item limit long before S3's 10,000 parts.
	PartCount   int              `json:"parts" dynamodbav:"part_count"`
	PartsDigest string           `json:"-" dynamodbav:"parts_digest,omitempty"`
	HashState   []byte           `json:"-" dynamodbav:"hash_state,omitempty"`
	Cursor      Cursor           `json:"-" dynamodbav:"cursor"`
	Counts      map[string]int64 `json:"counts" dynamodbav:"counts"`
	Items       int64            `json:"items" dynamodbav:"items"`
	Bytes       int64            `json:"bytes" dynamodbav:"bytes"`
	Estimated   int64            `json:"estimated_items" dynamodbav:"estimated_items"`
	// EstimateAfter and EstimateDone are where the budgeted count stands (see
	// EstimateBudget): until it is done, Estimated is a lower bound.
	EstimateAfter string `json:"-" dynamodbav:"estimate_after,omitempty"`
	EstimateDone  bool   `json:"estimate_complete" dynamodbav:"estimate_done"`

	SizeBytes int64     `json:"size_bytes,omitempty" dynamodbav:"size_bytes,omitempty"`
	SHA256    string    `json:"sha256,omitempty" dynamodbav:"sha256,omitempty"`
	Manifest  *Manifest `json:"manifest,omitempty" dynamodbav:"manifest,omitempty"`
	Error     string    `json:"error,omitempty" dynamodbav:"error,omitempty"`
	Cause     string    `json:"cause,omitempty" dynamodbav:"cause,omitempty"`

	// OpenKind and OpenAt are the keys of the tenants table's sparse Open index
	// (store.OpenExport, and CreatedAt): present exactly while the job is queued or
	// running. Jobs.Put sets or removes them from the status, so the write that ends
	// a job also takes it out of the index (EndDeadJobs reads it).
	OpenKind string `json:"-" dynamodbav:"open_kind,omitempty"`
	OpenAt   string `json:"-" dynamodbav:"open_at,omitempty"`
}

// Open reports whether the job is queued or running: its execution has work to do.
func (j *Job) Open() bool { return j.Status == Queued || j.Status == Running }

// recordPart records part number (the next one) as committed: the count, and the
// digest chained over every part's number, ETag (without its quotes) and size, which
// Finalize recomputes from S3's listing of the upload. A part overwritten after its
// commit (a zombie invocation writing other bytes) no longer matches.
func (j *Job) recordPart(number int32, etag string, size int64) {
	j.PartCount = int(number)
	j.PartsDigest = chainPart(j.PartsDigest, number, etag, size)
}

func chainPart(prev string, number int32, etag string, size int64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%d|%s|%d", prev, number, strings.Trim(etag, `"`), size))
	return hex.EncodeToString(h[:])
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

// PartsMismatchError is an upload whose parts, as S3 lists them, are not the ones the
// chunks committed (a part missing, or overwritten after its commit): the file would
// not match its checksum, so the export fails rather than complete. Final.
type PartsMismatchError struct {
	ExportID string
	Reason   string
}

func (e *PartsMismatchError) Error() string {
	return "export " + e.ExportID + ": the uploaded parts are not the committed ones: " + e.Reason
}

// RefusedError is an export the tenant can no longer have (tenant.ExportRefusedError:
// the lifecycle policy refuses what it can judge from the tenant alone, the service a
// purge holding it). The API answers 409 export-refused.
type RefusedError = tenant.ExportRefusedError

// TooLargeError is an export that needs more parts than S3 allows one upload
// (MaxParts of PartBytes each): it fails with this error rather than S3's. Final.
type TooLargeError struct {
	ExportID  string
	PartBytes int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("export %s: larger than %d parts of %d bytes, the most one S3 upload holds", e.ExportID, MaxParts, e.PartBytes)
}
