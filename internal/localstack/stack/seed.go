package stack

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/billing"
	"github.com/tenantflow/tenantflow/shared/provision"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Example is one of the example tenants `make dev` seeds (README, "Try it").
type Example struct {
	ID    string
	Name  string
	Plan  tenant.Plan
	State tenant.State
	Usage tenant.Usage
	// DataItems is how many application data items the tenant gets in `make dev`,
	// so exports and purges have real work.
	DataItems int
}

// Examples are the seeded tenants; tests and the README use them.
var Examples = []Example{
	{ID: "tenant_acme", Name: "Acme Corp", Plan: tenant.Starter, State: tenant.Active, Usage: tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5_000}, DataItems: 500},
	{ID: "tenant_techstart", Name: "TechStart Inc", Plan: tenant.Free, State: tenant.Active, Usage: tenant.Usage{Users: 1, StorageGB: 0.2, APICallsPerMonth: 800}, DataItems: 100},
	{ID: "tenant_enterprise", Name: "Enterprise Solutions", Plan: tenant.Professional, State: tenant.Active, Usage: tenant.Usage{Users: 45, StorageGB: 80, APICallsPerMonth: 600_000}, DataItems: 10_000},
	{ID: "tenant_suspended", Name: "Suspended Co", Plan: tenant.Starter, State: tenant.Suspended, Usage: tenant.Usage{Users: 5, StorageGB: 3, APICallsPerMonth: 20_000}, DataItems: 200},
}

// ExampleOperation is a finished operation in tenant_acme's history (its upgrade from
// free), so GET /operations/{id} has something to show on a fresh stack; the
// events/api/get-operation*.json fixtures read it.
var ExampleOperation = tenant.Operation{ID: "op_19b7c5e2a00_3f2a9c1d7e6b5a40", TenantID: "tenant_acme", Kind: tenant.KindUpgrade,
	Status: tenant.OpSucceeded, FromPlan: tenant.Free, ToPlan: tenant.Starter, RequestedBy: "alice"}

// Store returns the control-plane store of the stack.
func (s *Stack) Store() *store.Store { return store.New(s.DynamoDB(), s.TenantsTable, nil) }

// Seed writes the example tenants (with entitlements and a Stripe subscription id that
// stripe-mock accepts) and, when withData, their application data items.
func (s *Stack) Seed(ctx context.Context, withData bool) error {
	st := s.Store()
	prov := provision.New(st, nil, tenant.DefaultCatalog())
	periodEnd := time.Now().UTC().AddDate(0, 0, 15).Truncate(time.Second)
	for _, ex := range Examples {
		t := &tenant.Tenant{ID: ex.ID, Name: ex.Name, Email: "billing@" + ex.ID + ".example", Plan: ex.Plan, State: ex.State, Usage: ex.Usage,
			Billing: tenant.BillingRef{CustomerID: "cus_" + ex.ID, SubscriptionID: "sub_" + ex.ID, CurrentPeriodEnd: &periodEnd}}
		if ex.State == tenant.Suspended {
			t.SuspendCause, t.SuspendReason = tenant.CauseNonpayment, "nonpayment"
		}
		if _, err := st.CreateTenant(ctx, t, store.Actor{Who: "system:seed", Reason: "example tenant"}); err != nil {
			return fmt.Errorf("seed %s: %w", ex.ID, err)
		}
		if err := prov.Initial(ctx, ex.ID, ex.Plan); err != nil {
			return fmt.Errorf("seed %s: %w", ex.ID, err)
		}
		if ex.State == tenant.Suspended {
			// A suspended tenant's users keep read and export access only.
			e, err := st.GetEntitlements(ctx, ex.ID)
			if err == nil {
				e.Access = tenant.AccessSuspended
				_, err = st.PutEntitlements(ctx, e, e.Version)
			}
			if err != nil {
				return fmt.Errorf("seed %s: %w", ex.ID, err)
			}
		}
		if withData {
			if err := s.seedData(ctx, ex.ID, ex.DataItems); err != nil {
				return err
			}
		}
	}
	op := ExampleOperation
	if _, err := st.CreateOperation(ctx, &op); err != nil {
		return fmt.Errorf("seed operation %s: %w", op.ID, err)
	}
	return nil
}

// seedData writes n application items for a tenant, 25 per BatchWriteItem.
func (s *Stack) seedData(ctx context.Context, tenantID string, n int) error {
	for start := 0; start < n; start += 25 {
		var reqs []types.WriteRequest
		for i := start; i < n && i < start+25; i++ {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"tenant_id": &types.AttributeValueMemberS{Value: tenantID},
				"item_id":   &types.AttributeValueMemberS{Value: fmt.Sprintf("doc#%06d", i)},
				"kind":      &types.AttributeValueMemberS{Value: "document"},
				"title":     &types.AttributeValueMemberS{Value: "Document " + strconv.Itoa(i) + " of " + tenantID},
				"body":      &types.AttributeValueMemberS{Value: fmt.Sprintf("Sample content %d for %s; exports and purges read and delete this.", i, tenantID)},
			}}})
		}
		if err := s.batchWrite(ctx, s.DataTable, reqs); err != nil {
			return fmt.Errorf("seed data %s: %w", tenantID, err)
		}
	}
	return nil
}

// Load bulk-writes new tenants (each with its first audit record) and operations, 25
// items per BatchWriteItem: the items CreateTenant and CreateOperation would write,
// without their one-by-one transactions, for tests that need thousands.
func (s *Stack) Load(ctx context.Context, tenants []*tenant.Tenant, ops []*tenant.Operation) error {
	items, err := s.Store().BulkItems(tenants, ops, store.Actor{Who: "system:load"})
	if err != nil {
		return err
	}
	for start := 0; start < len(items); start += 25 {
		end := min(start+25, len(items))
		reqs := make([]types.WriteRequest, 0, end-start)
		for _, it := range items[start:end] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		if err := s.batchWrite(ctx, s.TenantsTable, reqs); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

// PriceIDs reads the template's StripePriceIds the way the billing adapter does
// (billing.ParsePriceIDs, then Validate): the price the stack's functions send Stripe
// for each plan, for tests that judge billing from the recorded Stripe requests.
func (s *Stack) PriceIDs() (billing.PriceIDs, error) {
	ref, err := s.Template.Ref("StripePriceIds")
	if err != nil {
		return nil, fmt.Errorf("template parameter StripePriceIds: %w", err)
	}
	str, _ := ref.(string)
	p, err := billing.ParsePriceIDs(str)
	if err != nil {
		return nil, err
	}
	return p, p.Validate()
}
