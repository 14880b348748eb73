package export_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// operatorEmail is the subject of an operator token: an identity that must never
// reach a tenant's download.
const operatorEmail = "op-7f3a@example.test"

// TestTenantExportHoldsWhatItsTokenSees: an operator suspends and reactivates
// tenant_acme; the tenant's own export must not name the operator anywhere (GET
// /audit with the tenant's token hides it), its audit and operation lines carry the
// views the API gives that token, and an operation no audit line names (a request
// refused before any transition) is in the export all the same: operations are found
// by tenant.
func TestTenantExportHoldsWhatItsTokenSees(t *testing.T) {
	s := stackFor(t)
	ctx := context.Background()
	operator := map[string]string{"sub": operatorEmail, "scope": "tenants/admin"}
	resp := st.Call(t, s, st.Event(t, "POST", "/tenants/tenant_acme/suspend", "/tenants/{id}/suspend",
		map[string]string{"id": "tenant_acme"}, map[string]string{"reason": "chargeback review"}, operator))
	st.WaitDone(t, s, st.OperationID(t, resp))
	resp = st.Call(t, s, st.Event(t, "POST", "/tenants/tenant_acme/reactivate", "/tenants/{id}/reactivate",
		map[string]string{"id": "tenant_acme"}, map[string]string{"plan": "starter"}, operator))
	st.WaitDone(t, s, st.OperationID(t, resp))

	// An operation of the tenant's own request that never claimed the tenant: no audit
	// line names it.
	unaudited := flow.NewOperationID()
	if _, err := s.Store().CreateOperation(ctx, &tenant.Operation{ID: unaudited, TenantID: "tenant_acme", Kind: tenant.KindUpgrade,
		Status: tenant.OpRunning, FromPlan: tenant.Starter, ToPlan: tenant.Professional, RequestedBy: "user_tenant_acme"}); err != nil {
		t.Fatal(err)
	}

	code, b := request(t, s, "tenant_acme", st.TenantToken("tenant_acme"))
	if code != 202 {
		t.Fatalf("POST exports: %d %v", code, b)
	}
	done := waitCompleted(t, s, "tenant_acme", b["export_id"].(string))
	res, err := http.Get(done["download_url"].(string))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("download: %v %v", err, res)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := gunzip(t, raw)
	if strings.Contains(text, operatorEmail) {
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, operatorEmail) {
				t.Errorf("the tenant's export names the operator: %s", line)
			}
		}
	}

	ops := map[string]map[string]any{}
	audits := 0
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec struct {
			Source string         `json:"source"`
			Data   map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		switch rec.Source {
		case "operations":
			id, _ := rec.Data["operation_id"].(string)
			ops[id] = rec.Data
			for _, hidden := range []string{"requested_by", "cause", "marks", "reason", "previous_state", "compensation_incomplete", "resolution"} {
				if _, ok := rec.Data[hidden]; ok {
					t.Errorf("operation line %s carries %q, which the tenant's token does not see", id, hidden)
				}
			}
		case "audit":
			audits++
			for _, hidden := range []string{"who", "reason"} {
				if v, ok := rec.Data[hidden]; ok && v != "" {
					t.Errorf("audit line carries %q = %v, which the tenant's token does not see", hidden, v)
				}
			}
		}
	}
	if audits < 4 {
		t.Errorf("%d audit lines, want the suspension's and the reactivation's transitions", audits)
	}
	if len(ops) < 3 {
		t.Errorf("%d operation lines (%v), want the suspension, the reactivation and the unaudited request", len(ops), keys(ops))
	}
	if op, ok := ops[unaudited]; !ok || op["status"] != "RUNNING" || op["kind"] != tenant.KindUpgrade {
		t.Errorf("the operation no audit line names is missing or wrong: %v", op)
	}
}

func gunzip(t *testing.T, raw []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		sb.Write(sc.Bytes())
		sb.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func keys(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
