package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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
	log := s.logger(in.Ref, "start")
	if err := s.Jobs.Put(ctx, job, 0, Queued); err != nil {
		if s.uploadRecorded(ctx, in, aws.ToString(up.UploadId), err, log) {
			return Progress{More: true}, nil
		}
		return Progress{}, transient("start", err)
	}
	log.Info("export started", "estimated_items", est.Items, "estimate_complete", est.Done, "key", job.Key)
	return Progress{More: true}, nil
}

// uploadRecorded decides, after Start's write failed, whether the job records the
// upload Start opened: the write may have been done with only its answer lost, and
// then Start has done its work (answering an error would send the export to its
// release, which aborts the upload, over a lost answer). The upload is aborted only
// when the job, read again, names another one or none: a concurrent start won, or the
// write was refused. When the job cannot be read either, the upload is left: aborting
// one the job may name would break the export, while a stray upload is aborted by the
// bucket's lifecycle rule.
func (s *Steps) uploadRecorded(ctx context.Context, in Input, uploadID string, err error, log *slog.Logger) bool {
	cur, gerr := s.Jobs.Get(ctx, in.TenantID, in.OperationID)
	switch {
	case gerr != nil:
		log.Warn("start's write failed and the job cannot be read; its upload is left open", "upload_id", uploadID, "error", err.Error(), "read_error", gerr.Error())
		return false
	case cur.Status == Running && cur.UploadID == uploadID:
		log.Warn("start's write was done but its answer was lost; the job records this upload", "upload_id", uploadID, "error", err.Error())
		return true
	}
	_, _ = s.Reader.Objects.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.Reader.Bucket, Key: aws.String(cur.Key), UploadId: aws.String(uploadID)})
	return false
}

// Chunk writes the next part from the cursor and hash state recorded before it, then
// commits cursor, hash state and the part (count and digest) in one conditional write. A chunk
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
	if number > MaxParts {
		return Progress{}, &TooLargeError{ExportID: job.ID, PartBytes: size}
	}
	out, err := s.Reader.Objects.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key), UploadId: aws.String(job.UploadID),
		PartNumber: aws.Int32(number), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
	if err != nil {
		return Progress{}, err
	}
	prev := job.PartCount
	job.recordPart(number, aws.ToString(out.ETag), int64(len(body)))
	job.HashState, job.Cursor, job.Counts = state, cur, counts
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

// Finalize completes the upload and records size and whole-file SHA-256. The parts are
// listed from S3 (the job keeps only their count and digest) and must be exactly the
// ones the chunks committed, else *PartsMismatchError. A repeat after the upload was
// completed (its answer lost) finds the object and records it.
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
	parts, err := s.Reader.committedParts(ctx, job)
	if err == nil {
		_, err = s.Reader.Objects.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.Reader.Bucket, Key: aws.String(job.Key),
			UploadId: aws.String(job.UploadID), MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	}
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

// MaxParts is S3's most parts of one multipart upload, so the largest export is
// MaxParts parts of the deployment's part size (ExportPartBytes; docs/export-format.md).
const MaxParts = 10_000

// committedParts lists the parts of the job's upload from S3, page by page, and checks
// they are exactly the ones the chunks committed: numbers 1 to PartCount, sizes adding
// up to the bytes written, and the same digest chained over number, ETag and size.
// What it returns is the part list CompleteMultipartUpload takes.
func (r *Reader) committedParts(ctx context.Context, job *Job) ([]s3types.CompletedPart, error) {
	parts := make([]s3types.CompletedPart, 0, job.PartCount)
	digest, size := "", int64(0)
	var marker *string
	for {
		out, err := r.Objects.ListParts(ctx, &s3.ListPartsInput{Bucket: &r.Bucket, Key: aws.String(job.Key),
			UploadId: aws.String(job.UploadID), PartNumberMarker: marker})
		if err != nil {
			return nil, err
		}
		for _, p := range out.Parts {
			n := aws.ToInt32(p.PartNumber)
			if int(n) != len(parts)+1 {
				return nil, &PartsMismatchError{ExportID: job.ID, Reason: fmt.Sprintf("S3 lists part %d where part %d was expected", n, len(parts)+1)}
			}
			digest = chainPart(digest, n, aws.ToString(p.ETag), aws.ToInt64(p.Size))
			size += aws.ToInt64(p.Size)
			parts = append(parts, s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: p.ETag})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = out.NextPartNumberMarker
	}
	switch {
	case len(parts) != job.PartCount:
		return nil, &PartsMismatchError{ExportID: job.ID, Reason: fmt.Sprintf("S3 lists %d parts, the chunks committed %d", len(parts), job.PartCount)}
	case size != job.Bytes:
		return nil, &PartsMismatchError{ExportID: job.ID, Reason: fmt.Sprintf("the parts hold %d bytes, the chunks wrote %d", size, job.Bytes)}
	case digest != job.PartsDigest:
		return nil, &PartsMismatchError{ExportID: job.ID, Reason: "a part's ETag or size differs from the one committed (overwritten after its commit)"}
	}
	return parts, nil
}
