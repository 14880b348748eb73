package stripebilling_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tenantflow/tenantflow/shared/billing"
)

// TestDeleteCustomer: the purge deletes the customer with its idempotency key and reads
// it back deleted; a repeat after the customer is gone (Stripe's 404 "No such
// customer") is success; a 5xx is transient, for the state machine to retry; a
// customer still there reads as not deleted.
func TestDeleteCustomer(t *testing.T) {
	b, proxy := newStripe(t)
	ctx := context.Background()
	if got, err := b.CustomerDeleted(ctx, "cus_purged"); err != nil || got.Deleted || got.Disabled {
		t.Fatalf("before the delete: %+v %v, want a live customer", got, err)
	}
	proxy.FailNext(1, "DELETE /v1/customers/", 503, "api_error")
	if _, err := b.DeleteCustomer(ctx, "cus_purged", "op_p:0:purge-customer"); !errors.As(err, new(*billing.TransientError)) {
		t.Fatalf("a 503: %v, want a TransientError", err)
	}
	for i := range 2 {
		if got, err := b.DeleteCustomer(ctx, "cus_purged", "op_p:0:purge-customer"); err != nil || !got.Deleted {
			t.Fatalf("delete #%d: %+v %v", i+1, got, err)
		}
	}
	if got, err := b.CustomerDeleted(ctx, "cus_purged"); err != nil || !got.Deleted {
		t.Errorf("after the delete: %+v %v, want deleted", got, err)
	}
	dels := proxy.RequestsTo("DELETE /v1/customers/cus_purged")
	if len(dels) != 3 || dels[1].Status != 200 || dels[2].Status != 404 {
		t.Fatalf("DELETE requests %+v, want 503, 200, 404", dels)
	}
	for _, r := range dels {
		if r.IdempotencyKey != "op_p:0:purge-customer" {
			t.Errorf("DELETE with idempotency key %q", r.IdempotencyKey)
		}
	}
	if _, err := b.DeleteCustomer(ctx, "cus_purged", ""); !errors.Is(err, billing.ErrNoIdempotencyKey) {
		t.Errorf("a delete without a key: %v", err)
	}
}

// TestDisabledHoldsNoCustomer: without billing nothing is deleted or read, and both
// answers say billing is disabled.
func TestDisabledHoldsNoCustomer(t *testing.T) {
	d := billing.NewDisabled(quiet)
	ctx := context.Background()
	if got, err := d.DeleteCustomer(ctx, "cus_x", "k"); err != nil || !got.Disabled || got.Deleted {
		t.Errorf("DeleteCustomer %+v %v", got, err)
	}
	if got, err := d.CustomerDeleted(ctx, "cus_x"); err != nil || !got.Disabled || got.Deleted {
		t.Errorf("CustomerDeleted %+v %v", got, err)
	}
}
