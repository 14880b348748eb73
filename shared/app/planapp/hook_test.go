package planapp

import (
	"encoding/json"
	"testing"

	"github.com/tenantflow/tenantflow/shared/flow"
)

// TestHookPayloadKeepsTheWholePayload: the hook function reads the operation (and so
// the flow) from the Payload's input, and keeps the Payload whole for the flow's own
// input type.
func TestHookPayloadKeepsTheWholePayload(t *testing.T) {
	raw := `{"input":{"operation_id":"op_1","tenant_id":"t1","kind":"reactivation","plan":"professional","app_hook":{"mode":"eventbridge"}},"action":"apply","task_token":"tok"}`
	var p HookPayload
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if p.FlowRef() != (flow.Ref{OperationID: "op_1", TenantID: "t1", Kind: "reactivation"}) || string(p.raw) != raw {
		t.Errorf("payload %+v %s", p.FlowRef(), p.raw)
	}
	if err := json.Unmarshal([]byte(`{"input":"not an object"}`), &p); err == nil {
		t.Error("an input that is not an object was accepted")
	}
}
