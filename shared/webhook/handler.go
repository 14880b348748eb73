package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Ledger remembers deliveries and the per-subscription order (shared/store implements
// it in the control-plane table, with a TTL).
type Ledger interface {
	ClaimWebhookEvent(ctx context.Context, id, eventType string, lease time.Duration) (bool, error)
	FinishWebhookEvent(ctx context.Context, id, tenantID, outcome string) error
	ReleaseWebhookEvent(ctx context.Context, id string) error
	WebhookMark(ctx context.Context, subscriptionID string) (store.WebhookMark, error)
	AcceptWebhookMark(ctx context.Context, subscriptionID, tenantID string, seen int64, next store.WebhookMark) (bool, error)
	SettleWebhookMark(ctx context.Context, subscriptionID, eventID, opID string) (bool, error)
	ReleaseWebhookMark(ctx context.Context, subscriptionID, eventID string) error
}

// Tenants reads tenants and the operations the webhook started.
type Tenants interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
}

// Changes makes the webhook's one direct write on a tenant (shared/store implements
// it): the conditional, audited change that clears a DELETED tenant's nonpayment
// cause.
type Changes interface {
	Change(ctx context.Context, id string, by store.Actor, decide store.Decide) (*tenant.Tenant, error)
}

// Lifecycle starts the flows (lifecycle.Starter) under an operation id the caller
// chose: the webhook reserves it in the subscription's order record before starting,
// so a retry of the same event finds the flow an earlier delivery started.
type Lifecycle interface {
	SuspendAs(ctx context.Context, opID, tenantID, reason string, by store.Actor) (*tenant.Operation, error)
	ReactivateAs(ctx context.Context, opID, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error)
}

// Lease is how long one delivery holds an event, and the order of its subscription:
// longer than the function's timeout (10 s), so a delivery whose lease ran out can no
// longer write anything, and a concurrent redelivery never runs the same event twice.
const Lease = 60 * time.Second

// acceptAttempts bounds how often a delivery re-reads a subscription's order record
// that another delivery wrote between its read and its write.
const acceptAttempts = 4

// Actor is the audit identity of the flows the webhook starts.
var Actor = store.Actor{Who: "system:stripe-webhook", As: tenant.ActorStripe}

// Handler serves POST /webhooks/stripe.
type Handler struct {
	// Verifier is nil when no webhook secret is configured: every delivery is then
	// refused with 503 (Stripe keeps retrying until the secret is set).
	Verifier  Verifier
	Ledger    Ledger
	Tenants   Tenants
	Lifecycle Lifecycle
	Changes   Changes
	Log       *slog.Logger
}

// BusyError says the tenant cannot take the event now: Stripe's retry will.
type BusyError struct {
	TenantID string
	Reason   string
}

func (e *BusyError) Error() string { return "tenant " + e.TenantID + " busy: " + e.Reason }

// Result is the JSON body of an answer; Outcome says what the event did.
type Result struct {
	Received bool   `json:"received"`
	EventID  string `json:"event_id,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Outcomes besides Action's.
const (
	OutcomeDuplicate        = "duplicate"
	OutcomeStale            = "stale"
	OutcomeIgnored          = "ignored"
	OutcomeCanceledSub      = "subscription_canceled"
	OutcomeUnknownTenant    = "unknown_tenant"
	OutcomeNotTenantsSub    = "not_the_tenants_subscription"
	OutcomeNoTenantMetadata = "no_tenant_id"
)

// Handle answers one delivery. It never returns an error to the runtime: API Gateway
// would turn it into a bare 500 without a log line naming the event.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if h.Verifier == nil {
		h.Log.Error("stripe webhook refused: no webhook secret configured (template parameter StripeWebhookSecretName is empty)")
		return answer(http.StatusServiceUnavailable, Result{Error: "webhook secret not configured"}), nil
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return h.refuse(&InputError{Reason: "body is not base64"}), nil
		}
		body = b
	}
	ev, err := h.Verifier.Verify(body, header(req.Headers, "Stripe-Signature"))
	if unavailable := (*UnavailableError)(nil); errors.As(err, &unavailable) {
		h.Log.Error("stripe webhook not verified: the verifier is unavailable; Stripe will deliver again", "error", err.Error())
		return answer(http.StatusServiceUnavailable, Result{Error: "webhook verification unavailable"}), nil
	}
	if err != nil {
		return h.refuse(err), nil
	}
	f, err := ReadFact(ev)
	if err != nil {
		return h.refuse(err), nil
	}
	log := h.Log.With("event_id", f.EventID, "event_type", f.Type, "tenant_id", f.TenantID, "subscription_id", f.SubscriptionID, "created", f.Created)
	in := IntentOf(f)
	if in == None {
		// Nothing is written: a redelivery is just as harmless.
		log.Info("stripe event ignored", "status", f.Status, "why", "no mapping for this type/status")
		return answer(http.StatusOK, Result{Received: true, EventID: f.EventID, Outcome: OutcomeIgnored}), nil
	}
	claimed, err := h.Ledger.ClaimWebhookEvent(ctx, f.EventID, f.Type, Lease)
	if err != nil {
		log.Error("stripe event not claimed", "error", err.Error())
		return answer(http.StatusInternalServerError, Result{EventID: f.EventID, Error: "internal error"}), nil
	}
	if !claimed {
		log.Info("stripe event duplicate", "outcome", OutcomeDuplicate)
		return answer(http.StatusOK, Result{Received: true, EventID: f.EventID, Outcome: OutcomeDuplicate}), nil
	}
	outcome, err := h.apply(ctx, log, f, in)
	if err != nil {
		if rerr := h.Ledger.ReleaseWebhookEvent(ctx, f.EventID); rerr != nil {
			log.Error("stripe event lease not released (a retry waits for it to expire)", "error", rerr.Error())
		}
		var busy *BusyError
		if errors.As(err, &busy) {
			log.Warn("stripe event deferred: tenant busy, Stripe will retry", "intent", in.String(), "reason", busy.Reason)
			return answer(http.StatusServiceUnavailable, Result{EventID: f.EventID, Error: busy.Error()}), nil
		}
		log.Error("stripe event failed", "intent", in.String(), "error", err.Error())
		return answer(http.StatusInternalServerError, Result{EventID: f.EventID, Error: "internal error"}), nil
	}
	if err := h.Ledger.FinishWebhookEvent(ctx, f.EventID, f.TenantID, outcome); err != nil {
		// The effect happened; a redelivery finds the lease expired and re-runs the
		// decision, which is a no-op for a tenant already moved.
		log.Error("stripe event not marked done", "error", err.Error())
	}
	log.Info("stripe event applied", "intent", in.String(), "outcome", outcome)
	return answer(http.StatusOK, Result{Received: true, EventID: f.EventID, Outcome: outcome}), nil
}

// apply runs one claimed event and says what it did; *BusyError and other errors
// leave the event unrecorded for Stripe's retry.
//
// The order of a subscription's events is decided by one conditional write before
// any flow starts: the delivery reads the subscription's order record, decides
// whether its event is stale, already applied, or must wait, decides what the event
// does to the tenant, and accepts the event by writing the record on the version it
// read (a concurrent delivery that wrote first makes it read and decide again). An
// event that starts a flow is accepted as pending, with a lease and the id reserved
// for its flow, and holds the subscription until the delivery settles it (the flow
// started) or releases it (5xx): a delivery of another event of the subscription
// answers 503 meanwhile, so no decision is taken on a tenant an earlier event is about
// to move. A delivery that dies after starting its flow leaves the reserved id in the
// record: Stripe's retry of the event finds that flow instead of starting a second
// one, and a newer event that supersedes the dead delivery waits for it.
func (h *Handler) apply(ctx context.Context, log *slog.Logger, f Fact, in Intent) (string, error) {
	if f.SubscriptionID == "" || f.TenantID == "" {
		log.Warn("stripe event without subscription or metadata.tenant_id: cannot find the tenant")
		return OutcomeNoTenantMetadata, nil
	}
	for range acceptAttempts {
		m, err := h.Ledger.WebhookMark(ctx, f.SubscriptionID)
		if err != nil {
			return "", err
		}
		now := time.Now()
		final, busy := admit(m, f, in.Terminal(), now)
		switch {
		case final == OutcomeStale:
			log.Info("stripe event older than the last one accepted for its subscription", "last_created", m.Created, "last_event_id", m.EventID)
			return final, nil
		case final != "":
			return final, nil
		case busy != "":
			return "", &BusyError{TenantID: f.TenantID, Reason: busy}
		}
		t, err := h.Tenants.GetTenant(ctx, f.TenantID)
		var nf *tenant.NotFoundError
		if errors.As(err, &nf) {
			log.Warn("stripe event for an unknown tenant")
			return OutcomeUnknownTenant, nil
		}
		if err != nil {
			return "", err
		}
		if t.Billing.SubscriptionID != "" && t.Billing.SubscriptionID != f.SubscriptionID {
			log.Warn("stripe event for a subscription that is not the tenant's", "tenant_subscription_id", t.Billing.SubscriptionID)
			return OutcomeNotTenantsSub, nil
		}
		prev, reserved, started, err := h.previous(ctx, m, f)
		if err != nil {
			return "", err
		}
		if started == nil && prev != "" && t.Operation == "" {
			// The flow an earlier event started may not have claimed the tenant yet.
			op, err := h.Tenants.GetOperation(ctx, prev)
			if err != nil && !errors.As(err, &nf) {
				return "", err
			}
			if err == nil && !op.Done() {
				return "", &BusyError{TenantID: t.ID, Reason: "operation " + op.ID + " started by an earlier event has not finished"}
			}
		}
		// Decide on the tenant as read: the accept below is conditioned on the record
		// this delivery read, so no other event of the subscription moved meanwhile.
		act, outcome := NoChange, ""
		if started != nil {
			outcome, prev = outcomeOf(started), started.ID
			log.Info("stripe event re-applied: an earlier delivery started its flow", "operation_id", started.ID)
		} else {
			act = Decide(in, t)
			outcome = act.String()
		}
		if act == Busy {
			return "", &BusyError{TenantID: t.ID, Reason: holder(t)}
		}
		next := m
		if !m.Before(f.Created, f.EventID) {
			next.Created, next.EventID = f.Created, f.EventID
		}
		next.Canceled = m.Canceled || in.Terminal()
		next.OperationID, next.Pending, next.PendingOp, next.LeaseUntil = prev, "", "", 0
		if act != NoChange {
			// A flow will start, or the tenant be written: the event holds the
			// subscription until it is settled.
			next.Pending, next.PendingOp, next.LeaseUntil = f.EventID, reserved, now.Add(Lease).Unix()
			if act == ClearCause {
				next.PendingOp = "" // no flow: nothing for a retry to find
			}
		}
		ok, err := h.Ledger.AcceptWebhookMark(ctx, f.SubscriptionID, t.ID, m.Version, next)
		if err != nil {
			return "", err
		}
		if !ok {
			continue // another delivery wrote the record meanwhile: decide again
		}
		if act == NoChange {
			if started == nil {
				log.Info("stripe event changes nothing", "intent", in.String(), "state", t.State, "suspend_reason", t.SuspendReason)
			}
			return outcome, nil
		}
		if act == ClearCause {
			return h.clearCause(ctx, log, f, t)
		}
		opID, err := h.start(ctx, f, in, act, t, reserved)
		if err != nil {
			if rerr := h.Ledger.ReleaseWebhookMark(ctx, f.SubscriptionID, f.EventID); rerr != nil {
				log.Error("subscription order not released (the next event waits for the lease to expire)", "error", rerr.Error())
			}
			return "", err
		}
		log.Info("stripe event started a flow", "operation_id", opID)
		if ok, err := h.Ledger.SettleWebhookMark(ctx, f.SubscriptionID, f.EventID, opID); err != nil || !ok {
			// The flow started; the lease runs out and the operation id reserved in
			// the record lets the next delivery find it.
			log.Error("subscription order not settled", "error", fmt.Sprint(err), "superseded", !ok && err == nil)
		}
		return outcome, nil
	}
	return "", &BusyError{TenantID: f.TenantID, Reason: "the subscription's order record kept changing"}
}

// admit decides from the subscription's order record m whether event f may be
// applied now. It returns a final outcome (stale, already applied, subscription
// canceled), or why the event must wait (busy), or neither: accept it.
func admit(m store.WebhookMark, f Fact, terminal bool, now time.Time) (outcome, busy string) {
	if !terminal {
		if m.Canceled {
			return OutcomeCanceledSub, ""
		}
		if m.Before(f.Created, f.EventID) {
			return OutcomeStale, ""
		}
	}
	switch {
	case m.Pending == f.EventID && m.Held(now):
		return "", "an earlier delivery of this event is being applied"
	case m.Pending != "" && m.Held(now):
		return "", "event " + m.Pending + " of this subscription is being applied"
	case m.Pending != f.EventID && m.EventID == f.EventID:
		return OutcomeDuplicate, "" // applied and settled: its event record was not finished
	}
	return "", ""
}

// previous reads what earlier deliveries left in the record m: prev is the flow the
// last applied event started (or, when f supersedes a delivery that died holding the
// record, the flow that delivery may have started); reserved is the operation id f
// may start its flow under; started is the flow an earlier delivery of f itself
// started before it died (f is then re-applied: nothing new is started).
func (h *Handler) previous(ctx context.Context, m store.WebhookMark, f Fact) (prev, reserved string, started *tenant.Operation, err error) {
	prev = m.OperationID
	var nf *tenant.NotFoundError
	switch {
	case m.Pending == f.EventID && m.PendingOp != "":
		op, err := h.Tenants.GetOperation(ctx, m.PendingOp)
		switch {
		case errors.As(err, &nf):
			reserved = m.PendingOp
		case err != nil:
			return "", "", nil, err
		case !op.Done() || op.PreviousState != "":
			// Running, or it claimed the tenant: the earlier delivery's flow is this
			// event's effect.
			reserved, started = op.ID, op
		}
		// Otherwise it ended without ever claiming the tenant (its start failed): it
		// did nothing, and the event is decided again under a new id.
	case m.Pending != "" && m.PendingOp != "":
		if _, err := h.Tenants.GetOperation(ctx, m.PendingOp); err == nil {
			prev = m.PendingOp
		} else if !errors.As(err, &nf) {
			return "", "", nil, err
		}
	}
	if reserved == "" {
		reserved = flow.NewOperationID()
	}
	return prev, reserved, started, nil
}

// ReasonCured is the audited reason of a nonpayment cause a payment cleared while the
// tenant was DELETED.
const ReasonCured = "payment received while deleted: the nonpayment suspension is lifted"

// clearCause applies an accepted, pending payment to a DELETED tenant that kept a
// nonpayment suspension: one conditional write (store.Change, audited) removes
// suspend_cause and suspend_reason and nothing else, decided again on the tenant
// read inside the write. Then the subscription is settled; a failure releases it
// and answers 5xx, and Stripe's retry decides again (a cause already cleared is no
// change).
func (h *Handler) clearCause(ctx context.Context, log *slog.Logger, f Fact, t *tenant.Tenant) (string, error) {
	by := h.actor(f)
	cleared := false
	_, err := h.Changes.Change(ctx, t.ID, by, func(cur *tenant.Tenant) (store.Write, error) {
		cleared = false
		_, err := tenant.Decide(tenant.Query{Action: tenant.ActStripeCureNonpayment, Actor: tenant.ActorStripe, Tenant: cur})
		var fe *tenant.ForbiddenError
		switch {
		case errors.As(err, &fe):
			return store.Write{}, store.ErrUnchanged // no nonpayment cause (left) to clear
		case err != nil:
			return store.Write{}, err
		}
		cleared = true
		return store.Write{Reason: ReasonCured + " (" + by.Reason + ")", Mutate: func(x *tenant.Tenant) {
			x.SuspendCause, x.SuspendReason = "", ""
		}}, nil
	})
	if err := startErr(t, err); err != nil {
		if rerr := h.Ledger.ReleaseWebhookMark(ctx, f.SubscriptionID, f.EventID); rerr != nil {
			log.Error("subscription order not released (the next event waits for the lease to expire)", "error", rerr.Error())
		}
		return "", err
	}
	if ok, err := h.Ledger.SettleWebhookMark(ctx, f.SubscriptionID, f.EventID, ""); err != nil || !ok {
		log.Error("subscription order not settled", "error", fmt.Sprint(err), "superseded", !ok && err == nil)
	}
	if !cleared {
		log.Info("stripe event changes nothing: the nonpayment cause is already gone", "state", t.State)
		return NoChange.String(), nil
	}
	log.Info("stripe event cleared the nonpayment cause of a deleted tenant", "state", t.State)
	return ClearCause.String(), nil
}

// outcomeOf is the outcome of an event whose flow op an earlier delivery started.
func outcomeOf(op *tenant.Operation) string {
	if op.Kind == tenant.KindReactivation {
		return StartReactivation.String()
	}
	return StartSuspension.String()
}

// start starts the flow act asks for on tenant t under the reserved operation id.
func (h *Handler) start(ctx context.Context, f Fact, in Intent, act Action, t *tenant.Tenant, reserved string) (string, error) {
	var op *tenant.Operation
	var err error
	switch act {
	case StartReactivation:
		op, err = h.Lifecycle.ReactivateAs(ctx, reserved, t.ID, t.Plan, h.actor(f))
	default:
		reason := ReasonNonpayment
		if in == SuspendCanceled {
			reason = ReasonCanceled
		}
		op, err = h.Lifecycle.SuspendAs(ctx, reserved, t.ID, reason, h.actor(f))
	}
	if err := startErr(t, err); err != nil {
		return "", err
	}
	return op.ID, nil
}

// startErr maps a refused start: another operation got the tenant between the read
// and the start (retry later), anything else is passed on.
func startErr(t *tenant.Tenant, err error) error {
	var ce *tenant.ConflictError
	if errors.As(err, &ce) {
		return &BusyError{TenantID: t.ID, Reason: ce.Reason}
	}
	return err
}

func holder(t *tenant.Tenant) string {
	if t.Operation != "" {
		return fmt.Sprintf("operation %s in progress (state %s)", t.Operation, t.State)
	}
	return fmt.Sprintf("operation %s needs attention", t.Attention)
}

func (h *Handler) actor(f Fact) store.Actor {
	a := Actor
	a.Reason = "stripe " + f.Type + " " + f.EventID
	return a
}

func (h *Handler) refuse(err error) events.APIGatewayV2HTTPResponse {
	h.Log.Warn("stripe webhook refused", "error", err.Error())
	return answer(http.StatusBadRequest, Result{Error: err.Error()})
}

// header reads a header case-insensitively (API Gateway lower-cases them).
func header(hs map[string]string, name string) string {
	for k, v := range hs {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func answer(status int, r Result) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(r)
	hs := map[string]string{"content-type": "application/json"}
	if status == http.StatusServiceUnavailable {
		hs["retry-after"] = "60"
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: hs, Body: string(b)}
}
