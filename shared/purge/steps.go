package purge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/metrics"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Store is the persistence the purge steps need (shared/store implements it).
type Store interface {
	flow.Store
	ScrubAudit(ctx context.Context, id string, role func(who string) string) (int, error)
}

var _ Store = (*store.Store)(nil)

// Publisher publishes lifecycle events (shared/events/bus implements it).
type Publisher interface {
	Publish(ctx context.Context, detailType string, detail any) error
}

// Sources reaches every source of a tenant's data (shared/purge/sources implements it
// on DynamoDB and S3): counts what each holds, deletes it in bounded chunks, verifies
// each is empty. currentOp is the purge operation calling, whose own record is not the
// tenant's data.
type Sources interface {
	Count(ctx context.Context, tenantID, currentOp string) (map[string]int64, error)
	DeleteChunk(ctx context.Context, tenantID, currentOp string, maxItems int64, deadline time.Time) (Progress, error)
	Verify(ctx context.Context, tenantID, currentOp string) (map[string]time.Time, error)
}

// ExportPrefix is where a tenant's exports live in the exports bucket.
func ExportPrefix(tenantID string) string { return "exports/" + tenantID + "/" }

// PurgedEvent is the detail of TenantPurged: the certificate, so every service of the
// platform can erase its own copy of the tenant's data and keep the proof. It is
// published at least once; consumers dedupe on operation_id.
type PurgedEvent struct {
	TenantID    string                      `json:"tenant_id"`
	OperationID string                      `json:"operation_id"`
	Certificate *tenant.DeletionCertificate `json:"certificate"`
}

// Steps are the Lambda handlers of statemachines/purge.asl.json.
type Steps struct {
	kit     *flow.Kit
	store   Store
	sources Sources
	events  Publisher
	def     *flow.Definition
	now     func() time.Time

	// ChunkItems and ChunkTime bound one delete invocation (the state machine loops
	// until nothing is left); ChunkTime is cut shorter when the Lambda deadline is
	// nearer.
	ChunkItems int64
	ChunkTime  time.Duration
}

// Default bounds of a delete chunk: well inside the 30 s function timeout even when
// DynamoDB throttles.
const (
	DefaultChunkItems = 5000
	DefaultChunkTime  = 15 * time.Second
	deadlineReserve   = 5 * time.Second
)

// NewSteps wires the purge steps. sources and pub may be nil in the functions that do
// not use them (see core.Wirings).
func NewSteps(kit *flow.Kit, st Store, sources Sources, pub Publisher) *Steps {
	return &Steps{kit: kit, store: st, sources: sources, events: pub, def: Definition(""), now: time.Now,
		ChunkItems: DefaultChunkItems, ChunkTime: DefaultChunkTime}
}

// actor is the audit identity of the purge's own writes.
func actor(ref flow.Ref) store.Actor {
	return store.Actor{Who: "system:" + tenant.KindPurge, OperationID: ref.OperationID}
}

// Start claims the DELETED tenant for this purge (it stays DELETED, now owned by the
// operation) and takes the inventory. The claim refuses a tenant whose retention has
// not ended by the wall clock, whoever started the execution. The inventory is taken
// only if the tenant has none: one taken by an earlier, failed attempt is kept, because
// it counted what existed before anything was deleted.
func (s *Steps) Start(ctx context.Context, in Input) (Input, error) {
	if err := checkKind(in.Ref); err != nil {
		return in, err
	}
	if _, err := s.kit.Ensure(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: tenant.KindPurge,
		Status: tenant.OpRunning, RequestedBy: "system:purge", PreviousState: tenant.Deleted}); err != nil {
		return in, err
	}
	now := s.now()
	if in.Now != nil {
		now = *in.Now
	}
	t, err := s.kit.Claim(ctx, in.Ref, flow.Claim{
		From: []tenant.State{tenant.Deleted}, Busy: Busy, Reason: "purge: retention ended",
		Check: func(t *tenant.Tenant) error {
			if t.PurgeAfter == nil {
				return &tenant.ValidationError{Field: "purge_after", Reason: "tenant " + t.ID + " has no retention end"}
			}
			if now.Before(*t.PurgeAfter) {
				return &RetentionNotOverError{TenantID: t.ID, PurgeAfter: t.PurgeAfter.UTC().Format(time.RFC3339)}
			}
			return nil
		},
	})
	if err != nil {
		return in, err
	}
	log := s.kit.Logger(in.Ref, "start")
	if inv := t.PurgeInventory; inv != nil {
		log.Info("inventory kept from an earlier attempt", "inventory_operation_id", inv.OperationID, "taken_at", inv.TakenAt, "counts", inv.Counts)
		return in, nil
	}
	counts, err := s.sources.Count(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return in, err
	}
	inv := &tenant.PurgeInventory{OperationID: in.OperationID, TakenAt: s.now().UTC(), Counts: counts}
	_, err = s.store.Change(ctx, in.TenantID, actor(in.Ref), func(cur *tenant.Tenant) (store.Write, error) {
		if err := owned(cur, in.Ref); err != nil {
			return store.Write{}, err
		}
		if cur.PurgeInventory != nil {
			return store.Write{}, store.ErrUnchanged
		}
		return store.Write{Mutate: func(x *tenant.Tenant) { x.PurgeInventory = inv }}, nil
	})
	if err != nil {
		return in, err
	}
	log.Info("inventory taken", "counts", counts)
	return in, nil
}

// owned is flow.Kit.Owned's rule for a Change decision: held by this purge's claim
// (which records the previous state), not merely reserved for it by the sweep.
func owned(t *tenant.Tenant, ref flow.Ref) error {
	if t.State != Busy || t.Operation != ref.OperationID || t.PreviousState == "" {
		return &tenant.ConflictError{TenantID: t.ID, Reason: fmt.Sprintf("tenant is %s for operation %q, not %s for %s", t.State, t.Operation, Busy, ref.OperationID)}
	}
	return nil
}

// Delete deletes one bounded chunk of the tenant's data and says whether more may
// remain; the state machine calls it again until it answers more=false. It never
// deletes for a tenant this operation does not own.
func (s *Steps) Delete(ctx context.Context, in Input) (Progress, error) {
	if err := checkKind(in.Ref); err != nil {
		return Progress{}, err
	}
	if _, err := s.kit.Owned(ctx, in.Ref, Busy); err != nil {
		return Progress{}, err
	}
	deadline := time.Now().Add(s.ChunkTime)
	if d, ok := ctx.Deadline(); ok && d.Add(-deadlineReserve).Before(deadline) {
		deadline = d.Add(-deadlineReserve)
	}
	p, err := s.sources.DeleteChunk(ctx, in.TenantID, in.OperationID, s.ChunkItems, deadline)
	if err != nil {
		return p, err
	}
	s.kit.Logger(in.Ref, "delete").Info("chunk deleted", "deleted", p.Deleted, "more", p.More)
	return p, nil
}

// Verify reads every source back and, when all are empty, writes the deletion
// certificate on the tenant (once per operation: a repeat keeps the first). A source
// that still holds items is a *NotEmptyError, which the state machine retries and then
// catches.
func (s *Steps) Verify(ctx context.Context, in Input) (Input, error) {
	if err := checkKind(in.Ref); err != nil {
		return in, err
	}
	t, err := s.kit.Owned(ctx, in.Ref, Busy)
	if err != nil {
		return in, err
	}
	if c := t.Certificate; c != nil && c.OperationID == in.OperationID && c.Verify() {
		return in, nil
	}
	if t.PurgeInventory == nil {
		return in, fmt.Errorf("verify purge of %s: the tenant has no inventory (Start did not run)", in.TenantID)
	}
	at, err := s.sources.Verify(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return in, err
	}
	cert, err := tenant.NewDeletionCertificate(in.TenantID, in.OperationID, t.PurgeInventory, at, s.now())
	if err != nil {
		return in, err
	}
	wrote := false
	_, err = s.store.Change(ctx, in.TenantID, actor(in.Ref), func(cur *tenant.Tenant) (store.Write, error) {
		if err := owned(cur, in.Ref); err != nil {
			return store.Write{}, err
		}
		if c := cur.Certificate; c != nil && c.OperationID == in.OperationID {
			wrote = false
			return store.Write{}, store.ErrUnchanged
		}
		wrote = true
		return store.Write{Mutate: func(x *tenant.Tenant) { x.Certificate = cert }}, nil
	})
	if err != nil {
		return in, err
	}
	s.kit.Logger(in.Ref, "verify").Info("every source verified empty", "sha256", cert.SHA256)
	if wrote {
		s.kit.Metric(in.Ref, metrics.Counted(metrics.DeletionVerificationsPassed, tenant.KindPurge, false))
	}
	return in, nil
}

// Finish publishes TenantPurged with the certificate, then writes the PURGED
// tombstone and marks the operation SUCCEEDED in one transaction (flow.Kit.Finish),
// and scrubs the audit trail. The event goes out before the commit so that it is
// published at least once: a Finish that dies after publishing publishes again on its
// retry (consumers dedupe on operation_id), and once committed nothing can fail the
// flow and lose it. A repeat after the commit only scrubs again.
func (s *Steps) Finish(ctx context.Context, in Input) (*tenant.DeletionCertificate, error) {
	if err := checkKind(in.Ref); err != nil {
		return nil, err
	}
	log := s.kit.Logger(in.Ref, "finish")
	op, err := s.store.GetOperation(ctx, in.OperationID)
	if err != nil {
		return nil, err
	}
	if op.Status == tenant.OpSucceeded {
		t, err := s.store.GetTenant(ctx, in.TenantID)
		if err != nil {
			return nil, err
		}
		return t.Certificate, s.scrub(ctx, in.Ref)
	}
	t, err := s.kit.Owned(ctx, in.Ref, Busy)
	if err != nil {
		return nil, err
	}
	cert := t.Certificate
	if cert == nil || cert.OperationID != in.OperationID || !cert.Verify() {
		return nil, fmt.Errorf("finish purge of %s: no valid certificate of operation %s (Verify did not run)", in.TenantID, in.OperationID)
	}
	if err := s.events.Publish(ctx, events.TenantPurged, PurgedEvent{TenantID: in.TenantID, OperationID: in.OperationID, Certificate: cert}); err != nil {
		return nil, err
	}
	if err := s.scrub(ctx, in.Ref); err != nil {
		return nil, err
	}
	if err := s.kit.Finish(ctx, in.Ref, Busy, tenant.Purged, tombstone, "purged"); err != nil {
		return nil, err
	}
	// The claim and commit lines were written after the first scrub.
	if err := s.scrub(ctx, in.Ref); err != nil {
		return nil, err
	}
	log.Info("tenant purged", "sha256", cert.SHA256, "backups_expire_at", cert.BackupsExpireAt)
	return cert, nil
}

// tombstone is what remains of a purged tenant: its id, plan, lifecycle dates and
// deletion certificate. Name, email, usage, billing references and anything else that
// could identify the customer are removed.
func tombstone(x *tenant.Tenant) {
	x.Name, x.Email = "", ""
	x.Usage = tenant.Usage{}
	x.Billing = tenant.BillingRef{}
	x.PendingChange, x.SuspendReason, x.Attention = nil, "", ""
	x.PurgeInventory = nil
}

func (s *Steps) scrub(ctx context.Context, ref flow.Ref) error {
	n, err := s.store.ScrubAudit(ctx, ref.TenantID, Role)
	if err != nil {
		return err
	}
	if n > 0 {
		s.kit.Logger(ref, "finish").Info("audit trail scrubbed", "records", n)
	}
	return nil
}

// Roles a scrubbed audit trail keeps in place of a subject.
const (
	RoleSystem   = "system"
	RoleOperator = "operator"
	RoleTenant   = "tenant"
	RoleUser     = "user"
)

// Role maps an audit record's `who` to the role a purged tenant's trail keeps:
// "system:<function>" (and the seed) is "system"; "operator:…"/"admin:…" is "operator";
// "tenant:…" is "tenant"; any other subject is a person whose role the record does not
// say, "user". A role maps to itself, so scrubbing twice changes nothing.
func Role(who string) string {
	switch {
	case who == RoleSystem || who == RoleOperator || who == RoleTenant || who == RoleUser:
		return who
	case strings.HasPrefix(who, "system:") || who == "seed":
		return RoleSystem
	case strings.HasPrefix(who, "operator:") || strings.HasPrefix(who, "admin:"):
		return RoleOperator
	case strings.HasPrefix(who, "tenant:"):
		return RoleTenant
	}
	return RoleUser
}

// Release ends a failed purge (flow.Kit.Release): the tenant stays DELETED, held by
// nobody and still due, the operation is FAILED with the caught error, and the next
// sweep starts a new purge. Its Outcome tells the state machine whether the purge had
// in fact committed. A purge that ended because a source was still not empty after
// the verify step's retries counts as a failed deletion verification.
func (s *Steps) Release(ctx context.Context, in Input) (flow.Outcome, error) {
	if err := checkKind(in.Ref); err != nil {
		return flow.Outcome{}, err
	}
	out, err := s.kit.Release(ctx, s.def, in.Ref, in.Error)
	if err == nil && out.Released && in.Error != nil && in.Error.Error == notEmptyName {
		s.kit.Metric(in.Ref, metrics.Counted(metrics.DeletionVerificationsFailed, tenant.KindPurge, false).With("cause", in.Error.Message()))
	}
	return out, err
}

// notEmptyName is the ASL error name of a *NotEmptyError (its type name).
const notEmptyName = "NotEmptyError"
