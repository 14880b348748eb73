package billing

import (
	"context"
	"log/slog"
)

// Disabled is the Billing of a deployment without a Stripe key: every method succeeds
// without calling anything, logs "billing disabled", and returns a Subscription whose
// only field is Status StatusDisabled. Tenants then run without billing, which is what
// a local stack or a trial deployment wants.
type Disabled struct {
	logger *slog.Logger
}

var _ Billing = (*Disabled)(nil)

// NewDisabled returns a Disabled that logs to logger (nil means slog.Default()).
func NewDisabled(logger *slog.Logger) *Disabled {
	if logger == nil {
		logger = slog.Default()
	}
	return &Disabled{logger: logger}
}

func (d *Disabled) skip(ctx context.Context, op string, attrs ...any) (Subscription, error) {
	d.logger.InfoContext(ctx, "billing disabled", append([]any{"op", op}, attrs...)...)
	return Subscription{Status: StatusDisabled}, nil
}

// CreateSubscription logs and returns a disabled Subscription.
func (d *Disabled) CreateSubscription(ctx context.Context, req CreateRequest) (Subscription, error) {
	return d.skip(ctx, "create subscription", "tenant_id", req.TenantID, "plan", string(req.Plan), "idempotency_key", req.IdempotencyKey)
}

// ChangePlan logs and returns a disabled Subscription.
func (d *Disabled) ChangePlan(ctx context.Context, req ChangeRequest) (Subscription, error) {
	return d.skip(ctx, "change plan", "subscription_id", req.SubscriptionID, "plan", string(req.Plan), "idempotency_key", req.IdempotencyKey)
}

// SchedulePlanChange logs and returns a disabled Subscription.
func (d *Disabled) SchedulePlanChange(ctx context.Context, req ChangeRequest) (Subscription, error) {
	return d.skip(ctx, "schedule plan change", "subscription_id", req.SubscriptionID, "plan", string(req.Plan), "idempotency_key", req.IdempotencyKey)
}

// Cancel logs and returns a disabled Subscription.
func (d *Disabled) Cancel(ctx context.Context, req CancelRequest) (Subscription, error) {
	return d.skip(ctx, "cancel subscription", "subscription_id", req.SubscriptionID, "at_period_end", req.AtPeriodEnd, "idempotency_key", req.IdempotencyKey)
}

// Resume logs and returns a disabled Subscription.
func (d *Disabled) Resume(ctx context.Context, subscriptionID, idempotencyKey string) (Subscription, error) {
	return d.skip(ctx, "resume subscription", "subscription_id", subscriptionID, "idempotency_key", idempotencyKey)
}

// Get logs and returns a disabled Subscription.
func (d *Disabled) Get(ctx context.Context, subscriptionID string) (Subscription, error) {
	return d.skip(ctx, "get subscription", "subscription_id", subscriptionID)
}

// CreatedBy logs and finds nothing: a disabled billing creates no subscriptions.
func (d *Disabled) CreatedBy(ctx context.Context, customerID, operationID string) ([]Subscription, error) {
	_, _ = d.skip(ctx, "list subscriptions created by operation", "customer_id", customerID, "operation_id", operationID)
	return nil, nil
}
