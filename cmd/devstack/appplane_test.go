package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/shared/apphook"
)

// TestAppPlaneCommand: the settings file the responder reads, written by the command.
func TestAppPlaneCommand(t *testing.T) {
	dir := t.TempDir()
	appplane := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"appplane", "--state-dir", dir}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := appplane(); code != 0 || !strings.Contains(out, "apply=succeed") {
		t.Errorf("defaults: %d %q", code, out)
	}
	if code, out, _ := appplane("--tenant", "t1", "--answer", "fail"); code != 0 || out != "t1\tapply=fail\tundo=succeed\n" {
		t.Errorf("set: %d %q", code, out)
	}
	if code, out, _ := appplane("--tenant", "t2", "--answer", "never", "--undo", "never"); code != 0 || out != "t2\tapply=never\tundo=never\n" {
		t.Errorf("set: %d %q", code, out)
	}
	if code, _, errs := appplane("--tenant", "t1", "--answer", "maybe"); code != 2 || !strings.Contains(errs, "succeed, fail, never") {
		t.Errorf("bad answer: %d %q", code, errs)
	}
	if code, _, _ := appplane("--answer", "fail"); code != 2 {
		t.Errorf("--answer without --tenant: %d", code)
	}
	s, err := readAppPlane(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.choice("t1", apphook.ActionApply) != AnswerFail || s.choice("t1", apphook.ActionUndo) != AnswerSucceed ||
		s.choice("t2", apphook.ActionUndo) != AnswerNever || s.choice("other", apphook.ActionApply) != AnswerSucceed {
		t.Errorf("settings %+v", s)
	}
	if code, out, _ := appplane("--tenant", "t1", "--reset"); code != 0 || out != "t2\tapply=never\tundo=never\n" {
		t.Errorf("reset t1: %d %q", code, out)
	}
	if code, out, _ := appplane("--reset"); code != 0 || !strings.Contains(out, "every tenant") {
		t.Errorf("reset: %d %q", code, out)
	}
}

// TestAppPlaneResponder runs `make dev ARGS=--provisioning-hook`: the sample app plane
// answers each tenant as `devstack appplane` set it, through the real answer route,
// and the upgrades end accordingly: succeed commits, fail and never compensate and ask
// for the undo once.
func TestAppPlaneResponder(t *testing.T) {
	stateDir := t.TempDir()
	logs := &testLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"--tenant", "tenant_techstart", "--answer", "fail"},
		{"--tenant", "tenant_acme", "--answer", "succeed"},
		{"--tenant", "tenant_enterprise", "--answer", "never"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"appplane", "--state-dir", stateDir}, args...), &out, &errb); code != 0 {
			t.Fatalf("appplane %v: %d %s", args, code, errb.String())
		}
	}
	r, err := Serve(ctx, ServeOptions{StateDir: stateDir, Port: 0, RetryIntervalsZero: true, NoSchedules: true, Out: logs,
		ProvisioningHook: true, ProvisioningTimeout: 4 * time.Second})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	defer func() {
		r.Close()
		if t.Failed() && !testing.Verbose() {
			t.Logf("devstack output:\n%s", logs.String())
		}
	}()
	if !strings.Contains(logs.String(), "devstack appplane --tenant") {
		t.Errorf("the quickstart does not tell how to choose the app plane's answers")
	}
	api, admin := r.APIURL, r.OperatorToken
	cases := []struct {
		tenant, from, to string
		status, error    string
		plan             string
		undos            int
		flow             string // upgrade, or reactivate (tenant_suspended, answered as by default)
	}{
		{"tenant_techstart", "free", "starter", "FAILED", apphook.ErrorFailed, "free", 1, "upgrade"},
		{"tenant_acme", "starter", "professional", "SUCCEEDED", "", "professional", 0, "upgrade"},
		{"tenant_enterprise", "professional", "enterprise", "FAILED", "States.", "professional", 1, "upgrade"},
		{"tenant_suspended", "", "professional", "SUCCEEDED", "", "professional", 0, "reactivate"},
	}
	ops := map[string]string{}
	for _, c := range cases {
		res := call(t, "POST", api+"/tenants/"+c.tenant+"/"+c.flow, admin, fmt.Sprintf(`{"plan":%q}`, c.to))
		opID, _ := res.body["operation_id"].(string)
		if res.status != 202 || opID == "" {
			t.Fatalf("%s %s = %d %s", c.flow, c.tenant, res.status, res.raw)
		}
		ops[c.tenant] = opID
	}
	for _, c := range cases {
		var op apiResponse
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			op = call(t, "GET", api+"/operations/"+ops[c.tenant], admin, "")
			if op.body["status"] != "RUNNING" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: operation still running: %s", c.tenant, op.raw)
			}
		}
		errName, _ := op.body["error"].(string)
		if op.body["status"] != c.status || !strings.HasPrefix(errName, c.error) || (c.error == "") != (errName == "") || op.body["needs_attention"] == true {
			t.Errorf("%s: operation %s, want %s %s without needs_attention", c.tenant, op.raw, c.status, c.error)
		}
		if res := call(t, "GET", api+"/tenants/"+c.tenant, admin, ""); res.body["plan"] != c.plan || res.body["state"] != "ACTIVE" {
			t.Errorf("%s after the %s: %s, want ACTIVE on %s", c.tenant, c.flow, res.raw, c.plan)
		}
	}

	// What the app plane was asked, from the lifecycle bus: one apply per tenant, and
	// one undo where the change was compensated.
	evs, err := r.Stack.DrainEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	for _, e := range evs {
		if e.DetailType != apphook.DetailType {
			continue
		}
		var d apphook.Event
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		asked[d.TenantID+"/"+d.Action]++
	}
	for _, c := range cases {
		if asked[c.tenant+"/apply"] != 1 || asked[c.tenant+"/undo"] != c.undos {
			t.Errorf("%s: %d apply and %d undo requests, want 1 and %d", c.tenant, asked[c.tenant+"/apply"], asked[c.tenant+"/undo"], c.undos)
		}
	}
	// The devstack log says what the app plane did.
	log := logs.String()
	for _, want := range []string{
		"[app-plane] tenant_techstart apply upgrade free→starter",
		"answered failed → 200",
		"[app-plane] tenant_acme apply upgrade starter→professional",
		"answered succeeded → 200",
		"not answering (tenant_enterprise is set to never)",
		"[app-plane] tenant_enterprise undo upgrade professional→enterprise",
		"[app-plane] tenant_suspended apply reactivation →professional",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the devstack log has no %q", want)
		}
	}
}
