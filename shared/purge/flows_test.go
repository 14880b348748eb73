package purge_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestPurgeDeletesEverySourceAndCertifies: a sweep before purge_after purges nothing;
// the sweep after it purges the tenant: every source is empty (read back with the
// plain SDK), the certificate counts what existed, TenantPurged carries it, the
// tombstone holds no personal data, the audit trail keeps its transitions without who
// or reasons, the API serves the certificate, and a neighbour is untouched.
func TestPurgeDeletesEverySourceAndCertifies(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	now := time.Now().UTC()
	sm := newSample(t, s, "purge-one", now.Add(-time.Hour), 120, 3)
	neighbour := newSample(t, s, "purge-neighbour", now.Add(10*24*time.Hour), 40, 2)
	before := sourceCounts(t, s, sm)
	if want := (counts{tenant.SourceControlPlane: 2, tenant.SourceOperations: 2, tenant.SourceTenantData: 120, tenant.SourceExports: 3, tenant.SourceStripeCustomer: 1}); !sameCounts(before, want) {
		t.Fatalf("seeded %v, want %v", before, want)
	}
	neighbourBefore := sourceCounts(t, s, neighbour)

	if r := sweep(t, s, sm.PurgeAfter.Add(-time.Minute)); r.Read != 0 || len(r.Started) != 0 {
		t.Fatalf("sweep before purge_after: %+v", r)
	}
	if got := sourceCounts(t, s, sm); !sameCounts(got, before) {
		t.Fatalf("early sweep changed the sources: %v", got)
	}

	r := sweep(t, s, now)
	if r.Read != 1 || len(r.Started) != 1 || len(r.Failed) != 0 {
		t.Fatalf("sweep after purge_after: %+v", r)
	}
	opID := r.Started[0]
	if st := waitExecution(t, s, opID, 2*time.Minute); st != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s", st)
	}
	cert := checkPurged(t, s, sm, opID, before)
	if op, err := s.Store().GetOperation(context.Background(), opID); err != nil || op.Status != tenant.OpSucceeded || op.Kind != tenant.KindPurge {
		t.Errorf("purge operation %+v %v", op, err)
	}
	evs := purgedEvents(t, s, sm.ID)
	if len(evs) != 1 || evs[0].OperationID != opID || evs[0].Certificate == nil || evs[0].Certificate.SHA256 != cert.SHA256 || !evs[0].Certificate.Verify() {
		t.Fatalf("TenantPurged events %+v, want one carrying certificate %s", evs, cert.SHA256)
	}
	// The app plane learns it too: the last entitlements document, which no other
	// version can follow.
	var docs []tenant.EntitlementsDocument
	for _, e := range st.Published(t, s, sm.ID) {
		var d tenant.EntitlementsDocument
		if e.DetailType == "TenantEntitlementsChanged" && json.Unmarshal(e.Detail, &d) == nil {
			docs = append(docs, d)
		}
	}
	if len(docs) != 1 || docs[0].State != tenant.Purged || docs[0].Version != tenant.PurgedVersion || *docs[0].Limits.Users != 0 {
		t.Fatalf("TenantEntitlementsChanged of the purge %+v, want one PURGED document", docs)
	}
	if got := sourceCounts(t, s, neighbour); !sameCounts(got, neighbourBefore) {
		t.Errorf("neighbour %v, was %v", got, neighbourBefore)
	}
	if st := attr(tenantItem(t, s, neighbour.ID), "state"); st != string(tenant.Deleted) {
		t.Errorf("neighbour is %s", st)
	}

	// The operator route serves the same certificate; a purged tenant is purged once.
	resp := getCertificate(t, s, sm.ID)
	var served tenant.DeletionCertificate
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &served) != nil || served.SHA256 != cert.SHA256 || !served.Verify() {
		t.Errorf("GET deletion-certificate: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := getCertificate(t, s, neighbour.ID); resp.StatusCode != 404 {
		t.Errorf("certificate of a DELETED tenant: %d %s", resp.StatusCode, resp.Body)
	}
	if r := sweep(t, s, now.Add(time.Minute)); r.Read != 0 || len(r.Started) != 0 {
		t.Errorf("sweep after the purge: %+v", r)
	}
	b, _ := json.MarshalIndent(cert, "", "  ")
	t.Logf("certificate:\n%s", b)
}

func getCertificate(t *testing.T, s *stack.Stack, id string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	return st.Call(t, s, st.Event(t, "GET", "/tenants/"+id+"/deletion-certificate", "/tenants/{id}/deletion-certificate", map[string]string{"id": id}, nil, st.Admin))
}

// TestSweepReleasesAnEndedPurge: a purge whose release step kept failing ends with its
// tenant still held; the next sweep releases it (as the release step would have) and
// starts it again, which completes.
func TestSweepReleasesAnEndedPurge(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	now := time.Now().UTC()
	sm := newSample(t, s, "purge-stuck", now.Add(-time.Hour), 30, 1)
	before := sourceCounts(t, s, sm)
	for _, fn := range []string{"PurgeVerifyFunction", "PurgeReleaseFunction"} {
		if err := s.Lambda.InjectFault(fn, -1, "InjectedFault", "injected failure in "+fn); err != nil {
			t.Fatal(err)
		}
	}
	r := sweep(t, s, now)
	if len(r.Started) != 1 {
		t.Fatalf("sweep %+v", r)
	}
	first := r.Started[0]
	if st := waitExecution(t, s, first, 2*time.Minute); st != sfntypes.ExecutionStatusFailed {
		t.Fatalf("execution %s, want FAILED (ReleaseFailed)", st)
	}
	s.Lambda.ClearFaults()
	if tn, _ := s.Store().GetTenant(context.Background(), sm.ID); tn.Operation != first || tn.State != tenant.Deleted {
		t.Fatalf("after a failed release the tenant is %s held by %q, want DELETED held by %s", tn.State, tn.Operation, first)
	}
	r = sweep(t, s, now)
	if !slices.Equal(r.Released, []string{sm.ID}) || len(r.Started) != 1 || r.Read != 1 {
		t.Fatalf("sweep %+v, want %s released and started again", r, sm.ID)
	}
	op, err := s.Store().GetOperation(context.Background(), first)
	if err != nil || op.Status != tenant.OpFailed || op.Error != "ExecutionEnded" || !strings.Contains(op.Cause, "FAILED") {
		t.Errorf("first operation %+v %v", op, err)
	}
	if st := waitExecution(t, s, r.Started[0], 2*time.Minute); st != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("second execution %s", st)
	}
	checkPurged(t, s, sm, r.Started[0], before)
}

// TestStepsRefuse runs the real step bootstraps directly: Start refuses a tenant whose
// retention has not ended (RetentionNotOverError, nothing written), and Verify refuses
// a source that still holds items (NotEmptyError, the name the ASL retries and then
// catches), here the data a claimed tenant still has before any delete ran.
func TestStepsRefuse(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	ctx := context.Background()
	now := time.Now().UTC()
	invoke := func(fn, tenantID, opID string) (string, string) {
		t.Helper()
		raw, _ := json.Marshal(map[string]string{"operation_id": opID, "tenant_id": tenantID, "kind": tenant.KindPurge})
		res, err := s.Lambda.Invoke(ctx, fn, raw)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &e)
		return e.ErrorType, e.ErrorMessage
	}

	early := newSample(t, s, "purge-early", now.Add(2*time.Hour), 5, 1)
	before := tenantItem(t, s, early.ID)
	if typ, msg := invoke("PurgeStartFunction", early.ID, "op_refuse_early"); typ != "RetentionNotOverError" || !strings.Contains(msg, "retained until") {
		t.Errorf("start before purge_after: %s %s", typ, msg)
	}
	version := func(item map[string]dbtypes.AttributeValue) string {
		v, _ := item["version"].(*dbtypes.AttributeValueMemberN)
		if v == nil {
			t.Fatalf("tenant item without a version: %v", item)
		}
		return v.Value
	}
	if after := tenantItem(t, s, early.ID); version(after) != version(before) || attr(after, "operation_id") != "" {
		t.Errorf("a refused start wrote the tenant: %v", after)
	}

	full := newSample(t, s, "purge-full", now.Add(-time.Hour), 5, 1)
	if typ, msg := invoke("PurgeStartFunction", full.ID, "op_refuse_full"); typ != "" {
		t.Fatalf("start: %s %s", typ, msg)
	}
	if typ, msg := invoke("PurgeVerifyFunction", full.ID, "op_refuse_full"); typ != "NotEmptyError" || !strings.Contains(msg, tenant.SourceTenantData) {
		t.Errorf("verify before delete: %s %s", typ, msg)
	}
	if c := st.Tenant(t, s, full.ID).Certificate; c != nil {
		t.Errorf("an unverified purge wrote a certificate: %+v", c)
	}
}
