package purge_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

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
				before := sourceCounts(t, s, sm.ID, sm.Ops)
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
					checkPurged(t, s, sm, opID, before)
					if evs := purgedEvents(t, s, sm.ID); len(evs) != 1 || evs[0].OperationID != opID {
						t.Errorf("TenantPurged events %+v, want one of %s", evs, opID)
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
				} else if tn.PurgeInventory != nil && !maps.Equal(counts(tn.PurgeInventory.Counts), before) {
					t.Errorf("inventory %v, want %v", tn.PurgeInventory.Counts, before)
				}
				again := sweep(t, s, now.Add(time.Minute))
				if len(again.Started) != 1 || len(again.Released) != 0 {
					t.Fatalf("later sweep %+v", again)
				}
				if st := waitExecution(t, s, again.Started[0], 2*time.Minute); st != sfntypes.ExecutionStatusSucceeded {
					t.Fatalf("later purge %s", st)
				}
				checkPurged(t, s, sm, again.Started[0], before)
				if evs := purgedEvents(t, s, sm.ID); len(evs) != 1 || evs[0].OperationID != again.Started[0] {
					t.Errorf("TenantPurged events %+v, want one of %s", evs, again.Started[0])
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
