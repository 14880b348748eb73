package lifecycle

import (
	"context"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// entsOf answers every tenant's entitlements as written by operation op.
type entsOf string

func (op entsOf) GetEntitlements(_ context.Context, id string) (*tenant.Entitlements, error) {
	return &tenant.Entitlements{TenantID: id, OperationID: string(op)}, nil
}

// TestSettleStripeEvent: a failed operation the Stripe webhook started needs attention
// for its event ("stripe-event") exactly when the tenant is not left where the event
// meant it to be; an operator's operation never does.
func TestSettleStripeEvent(t *testing.T) {
	const id = "op_1"
	reserved := func(s tenant.State) *tenant.Tenant { return &tenant.Tenant{ID: "t1", State: s, Operation: id} }
	owned := func(s, prev tenant.State) *tenant.Tenant {
		return &tenant.Tenant{ID: "t1", State: s, Operation: id, PreviousState: prev}
	}
	suspension := func(who tenant.Actor, prev tenant.State) *tenant.Operation {
		return &tenant.Operation{ID: id, TenantID: "t1", Kind: tenant.KindSuspension, Actor: who, PreviousState: prev}
	}
	lift := func(who tenant.Actor, prev tenant.State) *tenant.Operation {
		return &tenant.Operation{ID: id, TenantID: "t1", Kind: tenant.KindReactivation, Actor: who, PreviousState: prev, ToPlan: tenant.Starter}
	}
	cases := []struct {
		name    string
		t       *tenant.Tenant
		op      *tenant.Operation
		written string // the operation whose entitlements are in place
		to      tenant.State
		want    []string
	}{
		{"Stripe suspension, never claimed", reserved(tenant.Active), suspension(tenant.ActorStripe, ""), "", tenant.Suspended, []string{"stripe-event"}},
		{"operator suspension, never claimed", reserved(tenant.Active), suspension(tenant.ActorOperator, ""), "", tenant.Suspended, nil},
		{"Stripe suspension, claimed, access not restricted", owned(tenant.Suspended, tenant.Active), suspension(tenant.ActorStripe, tenant.Active), "", tenant.Suspended, []string{"entitlements"}},
		{"Stripe suspension, claimed, access restricted", owned(tenant.Suspended, tenant.Active), suspension(tenant.ActorStripe, tenant.Active), id, tenant.Suspended, nil},
		{"Stripe suspension, claimed by the operator retry, access not restricted", owned(tenant.Suspended, tenant.Active), suspension(tenant.ActorStripe, ""), "", tenant.Suspended, []string{"entitlements"}},
		{"Stripe lift, never claimed", reserved(tenant.Suspended), lift(tenant.ActorStripe, ""), "", tenant.Suspended, []string{"stripe-event"}},
		{"Stripe lift, claimed and put back", owned(tenant.Reactivating, tenant.Suspended), lift(tenant.ActorStripe, tenant.Suspended), "", tenant.Suspended, []string{"stripe-event"}},
		{"Stripe lift, access not undone", owned(tenant.Reactivating, tenant.Suspended), lift(tenant.ActorStripe, tenant.Suspended), id, tenant.Suspended, []string{"entitlements", "stripe-event"}},
		{"operator lift, claimed and put back", owned(tenant.Reactivating, tenant.Suspended), lift(tenant.ActorOperator, tenant.Suspended), "", tenant.Suspended, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := settle(context.Background(), entsOf(c.written), c.t, c.op)
			if err != nil {
				t.Fatal(err)
			}
			if s.To != c.to || !slices.Equal(s.Incomplete, c.want) {
				t.Fatalf("settles to %s with %v incomplete, want %s with %v", s.To, s.Incomplete, c.to, c.want)
			}
		})
	}
}
