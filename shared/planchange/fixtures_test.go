package planchange_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/app/reconcileapp"
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/planchange"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// stepFixtures lists every events/<function>/*.json outside events/api in the order they
// run in a fresh seeded stack (the same order works with `make invoke` on a new
// `make dev`), with what each must leave behind.
var stepFixtures = []struct {
	file  string
	check func(t *testing.T, s *stack.Stack, payload []byte)
}{
	{"plan-validate/upgrade-techstart.json", tenantIs("tenant_techstart", tenant.Upgrading, tenant.Free)},
	{"plan-provision/upgrade-techstart.json", entitlementsAre("tenant_techstart", tenant.Starter)},
	{"plan-app-hook/apply-upgrade-techstart.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		id := apphook.RequestID("op_fixture_upgrade_techstart", 0, apphook.ActionApply)
		r, err := s.Store().GetProvisioning(context.Background(), "tenant_techstart", id)
		if err != nil || r.Status != apphook.StatusPending || r.Token != "AQBfixture-task-token-of-the-upgrade-techstart-hook" || !r.Published ||
			r.ToPlan != tenant.Starter || r.TimeoutSeconds != 3600 {
			t.Errorf("provisioning request %+v (%v)", r, err)
		}
	}},
	{"plan-billing/upgrade-techstart.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if pc := priceChanges(s, "sub_tenant_techstart"); !slices.Equal(pc, []string{"price_starter|op_fixture_upgrade_techstart:0:billing"}) {
			t.Errorf("stripe %v", pc)
		}
	}},
	{"plan-commit/upgrade-techstart.json", tenantIs("tenant_techstart", tenant.Active, tenant.Starter)},
	{"plan-validate/downgrade-acme.json", tenantIs("tenant_acme", tenant.Downgrading, tenant.Starter)},
	{"plan-billing/downgrade-acme.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if pc := priceChanges(s, "sub_tenant_acme"); len(pc) != 1 {
			t.Errorf("stripe %v", pc)
		}
	}},
	{"plan-rollback-billing/downgrade-acme.json", func(t *testing.T, s *stack.Stack, _ []byte) {
		if pc := priceChanges(s, "sub_tenant_acme"); len(pc) != 2 || !strings.HasPrefix(pc[1], "price_starter|") {
			t.Errorf("stripe %v", pc)
		}
	}},
	{"plan-rollback-provision/downgrade-acme.json", entitlementsAre("tenant_acme", tenant.Starter)},
	{"plan-release/downgrade-acme.json", func(t *testing.T, s *stack.Stack, p []byte) {
		tenantIs("tenant_acme", tenant.Active, tenant.Starter)(t, s, p)
		op, err := s.Store().GetOperation(context.Background(), "op_fixture_downgrade_acme")
		if err != nil || op.Status != tenant.OpFailed || op.Cause != "provisioning failed (fixture)" || op.NeedsAttention {
			t.Errorf("operation %+v %v", op, err)
		}
		var out flow.Outcome
		if err := json.Unmarshal(p, &out); err != nil || out.Status != tenant.OpFailed {
			t.Errorf("release outcome %s (%v)", p, err)
		}
	}},
	{"reconcile/scheduled.json", func(t *testing.T, _ *stack.Stack, p []byte) {
		var r reconcileapp.Result
		if err := json.Unmarshal(p, &r); err != nil || r.Checked != 0 || len(r.Released) != 0 || r.ExportsChecked != 0 || r.ExportsEnded != 0 || r.ExportsFailed != 0 {
			t.Errorf("reconcile result %s (%v)", p, err)
		}
		var fields map[string]any
		_ = json.Unmarshal(p, &fields)
		for _, k := range []string{"now", "checked", "running", "ended", "released", "failed", "exports_checked", "exports_ended", "exports_failed"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("reconcile result %s has no %q", p, k)
			}
		}
	}},
	{"downgrade-sweep/scheduled.json", func(t *testing.T, _ *stack.Stack, p []byte) {
		var r planchange.SweepResult
		if err := json.Unmarshal(p, &r); err != nil || !r.Now.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || r.Read != 0 {
			t.Errorf("sweep result %s (%v)", p, err)
		}
	}},
}

func tenantIs(id string, state tenant.State, plan tenant.Plan) func(*testing.T, *stack.Stack, []byte) {
	return func(t *testing.T, s *stack.Stack, _ []byte) {
		tn := st.Tenant(t, s, id)
		if tn.State != state || tn.Plan != plan {
			t.Errorf("%s is %s on %s, want %s on %s", id, tn.State, tn.Plan, state, plan)
		}
	}
}

func entitlementsAre(id string, plan tenant.Plan) func(*testing.T, *stack.Stack, []byte) {
	return func(t *testing.T, s *stack.Stack, _ []byte) {
		if e := st.Entitlements(t, s, id); e.Plan != plan {
			t.Errorf("%s entitlements on %s, want %s", id, e.Plan, plan)
		}
	}
}

// TestStepFixtures feeds every step fixture to its real bootstrap, in flow order, on a
// freshly seeded stack — what `sam local invoke -e` / `make invoke` do with them.
func TestStepFixtures(t *testing.T) {
	var files []string
	for _, f := range stepFixtures {
		files = append(files, f.file)
	}
	st.CheckListed(t, "*/*.json", files, func(rel string) bool {
		// events/api/ is shared/httpapi's; events/purge-*/, lifecycle-*/ and export-*/
		// belong to those packages' TestStepFixtures, which run them in their flow
		// order; events/stripe-webhook/ holds Stripe payloads, signed and delivered by
		// the webhook tests.
		for _, owned := range []string{"api/", "purge-", "lifecycle-", "export-", "stripe-webhook/"} {
			if strings.HasPrefix(rel, owned) {
				return true
			}
		}
		return false
	})
	s := st.Shared(t) // freshly reset to the seeded example tenants
	st.PlaySteps(t, s, files, func(t *testing.T, i int, p []byte) { stepFixtures[i].check(t, s, p) })
}
