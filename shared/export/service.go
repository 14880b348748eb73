package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TenantReader reads the tenant an export is requested for, and the operation that
// holds it (a purge holding the tenant refuses exports).
type TenantReader interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
}

// Service is what the HTTP API does with exports: record a job and start its flow,
// report on jobs, and sign download URLs. It also ends jobs whose execution died
// (EndDeadJobs, for the reconciler; Request does it for the job it finds).
type Service struct {
	Jobs            *Jobs
	Tenants         TenantReader
	SFN             flow.Executions
	StateMachineARN string
	Presign         *s3.PresignClient
	// Uploads aborts the multipart upload of a job it ends because its execution
	// died (nil: such a job with an upload cannot be ended, and the error says so).
	Uploads Uploads
	Bucket  string
	// URLTTL is how long a signed download URL is valid (default 15 minutes).
	URLTTL time.Duration
	Now    func() time.Time
	// Log records each dead job it ends (nil: not logged).
	Log *slog.Logger
}

// markerGrace is how long a marker whose job is not found yet counts as an export
// being created (its request writes the job right after the marker) rather than one
// whose request died in between.
const markerGrace = 10 * time.Second

// StartGrace is how long a queued job without an execution counts as one whose
// request is still starting it (StartExecution follows the job's write at once; its
// SDK retries and the API's own timeout end well within this) rather than one whose
// request died in between. Past it, the job is ended ExecutionNeverStarted.
const StartGrace = 2 * time.Minute

// DefaultURLTTL is the validity of a download URL.
const DefaultURLTTL = 15 * time.Minute

// Progress of a job as the API shows it.
type ProgressView struct {
	Items          int64 `json:"items"`
	Bytes          int64 `json:"bytes"`
	EstimatedItems int64 `json:"estimated_items"`
	// EstimateComplete is false while the count behind EstimatedItems is still going
	// on (big tenants are counted a few seconds per chunk); it is a lower bound then.
	EstimateComplete bool    `json:"estimate_complete"`
	Percent          float64 `json:"percent"`
	Parts            int     `json:"parts"`
}

// View is a job as GET /tenants/{id}/exports/{export_id} returns it.
type View struct {
	ExportID     string       `json:"export_id"`
	TenantID     string       `json:"tenant_id"`
	Status       Status       `json:"status"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
	CompletedAt  *time.Time   `json:"completed_at,omitempty"`
	Progress     ProgressView `json:"progress"`
	SizeBytes    int64        `json:"size_bytes,omitempty"`
	SHA256       string       `json:"sha256,omitempty"`
	Manifest     *Manifest    `json:"manifest,omitempty"`
	URL          string       `json:"download_url,omitempty"`
	URLExpiresAt *time.Time   `json:"url_expires_at,omitempty"`
	Error        string       `json:"error,omitempty"`
	Cause        string       `json:"cause,omitempty"`
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// NewExportID returns a time-ordered export id that is also a valid execution name.
func NewExportID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("exp_%x_%s", time.Now().UTC().UnixMilli(), hex.EncodeToString(b[:]))
}

// Request records an export of the tenant and starts its flow, or returns the export
// of the tenant that is already queued or running (created false). An export whose
// execution has ended without ending it, or never started, is not one: Request ends
// it failed (abortDead) and creates a new one, so a dead job never blocks the
// tenant's right of access. A tenant whose data is gone or about to be erased gets a
// *RefusedError (refusal).
func (s *Service) Request(ctx context.Context, tenantID, by string) (*View, bool, error) {
	t, err := s.Tenants.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	if err := s.refusal(ctx, t); err != nil {
		return nil, false, err
	}
	// The marker names the tenant's latest export: while that one is queued or
	// running it is the answer; otherwise this request moves the marker to a new id,
	// conditioned on what it saw, so of concurrent requests exactly one creates.
	var id string
	for try := 0; ; try++ {
		seen, at, err := s.Jobs.Active(ctx, tenantID)
		if err != nil {
			return nil, false, err
		}
		if seen != "" {
			j, err := s.Jobs.Get(ctx, tenantID, seen)
			var nf *tenant.NotFoundError
			switch {
			case err == nil && j.Open():
				ended, err := s.endIfDead(ctx, j, s.now())
				if errors.Is(err, errLost) {
					if try < 8 {
						continue // the job moved on meanwhile: decide again
					}
					err = fmt.Errorf("export %s of %s kept changing: %w", j.ID, tenantID, store.ErrContended)
				}
				if err != nil {
					return nil, false, err
				}
				if !ended {
					v, err := s.view(ctx, j)
					return v, false, err
				}
			case err != nil && !errors.As(err, &nf):
				return nil, false, err
			case err != nil && s.now().Sub(at) < markerGrace:
				// The marker was just moved and its job is not written yet: the
				// request that moved it is creating that export.
				if try >= 8 {
					return nil, false, fmt.Errorf("export of %s being created by another request: %w", tenantID, store.ErrContended)
				}
				time.Sleep(time.Duration(try+1) * 25 * time.Millisecond)
				continue
			}
		}
		id = NewExportID()
		err = s.Jobs.MoveActive(ctx, tenantID, seen, id, s.now())
		if err == nil {
			break
		}
		if !errors.Is(err, errLost) || try >= 8 {
			return nil, false, err
		}
	}
	now := s.now().UTC()
	job := &Job{ID: id, TenantID: tenantID, Status: Queued, RequestedBy: by, CreatedAt: now, UpdatedAt: now,
		Key: ObjectKey(tenantID, id), Counts: map[string]int64{}, Cursor: Cursor{Phase: PhaseControl}}
	if err := s.Jobs.Put(ctx, job, -1, ""); err != nil {
		return nil, false, err
	}
	in := Input{Ref: flow.Ref{OperationID: id, TenantID: tenantID, Kind: Kind}}
	if err := flow.StartExecution(ctx, s.SFN, s.StateMachineARN, id, in); err != nil {
		// A job left queued here (this write failing too) is ended by the next
		// request or the reconciler once StartGrace has passed.
		job.Status, job.Error, job.Cause = Failed, "StartExecutionFailed", err.Error()
		if perr := s.Jobs.Put(ctx, job, 0, Queued); perr != nil {
			return nil, false, errors.Join(err, fmt.Errorf("record the failed start: %w", perr))
		}
		return nil, false, err
	}
	v, err := s.view(ctx, job)
	return v, true, err
}

// refusal says why t can have no new export, or nil. Its data is gone (PURGED) or may
// be erased at any moment: past purge_after the purge sweep may start (the export
// would race the purge's deletes and leave an upload behind its certificate), and a
// purge holding the tenant is erasing it now. A DELETED tenant inside its retention
// still exports, also while another flow (a win-back) holds it.
func (s *Service) refusal(ctx context.Context, t *tenant.Tenant) error {
	if err := tenant.DataHeld(t, s.now()); err != nil || t.Operation == "" {
		return err
	}
	op, err := s.Tenants.GetOperation(ctx, t.Operation)
	var nf *tenant.NotFoundError
	switch {
	case errors.As(err, &nf):
		return nil // a reservation whose operation is not written yet, or already gone
	case err != nil:
		return err
	case op.Kind == tenant.KindPurge:
		return &RefusedError{TenantID: t.ID, Reason: "a purge is erasing the tenant's data"}
	}
	return nil
}

// EndDeadJobs ends every export job that is open (queued or running, found through
// the sparse Open index, never a Scan), was opened at least StartGrace before now,
// and has no live execution: its execution ended without ending the job (its steps
// and its release step failed, or it was stopped or timed out), or none was ever
// started (the API died between recording the job and StartExecution). Each such job
// ends failed with error ExecutionEnded or ExecutionNeverStarted and a cause naming
// the execution, its multipart upload aborted; the write that ends it is conditioned
// on the job as read, so a job that moves on meanwhile is left to its execution.
// Jobs with a running execution are left alone.
//
// It is meant for a scheduled reconciler: it returns how many jobs it checked and how
// many it ended. A job that cannot be checked or ended does not stop the others; the
// errors of all such jobs are returned joined by errors.Join (one per job, listed by
// the error's Unwrap() []error), with the counts of the rest. Any other error means
// the index could not be read and no job was checked.
func (s *Service) EndDeadJobs(ctx context.Context, now time.Time) (checked, ended int, err error) {
	open, err := s.Jobs.OpenBefore(ctx, now.Add(-StartGrace))
	if err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, seen := range open {
		// The index is eventually consistent: decide by the job itself.
		j, err := s.Jobs.Get(ctx, seen.TenantID, seen.ID)
		var nf *tenant.NotFoundError
		switch {
		case errors.As(err, &nf):
			continue // deleted meanwhile (a purge)
		case err != nil:
			errs = append(errs, err)
			continue
		case !j.Open():
			continue
		}
		checked++
		done, err := s.endIfDead(ctx, j, now)
		switch {
		case errors.Is(err, errLost):
			// The job changed since it was read: its execution is acting on it.
		case err != nil:
			errs = append(errs, fmt.Errorf("export %s of %s: %w", j.ID, j.TenantID, err))
		case done:
			ended++
		}
	}
	return checked, ended, errors.Join(errs...)
}

// endIfDead ends the open job j failed when its execution is dead (deadness), after
// aborting its multipart upload, and reports whether it did. The write is conditioned
// on the job as read: errLost means it changed meanwhile and the caller decides again.
func (s *Service) endIfDead(ctx context.Context, j *Job, now time.Time) (bool, error) {
	errName, cause, err := s.deadness(ctx, j, now)
	if err != nil || errName == "" {
		return false, err
	}
	if j.UploadID != "" {
		if s.Uploads == nil {
			return false, fmt.Errorf("export %s: its execution is dead but its upload cannot be aborted here (no S3 client)", j.ID)
		}
		_, err := s.Uploads.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(s.Bucket), Key: aws.String(j.Key), UploadId: aws.String(j.UploadID)})
		var nsu *s3types.NoSuchUpload
		if err != nil && !errors.As(err, &nsu) {
			return false, fmt.Errorf("abort the upload of dead export %s: %w", j.ID, err)
		}
	}
	prev := j.Status
	j.Status, j.Error, j.Cause, j.UpdatedAt = Failed, errName, cause, now.UTC()
	if err := s.Jobs.Put(ctx, j, j.PartCount, prev); err != nil {
		return false, err
	}
	if s.Log != nil {
		s.Log.Warn("ended an export job whose execution is dead", "tenant_id", j.TenantID, "operation_id", j.ID, "export_id", j.ID,
			"was", string(prev), "error", errName, "cause", cause, "upload_aborted", j.UploadID != "")
	}
	return true, nil
}

// deadness names why the open job j has no live execution ("" while it has one, or
// may still get one): Step Functions says the execution (named after the export) has
// ended, or there is none StartGrace after the job was recorded.
func (s *Service) deadness(ctx context.Context, j *Job, now time.Time) (errName, cause string, err error) {
	out, err := s.SFN.Describe(ctx, flow.ExecutionARN(s.StateMachineARN, j.ID))
	switch {
	case errors.Is(err, flow.ErrNoExecution):
		if now.Sub(j.CreatedAt) < StartGrace {
			return "", "", nil
		}
		return "ExecutionNeverStarted", "no execution " + j.ID + " was started for the export: its request ended between recording it and starting it", nil
	case err != nil:
		return "", "", fmt.Errorf("describe the execution of export %s: %w", j.ID, err)
	case out.Status == flow.ExecutionRunning:
		return "", "", nil
	}
	cause = fmt.Sprintf("execution %s ended %s without ending the export", j.ID, out.Status)
	if out.Error != "" {
		cause += " (" + out.Error + ")"
	}
	return "ExecutionEnded", cause, nil
}

// Get returns one export of the tenant; a completed one with a freshly signed URL.
func (s *Service) Get(ctx context.Context, tenantID, exportID string) (*View, error) {
	job, err := s.Jobs.Get(ctx, tenantID, exportID)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, job)
}

// List returns the tenant's exports, newest first (without URLs: GET one to sign).
func (s *Service) List(ctx context.Context, tenantID string) ([]*View, error) {
	jobs, err := s.Jobs.List(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]*View, 0, len(jobs))
	for _, j := range jobs {
		v := viewOf(j)
		out = append(out, &v)
	}
	return out, nil
}

func viewOf(j *Job) View {
	return View{ExportID: j.ID, TenantID: j.TenantID, Status: j.Status, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, CompletedAt: j.CompletedAt,
		Progress:  ProgressView{Items: j.Items, Bytes: j.Bytes, EstimatedItems: j.Estimated, EstimateComplete: j.EstimateDone || j.Status == Completed, Percent: j.Percent(), Parts: j.PartCount},
		SizeBytes: j.SizeBytes, SHA256: j.SHA256, Manifest: j.Manifest, Error: j.Error, Cause: j.Cause}
}

func (s *Service) view(ctx context.Context, j *Job) (*View, error) {
	v := viewOf(j)
	if j.Status != Completed || s.Presign == nil {
		return &v, nil
	}
	ttl := s.URLTTL
	if ttl <= 0 {
		ttl = DefaultURLTTL
	}
	signedAt := s.now().UTC()
	req, err := s.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(j.Key)}, s3.WithPresignExpires(ttl))
	if err != nil {
		return nil, fmt.Errorf("sign download of export %s: %w", j.ID, err)
	}
	exp := signedAt.Add(ttl)
	v.URL, v.URLExpiresAt = req.URL, &exp
	return &v, nil
}
