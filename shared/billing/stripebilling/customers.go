package stripebilling

import (
	"context"
	"errors"
	"net/http"

	"github.com/stripe/stripe-go/v76"

	"github.com/tenantflow/tenantflow/shared/billing"
)

// DeleteCustomer deletes a customer (DELETE /v1/customers/{id}), which also cancels its
// subscriptions at once; its invoices stay readable at Stripe. A customer Stripe no
// longer knows (404 resource_missing: deleted by an earlier attempt, whose answer may
// have been lost) counts as deleted, so the purge step may run again.
func (s *Stripe) DeleteCustomer(ctx context.Context, customerID, idempotencyKey string) (billing.CustomerErasure, error) {
	if err := checkKey("delete customer "+customerID, idempotencyKey, ""); err != nil {
		return billing.CustomerErasure{}, err
	}
	p := &stripe.CustomerParams{}
	p.Context = ctx
	p.SetIdempotencyKey(idempotencyKey)
	_, err := s.customers.Del(customerID, p)
	if err != nil && !missing(err) {
		return billing.CustomerErasure{}, classify("delete customer "+customerID, err)
	}
	return billing.CustomerErasure{Deleted: true}, nil
}

// CustomerDeleted reads the customer back (GET /v1/customers/{id}): Stripe answers a
// deleted customer with deleted=true, and an id it does not know with a 404.
func (s *Stripe) CustomerDeleted(ctx context.Context, customerID string) (billing.CustomerErasure, error) {
	p := &stripe.CustomerParams{}
	p.Context = ctx
	c, err := s.customers.Get(customerID, p)
	switch {
	case missing(err):
		return billing.CustomerErasure{Deleted: true}, nil
	case err != nil:
		return billing.CustomerErasure{}, classify("read customer "+customerID, err)
	}
	return billing.CustomerErasure{Deleted: c.Deleted}, nil
}

// missing reports Stripe's answer for an object it does not know.
func missing(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound && se.Code == stripe.ErrorCodeResourceMissing
}
