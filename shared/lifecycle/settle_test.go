package lifecycle

import (
	"context"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// entsOf answers every tenant's entitlements as written by operation op.
type entsOf string

func (op entsOf) GetEntitlements(_ context.Context, id string) (*tenant.Entitlements, error) {
	return &tenant.Entitlements{TenantID: id, OperationID: string(op)}, nil
}

// No provisioning hook requests.
func (op entsOf) GetProvisioning(_ context.Context, _, id string) (*apphook.Request, error) {
	return nil, &tenant.NotFoundError{Kind: "provisioning request", ID: id}
}

// hookRequests answers no entitlements written by the operation, and the
// provisioning requests it holds (by request id).
type hookRequests map[string]*apphook.Request

func (hookRequests) GetEntitlements(_ context.Context, id string) (*tenant.Entitlements, error) {
	return &tenant.Entitlements{TenantID: id}, nil
}

func (h hookRequests) GetProvisioning(_ context.Context, _, id string) (*apphook.Request, error) {
	if r, ok := h[id]; ok {
		return r, nil
	}
	return nil, &tenant.NotFoundError{Kind: "provisioning request", ID: id}
}

// TestSettleReactivationAppProvisioning: a reactivation that asked the app plane to
// provision is incomplete for "app-provisioning" unless the undo of the attempt that
// compensated was confirmed; a reactivation that never asked is not.
func TestSettleReactivationAppProvisioning(t *testing.T) {
	op := &tenant.Operation{ID: "op_1", TenantID: "t1", Kind: tenant.KindReactivation, Actor: tenant.ActorOperator,
		PreviousState: tenant.Suspended, ToPlan: tenant.Starter, Attempt: 1}
	apply := apphook.RequestID(op.ID, 0, apphook.ActionApply)
	undo := func(attempt int) string { return apphook.RequestID(op.ID, attempt, apphook.ActionUndo) }
	cases := []struct {
		name string
		reqs hookRequests
		want []string
	}{
		{"never asked", hookRequests{}, nil},
		{"asked, no undo", hookRequests{apply: {Status: apphook.StatusExpired}}, []string{"app-provisioning"}},
		{"asked, undo pending", hookRequests{apply: {Status: apphook.StatusSucceeded}, undo(1): {Status: apphook.StatusExpired}}, []string{"app-provisioning"}},
		{"asked, undo failed", hookRequests{apply: {Status: apphook.StatusSucceeded}, undo(1): {Status: apphook.StatusFailed}}, []string{"app-provisioning"}},
		{"asked, only an earlier attempt's undo confirmed", hookRequests{apply: {Status: apphook.StatusSucceeded}, undo(0): {Status: apphook.StatusSucceeded}}, []string{"app-provisioning"}},
		{"asked, undo confirmed", hookRequests{apply: {Status: apphook.StatusSucceeded}, undo(1): {Status: apphook.StatusSucceeded}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := settle(context.Background(), c.reqs, &tenant.Tenant{ID: "t1", State: tenant.Reactivating, Operation: op.ID}, op)
			if err != nil {
				t.Fatal(err)
			}
			if s.To != tenant.Suspended || !slices.Equal(s.Incomplete, c.want) {
				t.Fatalf("settles to %s with %v incomplete, want SUSPENDED with %v", s.To, s.Incomplete, c.want)
			}
		})
	}
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
