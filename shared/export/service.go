package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TenantReader reads the tenant an export is requested for.
type TenantReader interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
}

// Service is what the HTTP API does with exports: record a job and start its flow,
// report on jobs, and sign download URLs.
type Service struct {
	Jobs            *Jobs
	Tenants         TenantReader
	SFN             flow.Executions
	StateMachineARN string
	Presign         *s3.PresignClient
	Bucket          string
	// URLTTL is how long a signed download URL is valid (default 15 minutes).
	URLTTL time.Duration
	Now    func() time.Time
}

// markerGrace is how long a marker whose job is not found yet counts as an export
// being created (its request writes the job right after the marker) rather than one
// whose request died in between.
const markerGrace = 10 * time.Second

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
// of the tenant that is already queued or running (created false). A purged tenant has
// nothing left to export.
func (s *Service) Request(ctx context.Context, tenantID, by string) (*View, bool, error) {
	t, err := s.Tenants.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, false, err
	}
	if t.State == tenant.Purged {
		return nil, false, &tenant.ConflictError{TenantID: tenantID, Reason: "the tenant is purged; it has no data left to export"}
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
			case err == nil && (j.Status == Queued || j.Status == Running):
				v, err := s.view(ctx, j)
				return v, false, err
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
		Key: ObjectKey(tenantID, id), Parts: []Part{}, Counts: map[string]int64{}, Cursor: Cursor{Phase: PhaseControl}}
	if err := s.Jobs.Put(ctx, job, -1, ""); err != nil {
		return nil, false, err
	}
	in := Input{Ref: flow.Ref{OperationID: id, TenantID: tenantID, Kind: Kind}}
	if err := flow.StartExecution(ctx, s.SFN, s.StateMachineARN, id, in); err != nil {
		job.Status, job.Error, job.Cause = Failed, "StartExecutionFailed", err.Error()
		_ = s.Jobs.Put(ctx, job, 0, Queued)
		return nil, false, err
	}
	v, err := s.view(ctx, job)
	return v, true, err
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
