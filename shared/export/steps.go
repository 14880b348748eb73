package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/metrics"
)

// MinPartBytes is S3's smallest allowed part (every part but the last).
const MinPartBytes = 5 << 20

// DefaultPartBytes is the compressed size one chunk invocation writes: one part.
const DefaultPartBytes = 8 << 20

// Steps are the Lambda handlers of statemachines/export.asl.json.
type Steps struct {
	Jobs   *Jobs
	Reader *Reader
	Log    *slog.Logger
	Now    func() time.Time
	// PartBytes is the compressed size of one part (≥ MinPartBytes).
	PartBytes int
	// Metrics receives ExportsCompleted and ExportsFailed (nil: none).
	Metrics flow.Metrics
}

func (s *Steps) logger(ref flow.Ref, step string) *slog.Logger {
	return s.Log.With("tenant_id", ref.TenantID, "operation_id", ref.OperationID, "export_id", ref.OperationID, "step", step)
}

// Start moves a queued job to running: it counts the items for the progress estimate
// and opens the multipart upload. A repeat finds the job running and answers the same.
func (s *Steps) Start(ctx context.Context, in Input) (Progress, error) {
	if err := checkRef(in.Ref); err != nil {
		return Progress{}, err
	}
	job, err := s.Jobs.Get(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return Progress{}, err
	}
	switch job.Status {
	case Running, Completed:
		return Progress{Parts: job.PartCount, More: job.Status == Running && job.Cursor.Phase != PhaseDone, Items: job.Items, Bytes: job.Bytes}, nil
	case Failed:
		return Progress{}, &JobStateError{ExportID: job.ID, Reason: "it has failed"}
	}
	est, err := s.Reader.StartEstimate(ctx, in.TenantID, EstimateBudget)
	if err != nil {
		return Progress{}, err
	}
	up, err := s.Reader.Objects.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.Reader.Bucket, Key: aws.String(job.Key), ContentType: aws.String("application/gzip"),
		// No Content-Encoding: clients would then decompress on download and the file
		// would not match its SHA-256.
		ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return Progress{}, err
	}
	now := s.Now().UTC()
	job.Status, job.UploadID, job.GeneratedAt, job.UpdatedAt = Running, aws.ToString(up.UploadId), &now, now
	job.Estimated, job.EstimateAfter, job.EstimateDone = est.Items, est.After, est.Done
	job.Cursor = Cursor{Phase: PhaseControl}
	if err := s.Jobs.Put(ctx, job, 0, Queued); err != nil {
		// A concurrent start won; its upload is the one; this one is aborted.
		_, _ = s.Reader.Objects.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key), UploadId: up.UploadId})
		return Progress{}, transient("start", err)
	}
	s.logger(in.Ref, "start").Info("export started", "estimated_items", est.Items, "estimate_complete", est.Done, "key", job.Key)
	return Progress{More: true}, nil
}

// Chunk writes the next part from the cursor and hash state recorded before it, then
// commits cursor, hash state and the part's ETag in one conditional write. A chunk
// whose part is already recorded (a re-run after a lost answer) does nothing.
func (s *Steps) Chunk(ctx context.Context, in Input) (Progress, error) {
	if err := checkRef(in.Ref); err != nil {
		return Progress{}, err
	}
	seen := 0
	if in.Chunk != nil {
		seen = in.Chunk.Parts
	}
	job, err := s.Jobs.Get(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return Progress{}, err
	}
	log := s.logger(in.Ref, "chunk")
	if job.Status != Running {
		return Progress{}, &JobStateError{ExportID: job.ID, Reason: "a chunk ran on a job that is " + string(job.Status)}
	}
	if job.PartCount > seen || job.Cursor.Phase == PhaseDone {
		log.Info("chunk already recorded; nothing to do", "parts", job.PartCount, "expected", seen)
		return Progress{Parts: job.PartCount, More: job.Cursor.Phase != PhaseDone, Items: job.Items, Bytes: job.Bytes}, nil
	}
	if !job.EstimateDone {
		est, err := s.Reader.ContinueEstimate(ctx, in.TenantID, Estimate{Items: job.Estimated, After: job.EstimateAfter}, EstimateBudget)
		if err != nil {
			return Progress{}, err
		}
		job.Estimated, job.EstimateAfter, job.EstimateDone = est.Items, est.After, est.Done
	}
	size := max(s.PartBytes, MinPartBytes)
	p := newPart(size)
	cur, err := s.Reader.fill(ctx, in.TenantID, job.Cursor, p, size)
	if err != nil {
		return Progress{}, err
	}
	counts := map[string]int64{}
	for k, v := range job.Counts {
		counts[k] = v
	}
	for k, v := range p.counts {
		counts[k] += v
	}
	var manifest *Manifest
	if cur.Phase == PhaseDone {
		// The last part ends with the manifest line, so the file's last part may be
		// small without any earlier part being so.
		manifest = &Manifest{FormatVersion: FormatVersion, TenantID: job.TenantID, ExportID: job.ID, GeneratedAt: *job.GeneratedAt,
			Sources: Sources, Counts: map[string]int64{}, Items: job.Items + p.items}
		for _, src := range Sources {
			manifest.Counts[src] = counts[src]
		}
		if err := p.write("manifest", "manifest", manifest); err != nil {
			return Progress{}, err
		}
	}
	if err := p.gz.Close(); err != nil {
		return Progress{}, err
	}
	h, err := hashing(job.HashState)
	if err != nil {
		return Progress{}, err
	}
	body := p.buf.Bytes()
	_, _ = h.Write(body)
	state, err := h.MarshalBinary()
	if err != nil {
		return Progress{}, err
	}
	number := int32(job.PartCount + 1)
	out, err := s.Reader.Objects.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key), UploadId: aws.String(job.UploadID),
		PartNumber: aws.Int32(number), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	if err != nil {
		return Progress{}, err
	}
	prev := job.PartCount
	job.Parts = append(job.Parts, Part{Number: number, ETag: aws.ToString(out.ETag), Size: int64(len(body))})
	job.PartCount, job.HashState, job.Cursor, job.Counts = len(job.Parts), state, cur, counts
	job.Items += p.items
	job.Bytes += int64(len(body))
	job.Manifest = manifest
	job.UpdatedAt = s.Now().UTC()
	if err := s.Jobs.Put(ctx, job, prev, Running); err != nil {
		return Progress{}, transient("chunk", err)
	}
	log.Info("part written", "part", number, "part_bytes", len(body), "items", job.Items, "bytes", job.Bytes, "phase", cur.Phase)
	return Progress{Parts: job.PartCount, More: cur.Phase != PhaseDone, Items: job.Items, Bytes: job.Bytes}, nil
}

// Finalize completes the upload and records size and whole-file SHA-256. A repeat
// after the upload was completed (its answer lost) finds the object and records it.
func (s *Steps) Finalize(ctx context.Context, in Input) (Progress, error) {
	if err := checkRef(in.Ref); err != nil {
		return Progress{}, err
	}
	job, err := s.Jobs.Get(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return Progress{}, err
	}
	done := Progress{Parts: job.PartCount, Items: job.Items, Bytes: job.Bytes}
	if job.Status == Completed {
		return done, nil
	}
	if job.Status != Running || job.Cursor.Phase != PhaseDone {
		return Progress{}, &JobStateError{ExportID: job.ID, Reason: "finalize before the last chunk (status " + string(job.Status) + ", phase " + job.Cursor.Phase + ")"}
	}
	parts := make([]s3types.CompletedPart, len(job.Parts))
	for i, p := range job.Parts {
		parts[i] = s3types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	_, err = s.Reader.Objects.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key),
		UploadId: aws.String(job.UploadID), MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	var nsu *s3types.NoSuchUpload
	if errors.As(err, &nsu) {
		head, herr := s.Reader.Objects.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key)})
		if herr != nil || aws.ToInt64(head.ContentLength) != job.Bytes {
			return Progress{}, err
		}
	} else if err != nil {
		return Progress{}, err
	}
	h, err := hashing(job.HashState)
	if err != nil {
		return Progress{}, err
	}
	now := s.Now().UTC()
	job.Status, job.SizeBytes, job.SHA256, job.CompletedAt, job.UpdatedAt = Completed, job.Bytes, hex.EncodeToString(h.Sum(nil)), &now, now
	if err := s.Jobs.Put(ctx, job, job.PartCount, Running); err != nil {
		return Progress{}, transient("finalize", err)
	}
	s.logger(in.Ref, "finalize").Info("export completed", "size_bytes", job.SizeBytes, "sha256", job.SHA256, "parts", job.PartCount, "items", job.Items)
	flow.Emit(s.Metrics, s.Log, in.Ref, metrics.Counted(metrics.ExportsCompleted, Kind, false))
	return done, nil
}

// Release ends a failed export: the job becomes failed with the caught error and the
// multipart upload is aborted (the bucket's lifecycle rule aborts it too). A completed
// job is left alone and reported SUCCEEDED.
func (s *Steps) Release(ctx context.Context, in Input) (flow.Outcome, error) {
	if err := checkRef(in.Ref); err != nil {
		return flow.Outcome{}, err
	}
	for try := 0; ; try++ {
		job, err := s.Jobs.Get(ctx, in.TenantID, in.OperationID)
		if err != nil {
			return flow.Outcome{}, err
		}
		switch job.Status {
		case Completed:
			return flow.Outcome{Status: "SUCCEEDED"}, nil
		case Failed:
			return flow.Outcome{Status: "FAILED"}, nil
		}
		if job.UploadID != "" {
			_, err := s.Reader.Objects.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key), UploadId: aws.String(job.UploadID)})
			var nsu *s3types.NoSuchUpload
			if err != nil && !errors.As(err, &nsu) {
				return flow.Outcome{}, err
			}
		}
		prev := job.Status
		job.Status, job.UpdatedAt = Failed, s.Now().UTC()
		job.Error, job.Cause = "ExportFailed", "the export did not complete"
		if in.Error != nil {
			job.Error, job.Cause = in.Error.Error, in.Error.Message()
		}
		err = s.Jobs.Put(ctx, job, job.PartCount, prev)
		if errors.Is(err, errLost) && try < 3 {
			continue
		}
		if err != nil {
			return flow.Outcome{}, transient("release", err)
		}
		s.logger(in.Ref, "release").Warn("export failed", "error", job.Error, "cause", job.Cause)
		flow.Emit(s.Metrics, s.Log, in.Ref, metrics.Counted(metrics.ExportsFailed, Kind, false).With("error", job.Error))
		return flow.Outcome{Status: "FAILED"}, nil
	}
}
