package purge_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// retired is the DELETED tenant the step fixtures work on (the devstack seed has no
// DELETED tenant; TestStepFixtures creates it).
const retired = "tenant_retired"

// stepFixtures lists every events/purge-*/*.json in the order they run on a stack
// seeded with the example tenants plus tenant_retired: a first purge is claimed and
// released as if its delete had failed, a second one is claimed (keeping the first
// one's inventory), deletes, verifies and finishes; then a sweep finds nothing due.
var stepFixtures = []struct {
	file  string
	check func(t *testing.T, s *stack.Stack, sm *sample, payload []byte)
}{
	{"purge-start/retired.json", func(t *testing.T, s *stack.Stack, _ *sample, _ []byte) {
		tn := st.Tenant(t, s, retired)
		if tn.State != tenant.Deleted || tn.Operation != "op_fixture_purge_retired" || tn.PurgeInventory == nil ||
			tn.PurgeInventory.Counts[tenant.SourceTenantData] != 100 {
			t.Errorf("after start: %s held by %q, inventory %+v", tn.State, tn.Operation, tn.PurgeInventory)
		}
	}},
	{"purge-release/retired.json", func(t *testing.T, s *stack.Stack, _ *sample, p []byte) {
		var out flow.Outcome
		if err := json.Unmarshal(p, &out); err != nil || out.Status != tenant.OpFailed {
			t.Errorf("release outcome %s (%v)", p, err)
		}
		if tn := st.Tenant(t, s, retired); tn.State != tenant.Deleted || tn.Operation != "" {
			t.Errorf("after release: %s held by %q", tn.State, tn.Operation)
		}
		op, err := s.Store().GetOperation(context.Background(), "op_fixture_purge_retired")
		if err != nil || op.Status != tenant.OpFailed || op.Cause != "delete failed (fixture)" || op.NeedsAttention {
			t.Errorf("operation %+v %v", op, err)
		}
	}},
	{"purge-start/retired-again.json", func(t *testing.T, s *stack.Stack, _ *sample, _ []byte) {
		tn := st.Tenant(t, s, retired)
		if tn.Operation != "op_fixture_purge_retired_2" || tn.PurgeInventory == nil || tn.PurgeInventory.OperationID != "op_fixture_purge_retired" {
			t.Errorf("second start: held by %q, inventory %+v (want the first attempt's)", tn.Operation, tn.PurgeInventory)
		}
	}},
	{"purge-delete/retired.json", func(t *testing.T, s *stack.Stack, sm *sample, p []byte) {
		var out purge.Progress
		if err := json.Unmarshal(p, &out); err != nil || out.More || out.Deleted[tenant.SourceTenantData] != 100 || out.Deleted[tenant.SourceExports] != 2 {
			t.Errorf("delete progress %s (%v)", p, err)
		}
		if c := sourceCounts(t, s, sm); c[tenant.SourceTenantData]+c[tenant.SourceExports]+c[tenant.SourceControlPlane]+c[tenant.SourceOperations] != 0 {
			t.Errorf("after delete %v", c)
		}
	}},
	{"purge-verify/retired.json", func(t *testing.T, s *stack.Stack, _ *sample, _ []byte) {
		if c := st.Tenant(t, s, retired).Certificate; c == nil || c.OperationID != "op_fixture_purge_retired_2" || !c.Verify() {
			t.Errorf("certificate %+v", c)
		}
	}},
	{"purge-finish/retired.json", func(t *testing.T, s *stack.Stack, sm *sample, p []byte) {
		var c tenant.DeletionCertificate
		if err := json.Unmarshal(p, &c); err != nil || !c.Verify() {
			t.Errorf("finish answered %s (%v)", p, err)
		}
		checkPurged(t, s, sm, "op_fixture_purge_retired_2", counts{tenant.SourceControlPlane: 2, tenant.SourceOperations: 2, tenant.SourceTenantData: 100, tenant.SourceExports: 2, tenant.SourceStripeCustomer: 1})
	}},
	{"purge-sweep/scheduled.json", func(t *testing.T, _ *stack.Stack, _ *sample, p []byte) {
		var r purge.SweepResult
		if err := json.Unmarshal(p, &r); err != nil || !r.Now.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || r.Read != 0 || len(r.Started) != 0 {
			t.Errorf("sweep result %s (%v)", p, err)
		}
	}},
}

// TestStepFixtures feeds every purge step fixture to its real bootstrap, in flow
// order — what `sam local invoke -e` / `make invoke` do with them once a DELETED
// tenant like tenant_retired exists.
func TestStepFixtures(t *testing.T) {
	var files []string
	for _, f := range stepFixtures {
		files = append(files, f.file)
	}
	st.CheckListed(t, "purge-*/*.json", files, nil)
	s := st.SharedWith(t, stackOptions())
	sm := newSample(t, s, retired, time.Now().Add(-24*time.Hour), 100, 2)
	st.PlaySteps(t, s, files, func(t *testing.T, i int, p []byte) { stepFixtures[i].check(t, s, sm, p) })
}
