package stripeapp

import (
	"context"
	"sync"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/billing/stripebilling"
)

// lazyBilling builds the Stripe adapter on its first call, with that call's context,
// so a cold start whose requests never reach Stripe never reads the Stripe secret.
// build exits the process when the secret cannot be read, as a failed init did: Lambda
// reports the invocation failed and starts a fresh environment for the next one.
type lazyBilling struct {
	build func(ctx context.Context) billing.Billing

	mu sync.Mutex
	b  billing.Billing
}

var _ billing.Billing = (*lazyBilling)(nil)

func (l *lazyBilling) get(ctx context.Context) billing.Billing {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b == nil {
		l.b = l.build(ctx)
	}
	return l.b
}

func (l *lazyBilling) CreateSubscription(ctx context.Context, req billing.CreateRequest) (billing.Subscription, error) {
	return l.get(ctx).CreateSubscription(ctx, req)
}

func (l *lazyBilling) ChangePlan(ctx context.Context, req billing.ChangeRequest) (billing.Subscription, error) {
	return l.get(ctx).ChangePlan(ctx, req)
}

func (l *lazyBilling) SchedulePlanChange(ctx context.Context, req billing.ChangeRequest) (billing.Subscription, error) {
	return l.get(ctx).SchedulePlanChange(ctx, req)
}

func (l *lazyBilling) Cancel(ctx context.Context, req billing.CancelRequest) (billing.Subscription, error) {
	return l.get(ctx).Cancel(ctx, req)
}

func (l *lazyBilling) Resume(ctx context.Context, subscriptionID, idempotencyKey string) (billing.Subscription, error) {
	return l.get(ctx).Resume(ctx, subscriptionID, idempotencyKey)
}

func (l *lazyBilling) Get(ctx context.Context, subscriptionID string) (billing.Subscription, error) {
	return l.get(ctx).Get(ctx, subscriptionID)
}

// customers is what the purge asks of billing (billing.Disabled and the Stripe adapter
// have it).
type customers interface {
	DeleteCustomer(ctx context.Context, customerID, idempotencyKey string) (billing.CustomerErasure, error)
	CustomerDeleted(ctx context.Context, customerID string) (billing.CustomerErasure, error)
}

var (
	_ customers = (*lazyBilling)(nil)
	_ customers = (*billing.Disabled)(nil)
	_ customers = (*stripebilling.Stripe)(nil)
)

func (l *lazyBilling) DeleteCustomer(ctx context.Context, customerID, idempotencyKey string) (billing.CustomerErasure, error) {
	return l.get(ctx).(customers).DeleteCustomer(ctx, customerID, idempotencyKey)
}

func (l *lazyBilling) CustomerDeleted(ctx context.Context, customerID string) (billing.CustomerErasure, error) {
	return l.get(ctx).(customers).CustomerDeleted(ctx, customerID)
}

func (l *lazyBilling) CreatedBy(ctx context.Context, customerID, operationID string) ([]billing.Subscription, error) {
	return l.get(ctx).CreatedBy(ctx, customerID, operationID)
}
