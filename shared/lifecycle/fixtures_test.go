package lifecycle_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// stepFixtures lists every events/lifecycle-*/*.json in the order they run on a fresh
// seeded stack (the same order works with `make invoke` on a new `make dev`): a
// deletion of tenant_techstart to its end, then a reactivation of tenant_suspended
// that is compensated and released.
var stepFixtures = []struct {
	file  string
	check func(t *testing.T, s *stack.Stack, payload []byte)
}{
	{"lifecycle-claim/delete-techstart.json", stateIs("tenant_techstart", tenant.Deleting)},
	{"lifecycle-billing/delete-techstart.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if _, c := billingState(s, "sub_tenant_techstart", "", false); !c {
			t.Error("subscription not canceling")
		}
	}},
	{"lifecycle-access/delete-techstart.json", accessIs("tenant_techstart", tenant.AccessRevoked)},
	{"lifecycle-finish/delete-techstart.json", stateIs("tenant_techstart", tenant.Deleted)},
	{"lifecycle-claim/reactivate-suspended.json", stateIs("tenant_suspended", tenant.Reactivating)},
	{"lifecycle-access/reactivate-suspended.json", accessIs("tenant_suspended", tenant.AccessActive)},
	{"lifecycle-billing/reactivate-suspended.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if p, _ := billingState(s, "sub_tenant_suspended", "", false); p != "price_professional" {
			t.Errorf("price %q", p)
		}
	}},
	{"lifecycle-undo-billing/reactivate-suspended.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if p, _ := billingState(s, "sub_tenant_suspended", "", false); p != "price_starter" {
			t.Errorf("price %q", p)
		}
	}},
	{"lifecycle-undo-access/reactivate-suspended.json", accessIs("tenant_suspended", tenant.AccessSuspended)},
	{"lifecycle-release/reactivate-suspended.json", func(t *testing.T, s *stack.Stack, p []byte) {
		stateIs("tenant_suspended", tenant.Suspended)(t, s, p)
		var out flow.Outcome
		op, err := s.Store().GetOperation(context.Background(), "op_fixture_reactivate_suspended")
		if json.Unmarshal(p, &out) != nil || out.Status != tenant.OpFailed || err != nil || op.Cause != "billing failed (fixture)" || op.NeedsAttention {
			t.Errorf("release %s, operation %+v %v", p, op, err)
		}
	}},
}

func stateIs(id string, state tenant.State) func(*testing.T, *stack.Stack, []byte) {
	return func(t *testing.T, s *stack.Stack, _ []byte) {
		if tn := st.Tenant(t, s, id); tn.State != state {
			t.Errorf("%s is %s, want %s", id, tn.State, state)
		}
	}
}

func accessIs(id, access string) func(*testing.T, *stack.Stack, []byte) {
	return func(t *testing.T, s *stack.Stack, _ []byte) {
		if e := st.Entitlements(t, s, id); e.Access != access {
			t.Errorf("%s access %q, want %q", id, e.Access, access)
		}
	}
}

// TestStepFixtures feeds every lifecycle step fixture to its real bootstrap, in flow
// order, on a freshly seeded stack — what `sam local invoke -e` / `make invoke` do.
func TestStepFixtures(t *testing.T) {
	s := st.Shared(t)
	var files []string
	for _, f := range stepFixtures {
		files = append(files, f.file)
	}
	st.CheckListed(t, "lifecycle-*/*.json", files, nil)
	st.PlaySteps(t, s, files, func(t *testing.T, i int, p []byte) { stepFixtures[i].check(t, s, p) })
}
