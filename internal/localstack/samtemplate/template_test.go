package samtemplate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func loadAll(t *testing.T, opts Options) *Template {
	t.Helper()
	tpl, err := Load("testdata/all.yaml", opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tpl
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   map[string]bool
	}{
		{"defaults", nil, map[string]bool{
			"IsProd": false, "IsDev": true, "HasStripe": false, "DevOrStripe": true,
			"DevAndNoStripe": true, "LongEquals": true,
		}},
		{"dev with stripe", map[string]string{"StripeKey": "sk_test"}, map[string]bool{
			"IsProd": false, "IsDev": true, "HasStripe": true, "DevOrStripe": true,
			"DevAndNoStripe": false, "LongEquals": true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl := loadAll(t, Options{Params: tt.params})
			if !reflect.DeepEqual(tpl.Conditions, tt.want) {
				t.Errorf("Conditions = %v, want %v", tpl.Conditions, tt.want)
			}
		})
	}

	tpl := loadAll(t, Options{Region: "eu-west-1"})
	if tpl.Conditions["LongEquals"] {
		t.Error("LongEquals should be false outside us-east-1")
	}
}

func TestFunctionEnvironmentResolvesEveryIntrinsic(t *testing.T) {
	tpl := loadAll(t, Options{})
	f, err := tpl.Function("ApiFunction")
	if err != nil {
		t.Fatal(err)
	}
	const acct, region = DefaultAccountID, DefaultRegion
	want := map[string]string{
		// Globals, merged key by key; the function wins for SHARED.
		"LOG_LEVEL":  "info",
		"TABLE_NAME": "devstack-tenants",
		"SHARED":     "from-function",
		// Ref / GetAtt through the DefaultResolver.
		"UPGRADE_ARN":  "arn:aws:states:us-east-1:123456789012:stateMachine:UpgradeStateMachine",
		"BUS":          "tenant-lifecycle",
		"BUS_ARN":      "arn:aws:events:us-east-1:123456789012:event-bus/tenant-lifecycle",
		"BUCKET":       "exportbucket",
		"NAMED_BUCKET": "exports-" + acct + "-" + region,
		"BUCKET_ARN":   "arn:aws:s3:::exportbucket",
		"TABLE_ARN":    "arn:aws:dynamodb:us-east-1:123456789012:table/devstack-tenants",
		"STREAM_ARN":   "arn:aws:dynamodb:us-east-1:123456789012:table/devstack-tenants/stream/" + streamLabel,
		"LOG_GROUP":    "/aws/tenantflow/api",
		"FUNC_NAME":    "WorkerFunction",
		"ROLE_ARN":     "arn:aws:iam::123456789012:role/ApiFunctionRole",
		// Sub: resource attribute, pseudo parameters, ${!Literal}, parameter.
		"SELF_SUB": "arn arn:aws:lambda:us-east-1:123456789012:function:WorkerFunction in us-east-1/aws/amazonaws.com ${Literal} dev",
		// Sub with a variable map (values are intrinsics themselves).
		"SUB_VARS":     "subnet-b-3-" + acct,
		"LONG_SUB":     "tenant-lifecycle/30",
		"LONG_SELECT":  "a",
		"LONG_JOIN":    "x:dev:exportbucket.s3.amazonaws.com",
		"LONG_IF":      "virginia",
		"SPLIT_SELECT": "c",
		"B64":          "aGVsbG8=",
		"AZ":           "us-east-1a",
		// Conditions through Fn::If; AWS::NoValue removes OPTIONAL entirely.
		"STRIPE_SECRET": "none",
		"DEV_OR_STRIPE": "yes",
		"DEV_NO_STRIPE": "yes",
		// Non-string scalars become their string form.
		"NUMBER":        "42",
		"BOOL":          "true",
		"IMPLICIT_API":  "https://ServerlessHttpApi.execute-api.us-east-1.amazonaws.com",
		"EQUALS_INLINE": "dev-30",
	}
	for k, v := range want {
		if got, ok := f.Environment[k]; !ok || got != v {
			t.Errorf("Environment[%s] = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for k := range f.Environment {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected Environment[%s] = %q", k, f.Environment[k])
		}
	}
}

func TestFunctionsGlobalsMerge(t *testing.T) {
	tpl := loadAll(t, Options{})
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fns {
		ids = append(ids, f.LogicalID)
	}
	// ProdOnlyFunction's condition is false: it does not exist, and its
	// Fn::ImportValue is never resolved.
	if want := []string{"ApiFunction", "WorkerFunction"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("functions = %v, want %v", ids, want)
	}
	if !reflect.DeepEqual(tpl.Excluded, []string{"ProdOnlyFunction", "StripeSecret"}) {
		t.Errorf("Excluded = %v", tpl.Excluded)
	}
	api, worker := fns[0], fns[1]

	checks := []struct {
		name      string
		got, want any
	}{
		{"api name", api.Name, "ApiFunction"},
		{"api arn", api.ARN, "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"},
		{"api runtime (global)", api.Runtime, "provided.al2023"},
		{"api handler (global)", api.Handler, "bootstrap"},
		{"api timeout (function wins)", api.Timeout, 25},
		{"api memory (global)", api.MemorySize, 256},
		{"api arch (global)", api.Architectures, []string{"arm64"}},
		{"api code", api.CodeURI, "."},
		{"api build", api.BuildMethod, "makefile"},
		{"worker timeout (global)", worker.Timeout, 10},
		// SAM concatenates lists from Globals and the resource.
		{"worker arch", worker.Architectures, []string{"arm64", "x86_64"}},
		{"worker env", worker.Environment, map[string]string{
			"LOG_LEVEL": "info", "TABLE_NAME": "devstack-tenants", "SHARED": "from-globals", "EXTRA": "worker",
		}},
		{"worker code", worker.CodeURI, "functions/worker"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	// Policies keep their structure, with intrinsics resolved, including a key named
	// Condition inside an IAM statement (ordinary data, not an intrinsic).
	pol, _ := json.Marshal(api.Policies)
	for _, s := range []string{`"TableName":"devstack-tenants"`, `"aws:RequestedRegion":"us-east-1"`, `"Resource":"arn:aws:events:us-east-1:123456789012:event-bus/tenant-lifecycle"`} {
		if !strings.Contains(string(pol), s) {
			t.Errorf("Policies %s lacks %s", pol, s)
		}
	}

	// The table's StreamSpecification is removed by AWS::NoValue in dev.
	table := tpl.Resources["TenantsTable"]
	if _, ok := table.Properties["StreamSpecification"]; ok {
		t.Errorf("StreamSpecification should be removed: %v", table.Properties)
	}
	if table.Properties["TableName"] != "devstack-tenants" {
		t.Errorf("TableName = %v", table.Properties["TableName"])
	}
}

func TestEvents(t *testing.T) {
	tpl := loadAll(t, Options{})
	api, err := tpl.Function("ApiFunction")
	if err != nil {
		t.Fatal(err)
	}
	worker, err := tpl.Function("WorkerFunction")
	if err != nil {
		t.Fatal(err)
	}
	type route struct {
		method, path string
		ok           bool
	}
	var routes []route
	for _, e := range api.Events {
		m, p, ok := e.HttpRoute()
		routes = append(routes, route{m, p, ok})
		if _, ok := e.Schedule(); ok {
			t.Errorf("HttpApi event %s has a schedule", e.Name)
		}
	}
	want := []route{{"ANY", "$default", true}, {"GET", "/tenants/{id}", true}} // sorted: CatchAll, GetTenant
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("routes = %v, want %v", routes, want)
	}
	if api.Events[1].Properties["ApiId"] != "HttpApi" {
		t.Errorf("ApiId = %v", api.Events[1].Properties["ApiId"])
	}
	var scheds []string
	for _, e := range worker.Events {
		s, ok := e.Schedule()
		if !ok {
			t.Errorf("event %s (%s) has no schedule", e.Name, e.Type)
		}
		if _, _, ok := e.HttpRoute(); ok {
			t.Errorf("schedule event %s has a route", e.Name)
		}
		scheds = append(scheds, s)
	}
	if want := []string{"rate(1 day)", "cron(0 3 * * ? *)"}; !reflect.DeepEqual(scheds, want) {
		t.Errorf("schedules = %v, want %v", scheds, want)
	}
	if worker.Events[1].Properties["Input"] != `{"kind":"sweep"}` {
		t.Errorf("Input = %v", worker.Events[1].Properties["Input"])
	}
}

func TestStateMachines(t *testing.T) {
	tpl := loadAll(t, Options{Region: "eu-central-1", AccountID: "000000000000", StackName: "tf"})
	sms, err := tpl.StateMachines()
	if err != nil {
		t.Fatal(err)
	}
	if len(sms) != 2 {
		t.Fatalf("got %d state machines", len(sms))
	}
	inline, upgrade := sms[0], sms[1]
	if upgrade.ARN != "arn:aws:states:eu-central-1:000000000000:stateMachine:UpgradeStateMachine" || upgrade.Name != "UpgradeStateMachine" {
		t.Errorf("ARN/Name = %s %s", upgrade.ARN, upgrade.Name)
	}
	if upgrade.Type != "STANDARD" || inline.Type != "EXPRESS" {
		t.Errorf("types = %s %s", upgrade.Type, inline.Type)
	}
	wantSubs := map[string]string{
		"WorkerArn": "arn:aws:lambda:eu-central-1:000000000000:function:WorkerFunction",
		"TableName": "tf-tenants",
		"BusName":   "tenant-lifecycle",
	}
	if !reflect.DeepEqual(upgrade.DefinitionSubstitutions, wantSubs) {
		t.Errorf("substitutions = %v", upgrade.DefinitionSubstitutions)
	}
	if upgrade.DefinitionPath != filepath.Join("testdata", "statemachines", "upgrade.asl.json") {
		t.Errorf("DefinitionPath = %s", upgrade.DefinitionPath)
	}
	for _, sm := range sms {
		def, err := sm.Render()
		if err != nil {
			t.Fatalf("Render %s: %v", sm.LogicalID, err)
		}
		if strings.Contains(string(def), "${") || !strings.Contains(string(def), wantSubs["WorkerArn"]) {
			t.Errorf("Render %s = %s", sm.LogicalID, def)
		}
	}

	// A placeholder without a substitution is reported, not left for run time.
	upgrade.DefinitionSubstitutions = map[string]string{"WorkerArn": "x"}
	if _, err := upgrade.Render(); err == nil || !strings.Contains(err.Error(), "BusName, TableName") && !strings.Contains(err.Error(), "TableName, BusName") {
		t.Errorf("Render with missing substitutions: %v", err)
	}
}

func TestOutputsAndLookups(t *testing.T) {
	tpl := loadAll(t, Options{StackName: "tf"})
	outs, err := tpl.Outputs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Output{
		"ApiUrl":    {Value: "https://ServerlessHttpApi.execute-api.us-east-1.amazonaws.com"},
		"TableName": {Value: "tf-tenants", ExportName: "tf-TableName"},
	}
	if !reflect.DeepEqual(outs, want) {
		t.Errorf("Outputs = %#v", outs)
	}
	if v, err := tpl.Ref("TenantsTable"); err != nil || v != "tf-tenants" {
		t.Errorf("Ref = %v %v", v, err)
	}
	if v, err := tpl.GetAtt("NamedBucket", "Arn"); err != nil || v != "arn:aws:s3:::exports-123456789012-us-east-1" {
		t.Errorf("GetAtt = %v %v", v, err)
	}
	if v, err := tpl.Ref("Subnets"); err != nil || !reflect.DeepEqual(v, []any{"subnet-a", "subnet-b", "subnet-c"}) {
		t.Errorf("Ref list param = %v %v", v, err)
	}
	if p := tpl.Parameters["RetentionDays"]; p.Value != "30" || p.Type != "Number" {
		t.Errorf("param = %+v", p)
	}
	if got := tpl.ResourcesOfType("AWS::S3::Bucket"); len(got) != 2 || got[0].LogicalID != "ExportBucket" {
		t.Errorf("ResourcesOfType = %+v", got)
	}
	if tpl.Description == "" || !reflect.DeepEqual(tpl.Transform, []string{"AWS::Serverless-2016-10-31"}) {
		t.Errorf("Description/Transform = %q %v", tpl.Description, tpl.Transform)
	}
}

func TestPartitionFromRegion(t *testing.T) {
	tpl := loadAll(t, Options{Region: "cn-north-1"})
	v, err := tpl.GetAtt("WorkerFunction", "Arn")
	if err != nil || v != "arn:aws-cn:lambda:cn-north-1:123456789012:function:WorkerFunction" {
		t.Errorf("GetAtt = %v %v", v, err)
	}
	if tpl.Env.URLSuffix != "amazonaws.com.cn" {
		t.Errorf("URLSuffix = %s", tpl.Env.URLSuffix)
	}
}

// TestUnsupportedIntrinsic proves that an intrinsic devstack cannot evaluate fails
// Load with its name and position instead of producing a wrong value.
func TestUnsupportedIntrinsic(t *testing.T) {
	// The real fixture: making ProdOnlyFunction exist reaches its Fn::ImportValue.
	_, err := Load("testdata/all.yaml", Options{Params: map[string]string{"Stage": "prod"}})
	name, ok := IsUnsupportedIntrinsic(err)
	if !ok || name != "Fn::ImportValue" {
		t.Fatalf("err = %v, want unsupported Fn::ImportValue", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "testdata/all.yaml" || e.Line == 0 ||
		e.Path != "Resources.ProdOnlyFunction.Properties.Environment.Variables.X" {
		t.Fatalf("error lacks position: %#v", e)
	}
	if !strings.Contains(err.Error(), "Fn::ImportValue") || !strings.Contains(err.Error(), "testdata/all.yaml:") {
		t.Errorf("message %q", err)
	}

	tests := []struct {
		name, value, intrinsic string
		line                   int
	}{
		{"short ImportValue", "!ImportValue other-stack-x", "Fn::ImportValue", 7},
		{"long Cidr", "\n        Fn::Cidr: [10.0.0.0/16, 2, 8]", "Fn::Cidr", 8},
		{"unknown tag", "!Frobnicate x", "Fn::Frobnicate", 7},
		{"nested in Sub vars", "!Sub [\"${X}\", {X: !Transform {Name: x}}]", "Fn::Transform", 7},
		{"nested in Join", "!Join [\"\", [a, !ImportValue b]]", "Fn::ImportValue", 7},
		{"inside a condition", "!If [Weird, a, b]", "Fn::ImportValue", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "Conditions:\n" +
				"  Weird: !Equals [a, b]\n" +
				"Resources:\n  R:\n    Type: AWS::SNS::Topic\n    Properties:\n      V: " + tt.value + "\n"
			if tt.name == "inside a condition" {
				src = strings.Replace(src, "!Equals [a, b]", "!Equals [a, !ImportValue b]", 1)
			}
			_, err := Parse("t.yaml", []byte(src), Options{})
			name, ok := IsUnsupportedIntrinsic(err)
			if !ok || name != tt.intrinsic {
				t.Fatalf("err = %v, want unsupported %s", err, tt.intrinsic)
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tt.line || e.File != "t.yaml" {
				t.Errorf("position of %v: want line %d", err, tt.line)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	base := "Parameters:\n  P:\n    Type: String\n    Default: x\n  NoDefault:\n    Type: String\n  L:\n    Type: CommaDelimitedList\n    Default: a,b\n" +
		"Conditions:\n  C: !Equals [!Ref P, x]\n" +
		"Resources:\n  R:\n    Type: AWS::SNS::Topic\n    Properties:\n      V: %s\n"
	tests := []struct {
		name, value string
		opts        Options
		want        string
	}{
		{"unknown ref", "!Ref Nope", Options{}, `Ref to "Nope": no such parameter or resource`},
		{"unknown getatt", "!GetAtt Nope.Arn", Options{}, "Fn::GetAtt Nope.Arn: no such resource"},
		{"bad getatt", "!GetAtt NoDot", Options{}, "is not Resource.Attribute"},
		{"unknown condition", "!If [Nope, a, b]", Options{}, `unknown condition "Nope"`},
		{"param without value", "!Ref NoDefault", Options{}, "parameter NoDefault has no Default"},
		{"unknown pseudo", "!Ref AWS::Nope", Options{}, "unknown pseudo parameter AWS::Nope"},
		{"select out of range", "!Select [5, [a, b]]", Options{}, "index 5 out of range"},
		{"join non-list", "!Join [\",\", abc]", Options{}, "expected a list"},
		{"sub list variable", "!Sub \"${L}\"", Options{}, "${L} is a list, not a string"},
		{"if arity", "!If [C, a]", Options{}, "Fn::If takes a list of 3 elements"},
		{"findinmap missing", "!FindInMap [M, a, b]", Options{}, "no M.a.b in Mappings"},
		{"override unknown param", "x", Options{Params: map[string]string{"Typo": "1"}}, `names "Typo", which the template does not declare`},
		{"valid if", "!If [C, a, b]", Options{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, "%s", tt.value, 1)
			_, err := Parse("t.yaml", []byte(src), tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, ok := IsUnsupportedIntrinsic(err); ok {
				t.Errorf("%v reported as unsupported intrinsic", err)
			}
		})
	}

	more := []struct {
		name, src, want string
		opts            Options
	}{
		{"cycle", "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref B\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Ref A\n", "circular reference", Options{}},
		{"condition cycle", "Conditions:\n  A: !Not [!Condition B]\n  B: !Not [!Condition A]\nResources:\n  R:\n    Type: AWS::SNS::Topic\n", "refers to itself", Options{}},
		{"not a condition", "Conditions:\n  A: !Ref P\nParameters:\n  P: {Type: String, Default: x}\nResources:\n  R:\n    Type: AWS::SNS::Topic\n", "Ref is not a condition function", Options{}},
		{"allowed values", "Parameters:\n  S: {Type: String, Default: dev, AllowedValues: [dev, prod]}\nResources:\n  R:\n    Type: AWS::SNS::Topic\n", "not one of AllowedValues", Options{Params: map[string]string{"S": "qa"}}},
		{"no type", "Resources:\n  R:\n    Properties: {}\n", "resource has no Type", Options{}},
		{"no resources", "Parameters: {}\n", "no Resources section", Options{}},
		{"unknown globals", "Globals:\n  Lambda: {}\nResources:\n  R:\n    Type: AWS::SNS::Topic\n", "unknown Globals section", Options{}},
		{"not yaml mapping", "- a\n- b\n", "not a YAML mapping", Options{}},
		{"env var is a map", "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          X: {a: b}\n", "", Options{}},
	}
	for _, tt := range more {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.src), tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}

	// Conversions that only Functions() can check.
	tpl, err := Parse("t.yaml", []byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: soon\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Functions(); err == nil || !strings.Contains(err.Error(), `Timeout "soon" is not an integer`) {
		t.Errorf("Functions() = %v", err)
	}
	tpl, err = Parse("t.yaml", []byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          X: [a]\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Functions(); err == nil || !strings.Contains(err.Error(), "Environment.Variables.X") {
		t.Errorf("Functions() = %v", err)
	}
}

func TestYAMLAnchorsAndMergeKeys(t *testing.T) {
	src := `
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables: &common
          REGION: !Ref AWS::Region
          MODE: base
  B:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          <<: *common
          MODE: override
`
	tpl, err := Parse("t.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tpl.Function("B")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"REGION": "us-east-1", "MODE": "override"}; !reflect.DeepEqual(b.Environment, want) {
		t.Errorf("env = %v, want %v", b.Environment, want)
	}
}

func TestGlobalsIntrinsicIsAScalar(t *testing.T) {
	// A function whose Environment is an intrinsic replaces the Globals mapping
	// instead of being merged into it (SAM treats intrinsics as primitives).
	src := `
Conditions:
  Never: !Equals [a, b]
Globals:
  Function:
    Environment:
      Variables: {G: g}
    Layers: [l1]
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Layers: [l2]
      Environment: !If [Never, {Variables: {X: x}}, {Variables: {Y: y}}]
`
	tpl, err := Parse("t.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := tpl.Function("F")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"Y": "y"}; !reflect.DeepEqual(f.Environment, want) {
		t.Errorf("env = %v, want %v", f.Environment, want)
	}
	if want := []any{"l1", "l2"}; !reflect.DeepEqual(f.Properties["Layers"], want) {
		t.Errorf("Layers = %v", f.Properties["Layers"])
	}
	if f.Timeout != DefaultTimeout || f.MemorySize != DefaultMemorySize || !reflect.DeepEqual(f.Architectures, []string{"x86_64"}) {
		t.Errorf("defaults: %d %d %v", f.Timeout, f.MemorySize, f.Architectures)
	}
}

// prefixResolver shows the pluggable naming: tables get a prefix, the rest is default.
type prefixResolver struct{ DefaultResolver }

func (p prefixResolver) Ref(res ResourceRef) (any, error) {
	if res.Type == "AWS::DynamoDB::Table" {
		v, err := p.DefaultResolver.Ref(res)
		s, _ := v.(string)
		return "local-" + s, err
	}
	return p.DefaultResolver.Ref(res)
}

func TestCustomResolver(t *testing.T) {
	tpl := loadAll(t, Options{Resolver: prefixResolver{}})
	f, err := tpl.Function("ApiFunction")
	if err != nil {
		t.Fatal(err)
	}
	if f.Environment["TABLE_NAME"] != "local-devstack-tenants" || f.Environment["BUS"] != "tenant-lifecycle" {
		t.Errorf("env = %v", f.Environment)
	}
}

// TestProjectTemplate loads the project's real template.yaml and
// checks that everything devstack needs resolves: every function and state machine,
// and every state machine definition renders with no missing substitution.
func TestProjectTemplate(t *testing.T) {
	path := filepath.Join("..", "..", "..", "template.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the project template: %v", err)
	}
	tpl, err := Load(path, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatalf("Functions: %v", err)
	}
	if len(fns) == 0 {
		t.Fatal("template declares no AWS::Serverless::Function")
	}
	for _, f := range fns {
		if f.BuildMethod == "" || f.Runtime == "" {
			t.Errorf("%s: BuildMethod %q Runtime %q", f.LogicalID, f.BuildMethod, f.Runtime)
		}
	}
	sms, err := tpl.StateMachines()
	if err != nil {
		t.Fatalf("StateMachines: %v", err)
	}
	for _, sm := range sms {
		if _, err := sm.Render(); err != nil {
			t.Errorf("Render: %v", err)
		}
	}
	if _, err := tpl.Outputs(); err != nil {
		t.Errorf("Outputs: %v", err)
	}
}

func TestDefaultResolverNames(t *testing.T) {
	src := `
Resources:
  Q: {Type: AWS::SQS::Queue, Properties: {QueueName: jobs}}
  T: {Type: AWS::SNS::Topic}
  R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub "${AWS::StackName}-role"}}
  S: {Type: AWS::SecretsManager::Secret, Properties: {Name: stripe}}
  G: {Type: AWS::Scheduler::ScheduleGroup, Properties: {Name: sweeps}}
  P: {Type: AWS::SSM::Parameter, Properties: {Name: /x, Value: v}}
  K: {Type: AWS::KMS::Key}
  Rule: {Type: AWS::Events::Rule}
  Simple: {Type: AWS::Serverless::SimpleTable}
  Api: {Type: AWS::Serverless::HttpApi}
  Layer: {Type: AWS::Serverless::LayerVersion}
  Other: {Type: AWS::AppSync::GraphQLApi}
`
	tpl, err := Parse("t.yaml", []byte(src), Options{StackName: "tf"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id, attr string // attr "" = Ref
		want     any
	}{
		{"Q", "", "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"},
		{"Q", "Arn", "arn:aws:sqs:us-east-1:123456789012:jobs"},
		{"Q", "QueueName", "jobs"},
		{"T", "", "arn:aws:sns:us-east-1:123456789012:T"},
		{"T", "TopicName", "T"},
		{"R", "", "tf-role"},
		{"R", "Arn", "arn:aws:iam::123456789012:role/tf-role"},
		{"S", "", "arn:aws:secretsmanager:us-east-1:123456789012:secret:stripe"},
		{"G", "Arn", "arn:aws:scheduler:us-east-1:123456789012:schedule-group/sweeps"},
		{"P", "", "/x"},
		{"P", "Value", "v"},
		{"K", "Arn", "arn:aws:kms:us-east-1:123456789012:key/K"},
		{"Rule", "Arn", "arn:aws:events:us-east-1:123456789012:rule/Rule"},
		{"Simple", "", "Simple"},
		{"Api", "", "Api"},
		{"Api", "ApiEndpoint", "https://Api.execute-api.us-east-1.amazonaws.com"},
		{"Layer", "", "arn:aws:lambda:us-east-1:123456789012:layer:Layer:1"},
		{"Other", "", "Other"},
		{"Other", "Arn", "arn:aws:appsync:us-east-1:123456789012:Other"},
		{"Other", "ApiId", "Other"},
		{"Other", "GraphQLUrl", "Other.GraphQLUrl"},
		{"ServerlessRestApi", "", "ServerlessRestApi"},
	}
	for _, tt := range tests {
		var got any
		var err error
		if tt.attr == "" {
			got, err = tpl.Ref(tt.id)
		} else {
			got, err = tpl.GetAtt(tt.id, tt.attr)
		}
		if err != nil || got != tt.want {
			t.Errorf("%s %s = %v (%v), want %v", tt.id, tt.attr, got, err, tt.want)
		}
	}
}
