package billing

import "context"

// CustomerErasure is what Stripe holds of a tenant's customer after the purge asked
// for its deletion.
type CustomerErasure struct {
	// Disabled: billing is off in this deployment, so Stripe holds nothing of it.
	Disabled bool
	// Deleted: the customer is deleted at Stripe (now, or already before).
	Deleted bool
}

// skipCustomer is Disabled's answer to the customer calls.
func (d *Disabled) skipCustomer(ctx context.Context, op, customerID string) (CustomerErasure, error) {
	d.logger.InfoContext(ctx, "billing disabled", "op", op, "customer_id", customerID)
	return CustomerErasure{Disabled: true}, nil
}

// DeleteCustomer logs and reports billing disabled.
func (d *Disabled) DeleteCustomer(ctx context.Context, customerID, idempotencyKey string) (CustomerErasure, error) {
	return d.skipCustomer(ctx, "delete customer", customerID)
}

// CustomerDeleted logs and reports billing disabled.
func (d *Disabled) CustomerDeleted(ctx context.Context, customerID string) (CustomerErasure, error) {
	return d.skipCustomer(ctx, "read customer", customerID)
}
