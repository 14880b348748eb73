package loadgen

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestModelAnswers(t *testing.T) {
	c := tenant.DefaultCatalog()
	small := tenant.Usage{Users: 2, StorageGB: 0.5, APICallsPerMonth: 5_000}
	big := tenant.Usage{Users: 40, StorageGB: 70, APICallsPerMonth: 500_000}
	for _, tc := range []struct {
		m    Model
		req  Request
		want int
	}{
		{Model{tenant.Active, tenant.Free, small}, Request{Upgrade, tenant.Starter}, 202},
		{Model{tenant.Active, tenant.Starter, small}, Request{Upgrade, tenant.Starter}, 422},
		{Model{tenant.Active, tenant.Starter, small}, Request{Upgrade, tenant.Free}, 422},
		{Model{tenant.Suspended, tenant.Free, small}, Request{Upgrade, tenant.Enterprise}, 409},
		{Model{tenant.Active, tenant.Professional, small}, Request{Downgrade, tenant.Free}, 202},
		{Model{tenant.Active, tenant.Professional, big}, Request{Downgrade, tenant.Starter}, 422},
		{Model{tenant.Deleted, tenant.Professional, small}, Request{Downgrade, tenant.Free}, 409},
		{Model{tenant.Active, tenant.Free, small}, Request{Kind: Suspend}, 202},
		{Model{tenant.Suspended, tenant.Free, small}, Request{Kind: Suspend}, 409},
		{Model{tenant.Suspended, tenant.Free, small}, Request{Reactivate, tenant.Enterprise}, 202},
		{Model{tenant.Deleted, tenant.Free, big}, Request{Reactivate, tenant.Free}, 422},
		{Model{tenant.Deleted, tenant.Free, big}, Request{Reactivate, tenant.Professional}, 202},
		{Model{tenant.Suspended, tenant.Professional, big}, Request{Reactivate, tenant.Starter}, 422},
		{Model{tenant.Active, tenant.Free, small}, Request{Reactivate, tenant.Free}, 409},
		{Model{tenant.Suspended, tenant.Free, small}, Request{Kind: Delete}, 202},
		{Model{tenant.Deleted, tenant.Free, small}, Request{Kind: Delete}, 409},
		{Model{tenant.Deleted, tenant.Free, small}, Request{Kind: Export}, 202},
	} {
		if got := tc.m.Answer(c, tc.req); got != tc.want {
			t.Errorf("%+v %s: %d, want %d", tc.m, tc.req, got, tc.want)
		}
	}
}

func TestModelAfterAndTransitions(t *testing.T) {
	act := Model{State: tenant.Active, Plan: tenant.Starter}
	sus := Model{State: tenant.Suspended, Plan: tenant.Starter}
	del := Model{State: tenant.Deleted, Plan: tenant.Starter}
	for _, tc := range []struct {
		m         Model
		req       Request
		ok, claim bool
		attempts  int
		after     Model
		trans     []string
	}{
		{act, Request{Upgrade, tenant.Enterprise}, true, true, 1, Model{State: tenant.Active, Plan: tenant.Enterprise}, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}},
		{act, Request{Upgrade, tenant.Enterprise}, false, true, 2, act, []string{"ACTIVE->UPGRADING", "UPGRADING->ACTIVE", "ACTIVE->UPGRADING", "UPGRADING->ACTIVE"}},
		{act, Request{Upgrade, tenant.Enterprise}, false, false, 1, act, nil},
		{act, Request{Kind: Suspend}, true, true, 1, sus, []string{"ACTIVE->SUSPENDED"}},
		{act, Request{Kind: Suspend}, false, true, 2, sus, []string{"ACTIVE->SUSPENDED"}},
		{act, Request{Kind: Suspend}, false, false, 1, act, nil},
		{sus, Request{Kind: Delete}, true, true, 1, Model{State: tenant.Deleted, Plan: tenant.Starter}, []string{"SUSPENDED->DELETING", "DELETING->DELETED"}},
		{sus, Request{Kind: Delete}, false, true, 1, sus, []string{"SUSPENDED->DELETING", "DELETING->SUSPENDED"}},
		{del, Request{Reactivate, tenant.Free}, true, true, 1, Model{State: tenant.Active, Plan: tenant.Free}, []string{"DELETED->REACTIVATING", "REACTIVATING->ACTIVE"}},
		{del, Request{Reactivate, tenant.Free}, false, true, 1, del, []string{"DELETED->REACTIVATING", "REACTIVATING->DELETED"}},
	} {
		if got := tc.m.After(tc.req, tc.ok, tc.claim); got != tc.after {
			t.Errorf("%+v %s ok=%v claimed=%v: after %+v, want %+v", tc.m, tc.req, tc.ok, tc.claim, got, tc.after)
		}
		if !tc.claim {
			continue
		}
		if got := tc.m.Transitions(tc.req, tc.ok, tc.attempts); !slices.Equal(got, tc.trans) {
			t.Errorf("%+v %s ok=%v: transitions %v, want %v", tc.m, tc.req, tc.ok, got, tc.trans)
		}
	}
}

// TestPick: without the invalid share every pick starts a flow, and a long walk
// through the model reaches every kind and every resting state.
func TestPick(t *testing.T) {
	c := tenant.DefaultCatalog()
	r := rand.New(rand.NewPCG(1, 2))
	kinds, states := map[Kind]int{}, map[tenant.State]int{}
	for i := range 50 {
		m, err := newModel(c, r)
		if err != nil {
			t.Fatal(err)
		}
		for range 40 {
			req := m.Pick(c, r, 0, DefaultMix)
			if got := m.Answer(c, req); got != http.StatusAccepted {
				t.Fatalf("tenant %d: picked %s on %+v, answered %d", i, req, m, got)
			}
			kinds[req.Kind]++
			m = m.After(req, true, true)
			states[m.State]++
		}
	}
	for _, k := range Kinds {
		if kinds[k] == 0 {
			t.Errorf("never picked %s: %v", k, kinds)
		}
	}
	for _, s := range []tenant.State{tenant.Active, tenant.Suspended, tenant.Deleted} {
		if states[s] == 0 {
			t.Errorf("never reached %s: %v", s, states)
		}
	}
	// The same stream picks the same requests.
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	m := Model{State: tenant.Active, Plan: tenant.Starter}
	for range 100 {
		if x, y := m.Pick(c, a, 0.1, DefaultMix), m.Pick(c, b, 0.1, DefaultMix); x != y {
			t.Fatalf("same seed, %s and %s", x, y)
		}
	}
}
