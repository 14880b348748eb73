package iamcheck

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// TestMain stops the stack TestMissingGrantIsAccessDenied starts.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// TestMissingGrantIsAccessDenied proves that the local stack enforces the template's
// IAM: it runs a copy of the template with one grant removed from each of two
// functions, and each function then fails with AccessDenied naming the action and the
// resource, in the function's own error log line, as it would in AWS. The other tests
// here check that the template grants no more than the wiring uses; the end-to-end
// tests, which run with IAM enforced, check that it grants no less.
func TestMissingGrantIsAccessDenied(t *testing.T) {
	// This test is the proof that enforcement bites, so it enforces whatever the
	// environment says for the other tests.
	t.Setenv(stack.IAMEnv, "")
	tpl := loadTemplate(t, nil)
	// The upgrade's steps in order: PlanValidateFunction claims the tenant (all its
	// grants), PlanBillingFunction then needs the Stripe key, and PlanCommitFunction's
	// transaction needs dynamodb:PutItem for its audit record.
	dropAction(t, tpl.Resources["PlanBillingFunction"].Properties, "secretsmanager:GetSecretValue")
	dropAction(t, tpl.Resources["PlanCommitFunction"].Properties, "dynamodb:PutItem")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	s, err := stack.Start(ctx, stack.Options{Template: tpl, Log: logs, RetryIntervalsZero: true})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	testenv.OnStop(s.Close)
	if err := s.Seed(ctx, false); err != nil {
		t.Fatal(err)
	}

	table, err := tpl.GetAtt("TenantsTable", "Arn")
	if err != nil {
		t.Fatal(err)
	}
	secret := "arn:aws:secretsmanager:" + testenv.Region + ":" + testenv.AccountID + ":secret:" + stack.LocalParams["StripeSecretName"]
	claim, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "plan-validate", "upgrade-techstart.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Lambda.Invoke(ctx, "PlanValidateFunction", claim); err != nil || res.Err() != nil {
		t.Fatalf("claim the tenant: %v %v", err, res.Err())
	}
	for _, c := range []struct {
		function, event, action, resource string
	}{
		{"PlanBillingFunction", "plan-billing/upgrade-techstart.json", "secretsmanager:GetSecretValue", secret},
		{"PlanCommitFunction", "plan-commit/upgrade-techstart.json", "dynamodb:PutItem", table.(string)},
	} {
		t.Run(c.function, func(t *testing.T) {
			payload, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", c.event))
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Lambda.Invoke(ctx, c.function, payload)
			if err != nil {
				t.Fatal(err)
			}
			denial := "is not authorized to perform: " + c.action + " on resource: " + c.resource
			fe := res.Err()
			if fe == nil {
				t.Fatalf("%s succeeded without %s: %s", c.function, c.action, res.Payload)
			}
			t.Logf("%s: %v", c.function, fe)
			// The function's output reaches the log a moment after its answer.
			var line string
			for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.HasPrefix(l, "["+c.function+"]") && strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, denial) {
						line = l
					}
				}
			}
			if line == "" {
				t.Errorf("no ERROR log line of %s says %q; its log:\n%s", c.function, denial, grep(logs.String(), "["+c.function+"]"))
			}
			t.Logf("log: %s", line)
			// A denial at cold start ends the process, and Lambda answers only
			// Runtime.ExitError; the log line above carries the reason then.
			if !strings.Contains(fe.Error(), denial) && !strings.HasPrefix(fe.Error(), "Runtime.ExitError") {
				t.Errorf("the function's error does not say %q", denial)
			}
			if strings.Contains(fe.Error(), "TransientError") {
				t.Errorf("AccessDenied was classified transient (the state machine would retry it): %v", fe)
			}
		})
	}
}

// dropAction removes action from every Allow statement of a function's resolved
// Policies, and a statement left without actions, the way one would edit it out of
// template.yaml. It fails when the function has no such grant, so the test notices a
// template change that makes it vacuous.
func dropAction(t *testing.T, props map[string]any, action string) {
	t.Helper()
	policies, _ := props["Policies"].([]any)
	found := false
	var kept []any
	for _, p := range policies {
		doc, ok := p.(map[string]any)
		if !ok {
			kept = append(kept, p)
			continue
		}
		stmts, _ := doc["Statement"].([]any)
		var keep []any
		for _, s := range stmts {
			st, _ := s.(map[string]any)
			actions, _ := stringList(st["Action"])
			if i := slices.Index(actions, action); i >= 0 {
				found = true
				actions = slices.Delete(actions, i, i+1)
				if len(actions) == 0 {
					continue
				}
				list := make([]any, len(actions))
				for j, a := range actions {
					list[j] = a
				}
				st["Action"] = list
			}
			keep = append(keep, s)
		}
		if len(keep) > 0 {
			doc["Statement"] = keep
			kept = append(kept, doc)
		}
	}
	if !found {
		t.Fatalf("the template grants no %s to this function any more: pick another grant to remove", action)
	}
	props["Policies"] = kept
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// syncBuffer collects the stack's log output, written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
