package purge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// faultMode is one column of the matrix: {fail before, fail after the handler} x
// {once, always}. "Once" uses errors the ASL retries; "before, always" a final error;
// "after, always" a timeout on every attempt, so the step's side effects happen each
// time and the retries run out.
type faultMode struct {
	name  string
	spec  func(fn string) lambdasvc.FaultSpec
	once  bool
	after bool
}

var faultModes = []faultMode{
	{"before-once", func(fn string) lambdasvc.FaultSpec {
		return lambdasvc.FaultSpec{Function: fn, Count: 1, ErrorType: "Lambda.ServiceException", Message: "injected before " + fn}
	}, true, false},
	{"before-always", func(fn string) lambdasvc.FaultSpec {
		return lambdasvc.FaultSpec{Function: fn, Count: -1, ErrorType: "InjectedFault", Message: "injected before " + fn}
	}, false, false},
	{"after-once", func(fn string) lambdasvc.FaultSpec {
		return lambdasvc.FaultSpec{Function: fn, After: true, Count: 1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + fn}
	}, true, true},
	{"after-always", func(fn string) lambdasvc.FaultSpec {
		return lambdasvc.FaultSpec{Function: fn, After: true, Count: -1, ErrorType: "Sandbox.Timedout", Message: "injected timeout after " + fn}
	}, false, true},
}

var purgeSteps = []string{"PurgeStartFunction", "PurgeDeleteFunction", "PurgeVerifyFunction", "PurgeFinishFunction"}

// TestFaultMatrix fails each purge step before and after its handler, once and
// always. Once: the retry absorbs it and the purge succeeds with one TenantPurged.
// Always: the purge ends FAILED with the injected cause and the tenant is DELETED, held
// by nobody and still due; the next sweep (faults cleared) finishes it, certifying what
// existed before the first attempt. The exception is Finish failing after its handler
// every time: its commit happened on the first call, so the release step answers
// SUCCEEDED and the purge is done.
func TestFaultMatrix(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	run, passed := 0, 0
	for i, step := range purgeSteps {
		for j, mode := range faultModes {
			name := strings.TrimSuffix(strings.TrimPrefix(step, "Purge"), "Function") + "/" + mode.name
			id := fmt.Sprintf("fm-%d-%d", i, j)
			run++
			ok := t.Run(name, func(t *testing.T) {
				defer s.Lambda.ClearFaults()
				now := time.Now().UTC()
				sm := newSample(t, s, id, now.Add(-time.Hour), 30, 1)
				before := sourceCounts(t, s, sm)
				if err := s.Lambda.Inject(mode.spec(step)); err != nil {
					t.Fatal(err)
				}
				r := sweep(t, s, now)
				if len(r.Started) != 1 || len(r.Failed) != 0 {
					t.Fatalf("sweep %+v", r)
				}
				opID := r.Started[0]
				status := waitExecution(t, s, opID, 2*time.Minute)
				s.Lambda.ClearFaults()
				if mode.once || (step == "PurgeFinishFunction" && mode.after) {
					if status != sfntypes.ExecutionStatusSucceeded {
						t.Fatalf("execution %s, want SUCCEEDED", status)
					}
					cert := checkPurged(t, s, sm, opID, before)
					if evs := purgedEvents(t, s, sm.ID); len(evs) != 1 || evs[0].OperationID != opID || evs[0].Certificate.SHA256 != cert.SHA256 {
						t.Errorf("TenantPurged events %+v, want one of %s carrying the committed certificate %s", evs, opID, cert.SHA256)
					}
					return
				}
				if status != sfntypes.ExecutionStatusFailed {
					t.Fatalf("execution %s, want FAILED", status)
				}
				op, err := s.Store().GetOperation(context.Background(), opID)
				wantErr := "InjectedFault"
				if mode.after {
					wantErr = "Sandbox.Timedout"
				}
				if err != nil || op.Status != tenant.OpFailed || op.Error != wantErr || !strings.Contains(op.Cause, step) || op.NeedsAttention {
					t.Errorf("operation %+v %v, want FAILED with %s", op, err, wantErr)
				}
				tn, err := s.Store().GetTenant(context.Background(), sm.ID)
				if err != nil || tn.State != tenant.Deleted || tn.Operation != "" || tn.Attention != "" {
					t.Fatalf("tenant %+v %v, want DELETED held by nobody", tn, err)
				}
				if !stillDue(t, s, sm.ID, now) {
					t.Errorf("%s left the Due index", sm.ID)
				}
				if evs := purgedEvents(t, s, sm.ID); len(evs) != 0 {
					t.Errorf("a failed purge published %+v", evs)
				}
				// Nothing of the tenant was removed that the inventory did not count.
				if tn.PurgeInventory == nil && step != "PurgeStartFunction" {
					t.Errorf("no inventory after %s failed", step)
				} else if tn.PurgeInventory != nil && !sameCounts(counts(tn.PurgeInventory.Counts), before) {
					t.Errorf("inventory %v, want %v", tn.PurgeInventory.Counts, before)
				}
				again := sweep(t, s, now.Add(time.Minute))
				if len(again.Started) != 1 || len(again.Released) != 0 {
					t.Fatalf("later sweep %+v", again)
				}
				if st := waitExecution(t, s, again.Started[0], 2*time.Minute); st != sfntypes.ExecutionStatusSucceeded {
					t.Fatalf("later purge %s", st)
				}
				cert := checkPurged(t, s, sm, again.Started[0], before)
				if evs := purgedEvents(t, s, sm.ID); len(evs) != 1 || evs[0].OperationID != again.Started[0] || evs[0].Certificate.SHA256 != cert.SHA256 {
					t.Errorf("TenantPurged events %+v, want one of %s carrying the committed certificate %s", evs, again.Started[0], cert.SHA256)
				}
			})
			if ok {
				passed++
			}
		}
	}
	t.Logf("purge fault matrix: %d cases run, %d passed", run, passed)
	fmt.Printf("purge fault matrix: %d cases run, %d passed\n", run, passed)
}

// stillDue reports whether the tenant is in the Due index at now.
func stillDue(t *testing.T, s *stack.Stack, id string, now time.Time) bool {
	t.Helper()
	var cursor store.DueCursor
	for {
		page, next, err := s.Store().Due(context.Background(), store.DuePurge, now, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page {
			if tn.ID == id {
				return true
			}
		}
		if next == nil {
			return false
		}
		cursor = next
	}
}

// TestPurgedPublishedOnlyAfterCommit makes Finish's commit impossible from outside: an
// explicit IAM Deny of dynamodb:PutItem on the tenants table for PurgeFinishFunction
// (moto enforces it as AWS would). The purge fails before it commits; no TenantPurged
// may have been published for it. With the Deny removed, the next sweep purges the
// tenant: exactly one certificate is ever published, the committed one.
func TestPurgedPublishedOnlyAfterCommit(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	if !s.Moto.EnforcesIAM {
		t.Fatalf("this test injects its fault as an IAM deny, so it needs IAM enforcement; unset %s=off", stack.IAMEnv)
	}
	now := time.Now().UTC()
	sm := newSample(t, s, "purge-outbox", now.Add(-time.Hour), 10, 1)
	table, err := s.Template.GetAtt("TenantsTable", "Arn")
	if err != nil {
		t.Fatal(err)
	}
	undo := denyIAM(t, s, "PurgeFinishFunction", "dynamodb:PutItem", table.(string))
	r := sweep(t, s, now)
	if len(r.Started) != 1 {
		t.Fatalf("sweep %+v", r)
	}
	first := r.Started[0]
	if got := waitExecution(t, s, first, 2*time.Minute); got != sfntypes.ExecutionStatusFailed {
		t.Fatalf("execution %s, want FAILED (Finish could not commit)", got)
	}
	undo()
	if op, err := s.Store().GetOperation(context.Background(), first); err != nil || op.Status != tenant.OpFailed {
		t.Fatalf("first purge %+v %v, want FAILED", op, err)
	}
	for _, e := range purgedEvents(t, s, sm.ID) {
		t.Errorf("TenantPurged published for operation %s, which never committed (certificate %s)", e.OperationID, e.Certificate.SHA256)
	}
	r = sweep(t, s, now.Add(time.Minute))
	if len(r.Started) != 1 {
		t.Fatalf("second sweep %+v", r)
	}
	if got := waitExecution(t, s, r.Started[0], 2*time.Minute); got != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("second purge %s", got)
	}
	committed := certificateOf(t, tenantItem(t, s, sm.ID))
	shas := map[string]bool{}
	for _, e := range purgedEvents(t, s, sm.ID) {
		shas[e.Certificate.SHA256] = true
		if e.Certificate.SHA256 != committed.SHA256 || e.OperationID != r.Started[0] {
			t.Errorf("TenantPurged of %s carries certificate %s, the committed one is %s of %s", e.OperationID, e.Certificate.SHA256, committed.SHA256, r.Started[0])
		}
	}
	if len(shas) != 1 {
		t.Errorf("%d distinct certificates published, want exactly 1", len(shas))
	}
}

// TestFutureNowCannotPurgeEarly starts a purge by hand with a `now` a day after the
// tenant's purge_after while its retention still runs by the wall clock: Start must
// refuse it (RetentionNotOverError), the tenant stays DELETED with its data.
func TestFutureNowCannotPurgeEarly(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	ctx := context.Background()
	now := time.Now().UTC()
	sm := newSample(t, s, "purge-future", now.Add(2*time.Hour), 5, 1)
	before := sourceCounts(t, s, sm)
	future := sm.PurgeAfter.Add(24 * time.Hour)
	opID := "op_by_hand_future"
	in, _ := json.Marshal(map[string]any{"operation_id": opID, "tenant_id": sm.ID, "kind": tenant.KindPurge, "now": future})
	if _, err := s.SFNClient().StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(s.StateMachines["PurgeStateMachine"]),
		Name: aws.String(opID), Input: aws.String(string(in))}); err != nil {
		t.Fatal(err)
	}
	status := waitExecution(t, s, opID, 2*time.Minute)
	op, err := s.Store().GetOperation(ctx, opID)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := s.Store().GetTenant(ctx, sm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if status != sfntypes.ExecutionStatusFailed || op.Status != tenant.OpFailed || op.Error != "RetentionNotOverError" {
		t.Errorf("execution %s, operation %s %s: want FAILED with RetentionNotOverError (now %s is later than the wall clock)", status, op.Status, op.Error, future.Format(time.RFC3339))
	}
	if tn.State != tenant.Deleted || tn.Operation != "" {
		t.Errorf("tenant %s held by %q, want DELETED and free", tn.State, tn.Operation)
	}
	if got := sourceCounts(t, s, sm); !sameCounts(got, before) {
		t.Errorf("sources %v after a refused purge, want %v", got, before)
	}
}

// denyIAM adds an explicit Deny of action on resource to a function's IAM user in moto
// (the stand-in of its execution role) and returns what removes it again.
func denyIAM(t *testing.T, s *stack.Stack, function, action, resource string) func() {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Deny", "Action": action, "Resource": resource}}})
	name := "test-deny"
	iamCall(t, s, url.Values{"Action": {"PutUserPolicy"}, "UserName": {function}, "PolicyName": {name}, "PolicyDocument": {string(doc)}})
	var once sync.Once
	undo := func() {
		once.Do(func() {
			iamCall(t, s, url.Values{"Action": {"DeleteUserPolicy"}, "UserName": {function}, "PolicyName": {name}})
		})
	}
	t.Cleanup(undo)
	return undo
}

// iamCall sends one IAM Query API request to moto, signed with the admin's key.
func iamCall(t *testing.T, s *stack.Stack, form url.Values) {
	t.Helper()
	form.Set("Version", "2010-05-08")
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, s.Moto.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: s.Moto.Admin.AccessKeyID, SecretAccessKey: s.Moto.Admin.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iam", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("IAM %s: %d %s", form.Get("Action"), resp.StatusCode, b)
	}
}

// TestSweepPublishesWhatFinishCouldNot: Finish commits but cannot publish (an IAM Deny
// of events:PutEvents on PurgeFinishFunction), so the purge ends committed with its
// TenantPurged still pending on the tombstone. A sweep within the grace period leaves
// it to Finish; a later sweep publishes it, once, with the committed certificate, and
// the tombstone leaves the Due index.
func TestSweepPublishesWhatFinishCouldNot(t *testing.T) {
	s := st.SharedWith(t, stackOptions())
	if !s.Moto.EnforcesIAM {
		t.Fatalf("this test injects its fault as an IAM deny, so it needs IAM enforcement; unset %s=off", stack.IAMEnv)
	}
	now := time.Now().UTC()
	sm := newSample(t, s, "purge-relay", now.Add(-time.Hour), 10, 1)
	bus, err := s.Template.GetAtt("LifecycleEventBus", "Arn")
	if err != nil {
		t.Fatal(err)
	}
	undo := denyIAM(t, s, "PurgeFinishFunction", "events:PutEvents", bus.(string))
	r := sweep(t, s, now)
	if len(r.Started) != 1 {
		t.Fatalf("sweep %+v", r)
	}
	opID := r.Started[0]
	if got := waitExecution(t, s, opID, 2*time.Minute); got != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("execution %s, want SUCCEEDED (the commit happened)", got)
	}
	undo()
	item := tenantItem(t, s, sm.ID)
	if attr(item, "state") != string(tenant.Purged) || attr(item, "due_kind") != "PURGED_EVENT" {
		t.Fatalf("tombstone %v, want PURGED with its event pending", item)
	}
	if evs := purgedEvents(t, s, sm.ID); len(evs) != 0 {
		t.Fatalf("published %+v although PutEvents was denied", evs)
	}
	if r := sweep(t, s, now.Add(time.Minute)); len(r.Published) != 0 {
		t.Errorf("a sweep within the grace period published %v", r.Published)
	}
	r = sweep(t, s, now.Add(time.Hour))
	if len(r.Published) != 1 || r.Published[0] != sm.ID || len(r.Failed) != 0 {
		t.Fatalf("later sweep %+v, want %s published", r, sm.ID)
	}
	cert := certificateOf(t, tenantItem(t, s, sm.ID))
	if evs := purgedEvents(t, s, sm.ID); len(evs) != 1 || evs[0].OperationID != opID || evs[0].Certificate.SHA256 != cert.SHA256 {
		t.Errorf("TenantPurged events %+v, want one of %s carrying %s", evs, opID, cert.SHA256)
	}
	if r := sweep(t, s, now.Add(2*time.Hour)); len(r.Published) != 0 {
		t.Errorf("the event was published again: %v", r.Published)
	}
	checkPurged(t, s, sm, opID, counts{tenant.SourceControlPlane: 2, tenant.SourceOperations: 2, tenant.SourceTenantData: 10, tenant.SourceExports: 1, tenant.SourceStripeCustomer: 1})
}
