package purge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/shared/billing"
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

// Sources reaches every AWS source of a tenant's data (shared/purge/sources implements
// it on DynamoDB and S3): counts what each holds, deletes it in bounded chunks,
// verifies each is empty, and names the exports still running. currentOp is the purge
// operation calling, whose own record is not the tenant's data.
type Sources interface {
	Count(ctx context.Context, tenantID, currentOp string) (map[string]int64, error)
	DeleteChunk(ctx context.Context, tenantID, currentOp string, maxItems int64, deadline time.Time) (Progress, error)
	Verify(ctx context.Context, tenantID, currentOp string) (map[string]time.Time, error)
	RunningExports(ctx context.Context, tenantID string) ([]string, error)
}

// Executions stops executions (shared/flow/sfnexec implements it): the purge stops
// the tenant's running exports before it deletes anything.
type Executions interface {
	Stop(ctx context.Context, executionARN, cause string) error
}

// Customers deletes the tenant's Stripe customer and reads back that it is gone
// (shared/billing: the Stripe adapter, and Disabled, which holds nothing).
type Customers interface {
	DeleteCustomer(ctx context.Context, customerID, idempotencyKey string) (billing.CustomerErasure, error)
	CustomerDeleted(ctx context.Context, customerID string) (billing.CustomerErasure, error)
}

// ExportPrefix is where a tenant's exports live in the exports bucket.
func ExportPrefix(tenantID string) string { return "exports/" + tenantID + "/" }

// PurgedEvent is the detail of TenantPurged: the certificate, so every service of the
// platform can erase its own copy of the tenant's data and keep the proof. It is
// published only after the purge committed, carrying the committed certificate, at
// least once (EventBridge has no idempotency key): consumers dedupe on operation_id
// (or the certificate's sha256). There is at most one per tenant and one certificate.
type PurgedEvent struct {
	TenantID    string                      `json:"tenant_id"`
	OperationID string                      `json:"operation_id"`
	Certificate *tenant.DeletionCertificate `json:"certificate"`
}

// Steps are the Lambda handlers of statemachines/purge.asl.json.
type Steps struct {
	kit       *flow.Kit
	store     Store
	sources   Sources
	events    Publisher
	def       *flow.Definition
	now       func() time.Time
	exports   Executions
	exportARN string
	customers Customers

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

// WithExports lets Start stop the tenant's running executions of the export state
// machine exportARN.
func (s *Steps) WithExports(x Executions, exportARN string) *Steps {
	s.exports, s.exportARN = x, exportARN
	return s
}

// WithCustomers lets Delete delete, and Verify read back, the tenant's Stripe customer.
func (s *Steps) WithCustomers(c Customers) *Steps {
	s.customers = c
	return s
}

// actor is the audit identity of the purge's own writes.
func actor(ref flow.Ref) store.Actor {
	return store.Actor{Who: "system:" + tenant.KindPurge, OperationID: ref.OperationID}
}

// Start claims the DELETED tenant for this purge (it stays DELETED, now owned by the
// operation), stops the tenant's running exports and takes the inventory.
//
// "Retention over" is decided by the scheduled event's time the sweep passes (in.Now),
// so a delayed or replayed schedule decides as the sweep did, but never by a time later
// than the wall clock: an execution started by hand with a future now cannot purge
// early. The inventory is taken only if the tenant has none: one taken by an earlier,
// failed attempt is kept, because it counted what existed before anything was deleted.
func (s *Steps) Start(ctx context.Context, in Input) (Input, error) {
	if err := checkKind(in.Ref); err != nil {
		return in, err
	}
	if _, err := s.kit.Ensure(ctx, &tenant.Operation{ID: in.OperationID, TenantID: in.TenantID, Kind: tenant.KindPurge,
		Status: tenant.OpRunning, RequestedBy: "system:purge", PreviousState: tenant.Deleted}); err != nil {
		return in, err
	}
	now := s.now()
	if in.Now != nil && in.Now.Before(now) {
		now = *in.Now
	}
	t, err := s.kit.Claim(ctx, in.Ref, flow.Claim{
		From: []tenant.State{tenant.Deleted}, Busy: Busy, Reason: "purge: retention ended",
		Check: func(t *tenant.Tenant) error {
			// The lifecycle policy's purge rule (retention over): the sweep's time, or
			// for an execution started by hand, an operator's and the wall clock.
			actor := tenant.ActorOperator
			if in.Now != nil {
				actor = tenant.ActorSchedule
			}
			_, err := tenant.Decide(tenant.Query{Action: tenant.ActPurge, Actor: actor, Tenant: t, Now: now, OperationID: in.OperationID})
			return err
		},
	})
	if err != nil {
		return in, err
	}
	log := s.kit.Logger(in.Ref, "start")
	if err := s.stopExports(ctx, in.Ref); err != nil {
		return in, err
	}
	if inv := t.PurgeInventory; inv != nil {
		log.Info("inventory kept from an earlier attempt", "inventory_operation_id", inv.OperationID, "taken_at", inv.TakenAt, "counts", inv.Counts)
		return in, nil
	}
	counts, err := s.sources.Count(ctx, in.TenantID, in.OperationID)
	if err != nil {
		return in, err
	}
	if t.Billing.CustomerID != "" {
		counts[tenant.SourceStripeCustomer] = 1
	} else {
		counts[tenant.SourceStripeCustomer] = 0
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

// stopExports stops the executions of the tenant's queued or running exports, so no
// export writes a part while, or after, the purge deletes; the uploads they opened are
// aborted by the first delete chunk. An execution that never started or has ended is
// left as it is. The purge holds the tenant from its claim on, so the API starts no
// new export meanwhile.
func (s *Steps) stopExports(ctx context.Context, ref flow.Ref) error {
	ids, err := s.sources.RunningExports(ctx, ref.TenantID)
	if err != nil || len(ids) == 0 {
		return err
	}
	if s.exports == nil || s.exportARN == "" {
		return fmt.Errorf("purge of %s: %d export(s) running and no way to stop them (wiring)", ref.TenantID, len(ids))
	}
	for _, id := range ids {
		if err := s.exports.Stop(ctx, flow.ExecutionARN(s.exportARN, id), "tenant purged by operation "+ref.OperationID); err != nil {
			return fmt.Errorf("stop export %s of %s: %w", id, ref.TenantID, err)
		}
	}
	s.kit.Logger(ref, "start").Info("running exports stopped", "exports", ids)
	return nil
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
	t, err := s.kit.Owned(ctx, in.Ref, Busy)
	if err != nil {
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
	if !p.More && t.Billing.CustomerID != "" {
		// Every AWS source is empty: the Stripe customer goes last.
		erased, err := s.deleteCustomer(ctx, in.Ref, t.Billing.CustomerID)
		if err != nil {
			return p, err
		}
		if erased.Deleted {
			p.Deleted[tenant.SourceStripeCustomer] = 1
		}
	}
	s.kit.Logger(in.Ref, "delete").Info("chunk deleted", "deleted", p.Deleted, "more", p.More)
	return p, nil
}

// deleteCustomer deletes the tenant's Stripe customer, which also cancels what is
// left of its subscription. Deleting rather than redacting it keeps what the law may
// require: Stripe keeps a deleted customer's invoices readable, with the billing
// details printed on them, while the customer object (name, e-mail, tenant_id
// metadata) is gone. Repeating it is harmless (Stripe's "no such customer" counts as
// deleted); its idempotency key follows the billing scheme <op>:<attempt>:<step>, and
// a purge has a single attempt.
func (s *Steps) deleteCustomer(ctx context.Context, ref flow.Ref, customerID string) (billing.CustomerErasure, error) {
	if s.customers == nil {
		return billing.CustomerErasure{}, fmt.Errorf("purge of %s: no Stripe client to delete customer %s (wiring)", ref.TenantID, customerID)
	}
	erased, err := s.customers.DeleteCustomer(ctx, customerID, ref.OperationID+":0:purge-customer")
	if err != nil {
		return erased, err
	}
	s.kit.Logger(ref, "delete").Info("stripe customer erased", "deleted", erased.Deleted, "billing_disabled", erased.Disabled)
	return erased, nil
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
	verified := map[string]tenant.SourceCertificate{}
	for src, when := range at {
		verified[src] = tenant.SourceCertificate{ItemsDeleted: t.PurgeInventory.Counts[src], VerifiedEmptyAt: when}
	}
	if verified[tenant.SourceStripeCustomer], err = s.verifyCustomer(ctx, in.Ref, t); err != nil {
		return in, err
	}
	cert, err := tenant.NewDeletionCertificate(in.TenantID, in.OperationID, t.PurgeInventory, verified, s.now())
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

// verifyCustomer reads the tenant's Stripe customer back: deleted (or unknown to
// Stripe) is verified, one still there is a *NotEmptyError. Without a customer, or with
// billing disabled, Stripe holds nothing of the tenant, and the certificate says so.
func (s *Steps) verifyCustomer(ctx context.Context, ref flow.Ref, t *tenant.Tenant) (tenant.SourceCertificate, error) {
	id := t.Billing.CustomerID
	if id == "" {
		return tenant.SourceCertificate{VerifiedEmptyAt: s.now(), Note: "no Stripe customer; nothing held"}, nil
	}
	if s.customers == nil {
		return tenant.SourceCertificate{}, fmt.Errorf("purge of %s: no Stripe client to read customer %s back (wiring)", ref.TenantID, id)
	}
	got, err := s.customers.CustomerDeleted(ctx, id)
	switch {
	case err != nil:
		return tenant.SourceCertificate{}, err
	case got.Disabled:
		return tenant.SourceCertificate{VerifiedEmptyAt: s.now(), Note: "billing disabled; nothing held"}, nil
	case !got.Deleted:
		return tenant.SourceCertificate{}, &NotEmptyError{TenantID: ref.TenantID, Source: tenant.SourceStripeCustomer, Found: 1}
	}
	return tenant.SourceCertificate{ItemsDeleted: 1, VerifiedEmptyAt: s.now(),
		Note: "customer deleted at Stripe (DELETE /v1/customers/{id}); its invoices stay with Stripe, see remains"}, nil
}

// Finish commits the purge and then announces it, through an outbox: it scrubs the
// audit trail, then writes the PURGED tombstone, the operation SUCCEEDED and the
// tenant's PurgedEventPending flag in one transaction (flow.Kit.Finish), scrubs once
// more for the lines written since, then publishes TenantPurged with the committed
// certificate and clears the flag. Nothing is published before the commit, so a purge
// that fails never announced a certificate, and the one certificate published is the
// committed one. A repeat after the commit publishes again only while the flag is set
// (a lost answer after publishing repeats the same event: consumers dedupe on
// operation_id); the purge sweep publishes for a Finish that never got that far.
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
		if err := s.scrub(ctx, in.Ref); err != nil {
			return nil, err
		}
		return t.Certificate, PublishPurged(ctx, s.store, s.events, t)
	}
	t, err := s.kit.Owned(ctx, in.Ref, Busy)
	if err != nil {
		return nil, err
	}
	cert := t.Certificate
	if cert == nil || cert.OperationID != in.OperationID || !cert.Verify() {
		return nil, fmt.Errorf("finish purge of %s: no valid certificate of operation %s (Verify did not run)", in.TenantID, in.OperationID)
	}
	if err := s.scrub(ctx, in.Ref); err != nil {
		return nil, err
	}
	commit := func(x *tenant.Tenant) {
		tombstone(x)
		x.PurgedEventPending = true
	}
	if err := s.kit.Finish(ctx, in.Ref, Busy, tenant.Purged, commit, "purged"); err != nil {
		return nil, err
	}
	// The claim and commit lines were written after the first scrub.
	if err := s.scrub(ctx, in.Ref); err != nil {
		return nil, err
	}
	t, err = s.store.GetTenant(ctx, in.TenantID)
	if err != nil {
		return nil, err
	}
	if err := PublishPurged(ctx, s.store, s.events, t); err != nil {
		return nil, err
	}
	log.Info("tenant purged", "sha256", cert.SHA256, "backups_expire_at", cert.BackupsExpireAt)
	return cert, nil
}

// OutboxStore is what publishing from the purge's outbox needs.
type OutboxStore interface {
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
}

// PublishPurged publishes TenantPurged for a PURGED tenant whose event is still
// pending, carrying its committed certificate, and TenantEntitlementsChanged with its
// last entitlements document, then clears the pending flag. A tenant
// whose flag is clear has had its event published: nothing is done.
func PublishPurged(ctx context.Context, st OutboxStore, pub Publisher, t *tenant.Tenant) error {
	if t.State != tenant.Purged || !t.PurgedEventPending {
		return nil
	}
	cert := t.Certificate
	if cert == nil || !cert.Verify() {
		return fmt.Errorf("publish TenantPurged of %s: the tombstone holds no valid certificate", t.ID)
	}
	if pub == nil {
		return fmt.Errorf("publish TenantPurged of %s: no publisher (wiring)", t.ID)
	}
	if err := pub.Publish(ctx, events.TenantPurged, PurgedEvent{TenantID: t.ID, OperationID: cert.OperationID, Certificate: cert}); err != nil {
		return err
	}
	// The app plane's caches learn it too: the last entitlements document, which no
	// other can follow (tenant.PurgedVersion).
	if err := pub.Publish(ctx, events.TenantEntitlementsChanged, tenant.PurgedDocument(t)); err != nil {
		return err
	}
	_, err := st.Change(ctx, t.ID, store.Actor{Who: "system:" + tenant.KindPurge, OperationID: cert.OperationID}, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.State != tenant.Purged || !cur.PurgedEventPending {
			return store.Write{}, store.ErrUnchanged
		}
		return store.Write{Mutate: func(x *tenant.Tenant) { x.PurgedEventPending = false }}, nil
	})
	return err
}

// tombstone is what remains of a purged tenant: its id, plan, lifecycle dates and
// deletion certificate. Name, email, usage, billing references and anything else that
// could identify the customer are removed.
func tombstone(x *tenant.Tenant) {
	x.Name, x.Email = "", ""
	x.Usage = tenant.Usage{}
	x.Overrides = nil
	x.Billing = tenant.BillingRef{}
	x.PendingChange, x.SuspendCause, x.SuspendReason, x.Attention = nil, "", "", ""
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
