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
	AdvanceWebhookMark(ctx context.Context, subscriptionID, tenantID string, created int64, id string, canceled bool, opID string) (bool, error)
}

// Tenants reads tenants and the operations the webhook started.
type Tenants interface {
	GetTenant(ctx context.Context, id string) (*tenant.Tenant, error)
	GetOperation(ctx context.Context, id string) (*tenant.Operation, error)
}

// Lifecycle starts the flows (lifecycle.Starter).
type Lifecycle interface {
	Suspend(ctx context.Context, tenantID, reason string, by store.Actor) (*tenant.Operation, error)
	Reactivate(ctx context.Context, tenantID string, plan tenant.Plan, by store.Actor) (*tenant.Operation, error)
}

// Lease is how long one delivery holds an event: longer than the function's timeout,
// so a concurrent redelivery never runs the same event twice.
const Lease = 60 * time.Second

// Actor is the audit identity of the flows the webhook starts.
var Actor = store.Actor{Who: "system:stripe-webhook"}

// Handler serves POST /webhooks/stripe.
type Handler struct {
	// Verifier is nil when no webhook secret is configured: every delivery is then
	// refused with 503 (Stripe keeps retrying until the secret is set).
	Verifier  Verifier
	Ledger    Ledger
	Tenants   Tenants
	Lifecycle Lifecycle
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
func (h *Handler) apply(ctx context.Context, log *slog.Logger, f Fact, in Intent) (string, error) {
	if f.SubscriptionID == "" || f.TenantID == "" {
		log.Warn("stripe event without subscription or metadata.tenant_id: cannot find the tenant")
		return OutcomeNoTenantMetadata, nil
	}
	mark, err := h.Ledger.WebhookMark(ctx, f.SubscriptionID)
	if err != nil {
		return "", err
	}
	if !in.Terminal() {
		if mark.Canceled {
			return OutcomeCanceledSub, nil
		}
		if mark.Before(f.Created, f.EventID) {
			log.Info("stripe event older than the last one applied to its subscription", "last_created", mark.Created, "last_event_id", mark.EventID)
			return OutcomeStale, nil
		}
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
	if mark.OperationID != "" && t.Operation == "" {
		// The flow the previous event started may not hold the tenant yet. Wait for it
		// only while it runs: GetOperation reports an operation whose execution ended
		// or never started as FAILED (it asks Step Functions, as GET /operations/{id}
		// does), so a dead one never blocks the subscription's later events.
		op, err := h.Tenants.GetOperation(ctx, mark.OperationID)
		if err != nil && !errors.As(err, &nf) {
			return "", err
		}
		if err == nil && !op.Done() {
			return "", &BusyError{TenantID: t.ID, Reason: "operation " + op.ID + " started by an earlier event has not finished"}
		}
	}
	act := Decide(in, t)
	opID := ""
	switch act {
	case Busy:
		return "", &BusyError{TenantID: t.ID, Reason: holder(t)}
	case StartSuspension:
		reason := ReasonNonpayment
		if in == SuspendCanceled {
			reason = ReasonCanceled
		}
		op, err := h.Lifecycle.Suspend(ctx, t.ID, reason, h.actor(f))
		if err := startErr(t, err); err != nil {
			return "", err
		}
		if op != nil {
			opID = op.ID
			log = log.With("operation_id", op.ID)
		}
	case StartReactivation:
		op, err := h.Lifecycle.Reactivate(ctx, t.ID, t.Plan, h.actor(f))
		if err := startErr(t, err); err != nil {
			return "", err
		}
		if op != nil {
			opID = op.ID
			log = log.With("operation_id", op.ID)
		}
	default:
		log.Info("stripe event changes nothing", "intent", in.String(), "state", t.State, "suspend_reason", t.SuspendReason)
	}
	if ok, err := h.Ledger.AdvanceWebhookMark(ctx, f.SubscriptionID, t.ID, f.Created, f.EventID, in.Terminal(), opID); err != nil {
		return "", err
	} else if !ok {
		log.Warn("a newer event of the subscription was applied concurrently")
	}
	return act.String(), nil
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
