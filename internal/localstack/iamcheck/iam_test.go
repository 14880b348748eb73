// Package iamcheck holds the IAM wiring test: the policies template.yaml gives each
// function must be exactly what its wiring in shared/app/core implies (Needs.Grants), both
// ways. A missing grant is an AccessDenied (in AWS, and in the local stack, which
// enforces IAM: enforced_test.go); an unused one is privilege a buggy or compromised
// function can use. The test reads the template with devstack's parser and local
// parameters, which is why it lives under cmd/devstack: shared/ must not import
// cmd/devstack.
//
// Only explicit Statement documents are accepted: a SAM policy template or a managed
// policy hides what it grants from this test and from review. What SAM adds to every
// role on its own (CloudWatch Logs, X-Ray for Tracing, sqs:SendMessage for an
// EventInvokeConfig destination) is not in Policies and not part of Needs.
//
// TENANTFLOW_IAM_TEMPLATE=<file> checks that file instead of the repository's
// template.yaml, e.g. an older revision, to see what the test reports on it.
package iamcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/app/core"
)

const templateEnv = "TENANTFLOW_IAM_TEMPLATE"

// loadTemplate loads the template the way the local stack does (stack.LoadTemplate:
// local parameters, region and account), with overrides on top.
func loadTemplate(t *testing.T, overrides map[string]string) *samtemplate.Template {
	t.Helper()
	root := testenv.RepoRoot()
	if path := os.Getenv(templateEnv); path != "" {
		// LoadTemplate reads <root>/template.yaml: give it a root holding a copy.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		root = t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "template.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tpl, err := stack.LoadTemplate(root, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestEveryFunctionHasWiring: a function without Wirings cannot cold-start
// (core.Load exits) and its policies cannot be checked; a wiring without a function
// is stale (renamed or removed function).
func TestEveryFunctionHasWiring(t *testing.T) {
	tpl := loadTemplate(t, nil)
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	inTemplate := map[string]bool{}
	for _, f := range fns {
		inTemplate[f.LogicalID] = true
		if _, ok := core.Wirings[f.LogicalID]; !ok {
			t.Errorf("template.yaml declares %s but core.Wirings (shared/app/core/wiring.go) has no Needs for it", f.LogicalID)
		}
	}
	for _, id := range sortedKeys(core.Wirings) {
		if !inTemplate[id] {
			t.Errorf("core.Wirings has Needs for %s but template.yaml declares no AWS::Serverless::Function %s", id, id)
		}
	}
	// A plain Lambda function's permissions live in an IAM role this test does not read.
	for _, r := range tpl.ResourcesOfType("AWS::Lambda::Function") {
		t.Errorf("template.yaml declares AWS::Lambda::Function %s: the IAM wiring test covers only AWS::Serverless::Function policies", r.LogicalID)
	}
}

// TestPoliciesMatchWiring compares each function's policies with the grants of its
// wiring, with Stripe configured (the local parameters) and then with
// StripeSecretName empty, which turns HasStripeSecret off: that second run catches a
// grant put inside (or left outside) the wrong !If. It reports only what the
// second run finds beyond the first.
func TestPoliciesMatchWiring(t *testing.T) {
	withStripe := loadTemplate(t, nil)
	if !withStripe.Conditions[core.HasStripeSecret] {
		t.Fatalf("the local parameters should make %s true", core.HasStripeSecret)
	}
	noStripe := loadTemplate(t, map[string]string{"StripeSecretName": ""})
	fns, err := withStripe.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		needs, ok := core.Wirings[f.LogicalID]
		if !ok {
			continue // TestEveryFunctionHasWiring reports it
		}
		t.Run(f.LogicalID, func(t *testing.T) {
			got := check(withStripe, f, needs)
			for _, msg := range got {
				t.Error(msg)
			}
			g, err := noStripe.Function(f.LogicalID)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range check(noStripe, g, needs) {
				if !slices.Contains(got, msg) {
					t.Errorf("with StripeSecretName empty (%s false): %s", core.HasStripeSecret, msg)
				}
			}
		})
	}
}

// pair is one action on one resource, as a policy grants it or a wiring needs it,
// with the s3:prefix its Condition limits it to ("" none).
type pair struct{ action, resource, prefix string }

// key compares actions case-insensitively, as IAM does; resources (ARNs) and prefixes
// exactly, so a wildcard resource ("…/index/*") does not cover the ARN a function
// needs, nor a list grant without its prefix condition the one with it: it is
// reported as unused, and the precise grant as missing.
func (p pair) key() pair { return pair{strings.ToLower(p.action), p.resource, p.prefix} }

// where names a pair's resource, with its prefix condition if any.
func (p pair) where() string {
	if p.prefix == "" {
		return p.resource
	}
	return p.resource + " (s3:prefix " + p.prefix + ")"
}

// granted is a pair a policy grants and where (for messages).
type granted struct {
	pair
	from string
}

// check returns what is wrong with function f of tpl given its Needs: policies this
// test cannot read, grants its wiring needs and the template lacks, grants the
// template gives and the wiring never uses, and missing state machine ARN variables.
func check(tpl *samtemplate.Template, f samtemplate.Function, needs core.Needs) []string {
	id := f.LogicalID
	var msgs []string
	fail := func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }

	if _, ok := f.Properties["Role"]; ok {
		fail("%s sets Role, so SAM ignores its Policies: grant through Policies so this test can check them", id)
	}
	have, problems := policyGrants(tpl.Env, f.Policies)
	for _, p := range problems {
		fail("%s %s", id, p)
	}

	want := map[pair]pair{} // key → as Grants spells it
	for _, g := range needs.Grants() {
		if g.Condition != "" {
			on, ok := tpl.Conditions[g.Condition]
			if !ok {
				fail("%s's wiring needs %s under condition %s, which template.yaml does not declare", id, g.Action, g.Condition)
				continue
			}
			if !on {
				continue
			}
		}
		res, err := resolve(tpl, g.Resource)
		if err != nil {
			fail("%s's wiring needs %s on %s, which template.yaml cannot resolve: %v", id, g.Action, g.Resource, err)
			continue
		}
		p := pair{g.Action, res, g.Prefix}
		want[p.key()] = p
	}
	haveKeys := map[pair]bool{}
	for _, g := range have {
		haveKeys[g.key()] = true
	}

	missing := map[string][]string{} // resource → actions
	for k, p := range want {
		if !haveKeys[k] {
			missing[p.where()] = append(missing[p.where()], p.action)
		}
	}
	for _, res := range sortedKeys(missing) {
		actions := missing[res]
		slices.Sort(actions)
		fail("%s calls %s on %s but template.yaml does not grant %s", id, strings.Join(actions, ", "), res, pronoun(actions))
	}

	type place struct{ resource, from string }
	unused := map[place][]string{}
	for _, g := range have {
		if _, ok := want[g.key()]; !ok {
			pl := place{g.where(), g.from}
			if !slices.Contains(unused[pl], g.action) {
				unused[pl] = append(unused[pl], g.action)
			}
		}
	}
	places := make([]place, 0, len(unused))
	for pl := range unused {
		places = append(places, pl)
	}
	slices.SortFunc(places, func(a, b place) int { return strings.Compare(a.resource+" "+a.from, b.resource+" "+b.from) })
	for _, pl := range places {
		actions := unused[pl]
		slices.Sort(actions)
		fail("template.yaml grants %s %s on %s (%s) which its wiring never uses", id, strings.Join(actions, ", "), pl.resource, pl.from)
	}

	msgs = append(msgs, checkEnvironment(tpl, f, needs)...)
	return msgs
}

// checkEnvironment: the function reads the ARN of each state machine it starts or
// describes from core.StateMachineEnv(<machine>) (Deps.StateMachineARN), so the
// template must set it to Ref of that machine; a machine variable its wiring does
// not use is reported too.
func checkEnvironment(tpl *samtemplate.Template, f samtemplate.Function, needs core.Needs) []string {
	var msgs []string
	used := map[string]bool{}
	for _, sm := range needs.Machines() {
		used[sm] = true
		name := core.StateMachineEnv(sm)
		arn, err := resolve(tpl, "${"+sm+"}")
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s's wiring uses state machine %s, which template.yaml cannot resolve: %v", f.LogicalID, sm, err))
			continue
		}
		switch got, ok := f.Environment[name]; {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("%s's wiring uses %s but its Environment does not declare %s: !Ref %s (Deps.StateMachineARN would be empty)", f.LogicalID, sm, name, sm))
		case got != arn:
			msgs = append(msgs, fmt.Sprintf("%s's Environment sets %s to %q, want !Ref %s (%s)", f.LogicalID, name, got, sm, arn))
		}
	}
	var machines []string
	for _, typ := range []string{"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"} {
		for _, r := range tpl.ResourcesOfType(typ) {
			machines = append(machines, r.LogicalID)
		}
	}
	slices.Sort(machines)
	for _, sm := range machines {
		if name := core.StateMachineEnv(sm); !used[sm] && f.Environment[name] != "" {
			msgs = append(msgs, fmt.Sprintf("%s's Environment declares %s which its wiring never uses", f.LogicalID, name))
		}
	}
	return msgs
}

// policyGrants expands a function's resolved Policies into the pairs they grant, with
// what this test cannot accept as problems. SAM accepts one policy or a list.
func policyGrants(env samtemplate.Env, policies any) (out []granted, problems []string) {
	list, ok := policies.([]any)
	if !ok && policies != nil {
		list = []any{policies}
	}
	for i, p := range list {
		at := fmt.Sprintf("Policies[%d]", i)
		switch p := p.(type) {
		case string:
			problems = append(problems, fmt.Sprintf("%s is the managed policy %s, whose grants this test cannot see: write an explicit Statement", at, p))
		case map[string]any:
			if doc, ok := p["Statement"]; ok {
				for k := range p {
					if k != "Statement" && k != "Version" {
						problems = append(problems, fmt.Sprintf("%s has %s beside Statement, which a policy document does not", at, k))
					}
				}
				g, pr := statements(at, doc)
				out, problems = append(out, g...), append(problems, pr...)
				continue
			}
			for _, name := range sortedKeys(p) {
				problems = append(problems, fmt.Sprintf("%s is the SAM policy template %s: only explicit Statement documents are allowed, so every action and resource is visible", at, name))
				g, err := expandPolicyTemplate(env, at, name, p[name])
				if err != nil {
					problems = append(problems, err.Error())
				}
				out = append(out, g...)
			}
		default:
			problems = append(problems, fmt.Sprintf("%s is %T, not a policy", at, p))
		}
	}
	return out, problems
}

// statements expands the Statement of a policy document. Only Allow statements with
// Sid, Action and Resource are accepted, and one Condition: StringLike on s3:prefix,
// which limits a list of the bucket to a prefix and becomes part of each pair. Deny,
// NotAction, NotResource and other conditions change what a grant means in ways a
// pair comparison cannot follow, and no function needs them; a wildcard action grants
// actions no wiring names.
func statements(at string, doc any) (out []granted, problems []string) {
	list, ok := doc.([]any)
	if !ok {
		list = []any{doc}
	}
	for j, s := range list {
		where := fmt.Sprintf("%s.Statement[%d]", at, j)
		st, ok := s.(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is %T, not a statement", where, s))
			continue
		}
		from := where
		if sid, ok := st["Sid"].(string); ok && sid != "" {
			from += " Sid " + sid
		}
		bad := false
		prefix := ""
		for _, k := range sortedKeys(st) {
			switch k {
			case "Sid", "Effect", "Action", "Resource":
			case "Condition":
				p, err := s3Prefix(st[k])
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: Condition %v", from, err))
					bad = true
				}
				prefix = p
			default:
				problems = append(problems, fmt.Sprintf("%s uses %s, which the IAM wiring test does not accept on functions", from, k))
				bad = true
			}
		}
		if effect, _ := st["Effect"].(string); effect != "Allow" {
			problems = append(problems, fmt.Sprintf("%s has Effect %v, want Allow (no Deny is expected on functions)", from, st["Effect"]))
			bad = true
		}
		if bad {
			continue
		}
		actions, err := stringList(st["Action"])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: Action %v", from, err))
			continue
		}
		resources, err := stringList(st["Resource"])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: Resource %v", from, err))
			continue
		}
		for _, a := range actions {
			if strings.Contains(a, "*") {
				problems = append(problems, fmt.Sprintf("%s grants the wildcard action %q: name each action", from, a))
				continue
			}
			for _, r := range resources {
				out = append(out, granted{pair{a, r, prefix}, from})
			}
		}
	}
	return out, problems
}

// s3Prefix reads the one Condition the test accepts, {"StringLike": {"s3:prefix":
// "<prefix>"}} (one value, or a list of one), and returns the prefix.
func s3Prefix(v any) (string, error) {
	cond, ok := v.(map[string]any)
	if !ok || len(cond) != 1 {
		return "", fmt.Errorf("is %v, want only StringLike on s3:prefix", v)
	}
	like, ok := cond["StringLike"].(map[string]any)
	if !ok || len(like) != 1 {
		return "", fmt.Errorf("is %v, want only StringLike on s3:prefix", v)
	}
	values, err := stringList(like["s3:prefix"])
	if err != nil || len(values) != 1 {
		return "", fmt.Errorf("is %v, want StringLike with one s3:prefix", v)
	}
	return values[0], nil
}

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("has %T, not a string", e)
			}
			out = append(out, s)
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, fmt.Errorf("is %v, want a string or a list of strings", v)
}

// samPolicyTemplates are the SAM policy templates this repository's functions used
// (definitions from samtranslator/policy_templates_data/policy_templates.json),
// expanded only so that the report lists what they grant beyond the wiring; they
// fail the test regardless.
var samPolicyTemplates = map[string]struct {
	param     string
	actions   []string
	resources func(e samtemplate.Env, v string) []string
}{
	"DynamoDBCrudPolicy": {"TableName", []string{"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
		"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"}, tableAndIndexes},
	"DynamoDBReadPolicy": {"TableName", []string{"dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"}, tableAndIndexes},
	"EventBridgePutEventsPolicy": {"EventBusName", []string{"events:PutEvents"}, func(e samtemplate.Env, v string) []string {
		return []string{e.ARN("events", "event-bus/"+v)}
	}},
	"StepFunctionsExecutionPolicy": {"StateMachineName", []string{"states:StartExecution"}, func(e samtemplate.Env, v string) []string {
		return []string{e.ARN("states", "stateMachine:"+v)}
	}},
	"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn", []string{"secretsmanager:GetSecretValue"}, func(_ samtemplate.Env, v string) []string {
		return []string{v}
	}},
}

func tableAndIndexes(e samtemplate.Env, table string) []string {
	arn := e.ARN("dynamodb", "table/"+table)
	return []string{arn, arn + "/index/*"}
}

func expandPolicyTemplate(env samtemplate.Env, at, name string, params any) ([]granted, error) {
	def, ok := samPolicyTemplates[name]
	if !ok {
		return nil, fmt.Errorf("%s: what %s grants is unknown to this test", at, name)
	}
	m, _ := params.(map[string]any)
	v, ok := m[def.param].(string)
	if !ok {
		return nil, fmt.Errorf("%s: %s without a string %s", at, name, def.param)
	}
	var out []granted
	for _, a := range def.actions {
		for _, r := range def.resources(env, v) {
			out = append(out, granted{pair{a, r, ""}, at + " " + name})
		}
	}
	return out, nil
}

// subVar is a ${Name} or ${Resource.Attribute} of Fn::Sub.
var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// resolve evaluates a Grant's resource (Fn::Sub syntax) with the template's own
// Ref/GetAtt, as the template's !Sub would.
func resolve(tpl *samtemplate.Template, sub string) (string, error) {
	var first error
	out := subVar.ReplaceAllStringFunc(sub, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-1])
		var v any
		var err error
		if i := strings.IndexByte(name, '.'); i > 0 && !strings.HasPrefix(name, "AWS::") {
			v, err = tpl.GetAtt(name[:i], name[i+1:])
		} else {
			v, err = tpl.Ref(name)
		}
		s, ok := v.(string)
		if err == nil && !ok {
			err = fmt.Errorf("${%s} is %T, not a string", name, v)
		}
		if err != nil {
			if first == nil {
				first = err
			}
			return m
		}
		return s
	})
	return out, first
}

func pronoun(actions []string) string {
	if len(actions) == 1 {
		return "it"
	}
	return "them"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
