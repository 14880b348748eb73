package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// RolePolicies are the policies SAM gives one resource's execution role: its
// Policies with every SAM policy template expanded into statements and every managed
// policy name turned into an ARN, exactly as aws-sam-translator does on deploy.
type RolePolicies struct {
	Inline  []testenv.InlinePolicy `json:"inline"`
	Managed []string               `json:"managed"`
}

// ExpandPolicies returns the role policies of every function and state machine of
// tpl, by logical ID. The expansion is aws-sam-translator's own (tools/sam_policies.py
// in the pinned venv); it costs a Python start and a second of imports, so the result
// is cached by its input and the script.
func ExpandPolicies(ctx context.Context, root string, tpl *samtemplate.Template) (map[string]RolePolicies, error) {
	type resource struct {
		Type     string `json:"type"`
		Policies []any  `json:"policies"`
	}
	in := struct {
		Partition string              `json:"partition"`
		Region    string              `json:"region"`
		AccountID string              `json:"account_id"`
		Resources map[string]resource `json:"resources"`
	}{tpl.Env.Partition, tpl.Env.Region, tpl.Env.AccountID, map[string]resource{}}
	fns, err := tpl.Functions()
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		in.Resources[f.LogicalID] = resource{"AWS::Serverless::Function", policyList(f.Policies)}
	}
	sms, err := tpl.StateMachines()
	if err != nil {
		return nil, err
	}
	for _, sm := range sms {
		in.Resources[sm.LogicalID] = resource{"AWS::Serverless::StateMachine", policyList(sm.Policies)}
	}
	input, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("expand policies: %w", err)
	}
	script := filepath.Join(root, "tools", "sam_policies.py")
	code, err := os.ReadFile(script)
	if err != nil {
		return nil, fmt.Errorf("expand policies: %w", err)
	}
	// The translator's version is part of the key: a new one may expand differently.
	translator, _ := filepath.Glob(filepath.Join(testenv.ToolsDir(), "venv", "lib", "python*", "site-packages", "aws_sam_translator-*.dist-info"))
	sum := sha256.New()
	for _, part := range [][]byte{input, code, []byte(fmt.Sprint(translator))} {
		sum.Write(part)
		sum.Write([]byte{0})
	}
	cache := filepath.Join(testenv.ToolsDir(), "cache", "sam-policies-"+hex.EncodeToString(sum.Sum(nil))[:24]+".json")
	out, err := os.ReadFile(cache)
	if err != nil {
		py, err := testenv.Tool("venv/bin/python")
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, py, script)
		cmd.Stdin = bytes.NewReader(input)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err = cmd.Output(); err != nil {
			return nil, fmt.Errorf("expand policies with %s: %w: %s", script, err, bytes.TrimSpace(stderr.Bytes()))
		}
		// A failed write only costs the next start the Python run.
		if os.MkdirAll(filepath.Dir(cache), 0o755) == nil {
			tmp := fmt.Sprintf("%s.%d", cache, os.Getpid())
			if os.WriteFile(tmp, out, 0o644) == nil {
				_ = os.Rename(tmp, cache)
			}
		}
	}
	var policies map[string]RolePolicies
	if err := json.Unmarshal(out, &policies); err != nil {
		return nil, fmt.Errorf("expand policies: %s printed %w", script, err)
	}
	return policies, nil
}

// policyList returns a resolved Policies property as SAM reads it: one policy or a
// list, without the entries an !If resolved to AWS::NoValue.
func policyList(v any) []any {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return []any{}
		}
		list = []any{v}
	}
	out := []any{}
	for _, p := range list {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// functionUsers returns one IAM user per function, named by its logical ID, with its
// role's policies and fresh credentials: what moto checks each bootstrap's calls
// against.
func functionUsers(fns []samtemplate.Function, policies map[string]RolePolicies) ([]testenv.IAMUser, error) {
	var users []testenv.IAMUser
	for _, f := range fns {
		p, ok := policies[f.LogicalID]
		if !ok {
			return nil, fmt.Errorf("expand policies: no result for %s", f.LogicalID)
		}
		creds, err := testenv.NewCredentials()
		if err != nil {
			return nil, err
		}
		users = append(users, testenv.IAMUser{Name: f.LogicalID, Credentials: creds, Inline: p.Inline, Managed: p.Managed})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	return users, nil
}
