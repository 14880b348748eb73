// Package stack starts the whole system on one machine from template.yaml: moto for
// DynamoDB/S3/EventBridge/SQS/Secrets Manager, stripe-mock behind a recording proxy, the
// local Step Functions service running statemachines/*.asl.json, and the local Lambda
// service running the real bootstrap binaries. `make dev` and the end-to-end tests both
// use it, so what the tests exercise is what a developer runs.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
	"github.com/tenantflow/tenantflow/internal/localstack/sfnsvc"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// LocalParams are the template parameters of the local stack: billing on (against
// stripe-mock) so the flows exercise the Stripe adapter.
var LocalParams = map[string]string{
	"Stage":            "dev",
	"StripeSecretName": "tenantflow/dev/stripe",
	// The webhook signing secret; devstack stores StripeWebhookTestSecret in it.
	"StripeWebhookSecretName": "tenantflow/dev/stripe-webhook",
	"JwtIssuer":               "http://127.0.0.1/devstack",
	"JwtAudience":             "tenantflow",
	// A fixed cursor key, so GET /tenants cursors work across the local Lambda
	// containers (a deployment sets its own secret value).
	"ListCursorKey": "devstack-list-cursor-key",
}

// StripeTestKey is the key stored in the local Stripe secret (stripe-mock accepts any).
const StripeTestKey = "sk_test_devstack"

// StripeWebhookTestSecret is the webhook signing secret of the local stack: fixed, so
// `devstack stripe-event` and the tests sign what the local function verifies.
const StripeWebhookTestSecret = "whsec_devstack_local_signing_secret"

// Options configure a stack.
type Options struct {
	// Root is the repository root (default: found from the working directory).
	Root string
	// Params override LocalParams.
	Params map[string]string
	// Template, when set, is template.yaml already loaded with LoadTemplate (Root and
	// Params are then not read for it), so a caller that needs it first parses it once.
	Template *samtemplate.Template
	// Log receives the output of every function and service, prefixed with its name.
	Log io.Writer
	// RetryIntervalsZero makes every Retry wait 0 s (tests).
	RetryIntervalsZero bool
	// Phase, when set, is called after each startup phase (template, moto, resources,
	// stripe-mock, stepfunctions, lambda) with how long it took, so `make dev` can
	// print where its startup time goes.
	Phase func(name string, took time.Duration)
	// Bootstraps, when set, is called just before the Lambda service starts and
	// returns a directory of prebuilt bootstraps (lambdasvc.Config.BuildDir) to serve
	// instead of building them; devstack builds them this way in parallel with the
	// emulators' startup.
	Bootstraps func(ctx context.Context) (dir string, err error)
	// NoIAM runs moto without IAM enforcement, every function with the admin's
	// credentials. By default each function calls moto as an IAM user holding exactly
	// its template policies, so a missing grant fails here as it would in AWS.
	// TENANTFLOW_IAM=off in the environment does the same for every stack of a
	// process (to compare timings, or to bisect a failure).
	NoIAM bool
}

// IAMEnv is the environment variable that turns IAM enforcement off ("off").
const IAMEnv = "TENANTFLOW_IAM"

// Stack is a running local system.
type Stack struct {
	Template   *samtemplate.Template
	Moto       *testenv.Moto
	StripeMock *testenv.StripeMock
	// Stripe is the recording, fault-injecting proxy the functions talk to.
	Stripe *testenv.Stripe
	Lambda *lambdasvc.Service
	SFN    *sfnsvc.Service
	AWS    aws.Config
	// AWSFaults sits between FaultedFunctions and DynamoDB and Step Functions; its
	// rules break their calls from outside (Reset clears them).
	AWSFaults *AWSFaults

	// Names of the local resources.
	TenantsTable   string
	DataTable      string
	EventBus       string
	Buckets        []string // every AWS::S3::Bucket of the template
	EventsQueueURL string
	StateMachines  map[string]string // logical id → ARN
	// Principals are the credentials each function calls moto with, by logical ID:
	// an IAM user with its role's policies (the admin's with Options.NoIAM).
	Principals map[string]testenv.Credentials
	// WebhookSecretName is the Stripe webhook secret's name ("" when the template
	// parameters name none); it holds StripeWebhookTestSecret.
	WebhookSecretName string

	closers []func()
}

// LoadTemplate reads root/template.yaml with the local parameters (LocalParams, then
// overrides) in the local region and account: the one template Start runs and that
// devstack's gateway, scheduler and token commands read, so they all agree.
func LoadTemplate(root string, overrides map[string]string) (*samtemplate.Template, error) {
	params := map[string]string{}
	for k, v := range LocalParams {
		params[k] = v
	}
	for k, v := range overrides {
		params[k] = v
	}
	return samtemplate.Load(filepath.Join(root, "template.yaml"), samtemplate.Options{Params: params, Region: testenv.Region, AccountID: testenv.AccountID})
}

// Start brings the stack up. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Root == "" {
		opts.Root = testenv.RepoRoot()
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	s := &Stack{StateMachines: map[string]string{}, Template: opts.Template}
	phaseStart := time.Now()
	phase := func(name string) {
		if opts.Phase != nil {
			opts.Phase(name, time.Since(phaseStart))
		}
		phaseStart = time.Now()
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Template == nil {
		if s.Template, err = LoadTemplate(opts.Root, opts.Params); err != nil {
			return nil, err
		}
	}
	fns, err := s.Template.Functions()
	if err != nil {
		return nil, err
	}
	motoOpts := testenv.MotoOptions{EnforceIAM: !opts.NoIAM && os.Getenv(IAMEnv) != "off"}
	if motoOpts.EnforceIAM {
		policies, err := ExpandPolicies(ctx, opts.Root, s.Template)
		if err != nil {
			return nil, err
		}
		if motoOpts.Users, err = functionUsers(fns, policies); err != nil {
			return nil, err
		}
	}
	phase("template")
	if s.Moto, err = testenv.StartMotoWith(motoOpts); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Moto.Close)
	phase("moto")
	s.AWS = s.Moto.Config()
	s.Principals = map[string]testenv.Credentials{}
	for _, f := range fns {
		s.Principals[f.LogicalID] = s.Moto.Admin
	}
	for _, u := range motoOpts.Users {
		s.Principals[u.Name] = u.Credentials
	}
	// Billing is on locally only when the template names a Stripe secret.
	stripeSecret := ""
	if v, refErr := s.Template.Ref("StripeSecretName"); refErr == nil {
		stripeSecret, _ = v.(string)
	}
	if v, refErr := s.Template.Ref("StripeWebhookSecretName"); refErr == nil {
		s.WebhookSecretName, _ = v.(string)
	}
	if err = s.createResources(ctx, stripeSecret); err != nil {
		return nil, err
	}
	phase("resources")

	bin, err := testenv.Tool("bin/stripe-mock")
	if err != nil {
		return nil, err
	}
	if s.StripeMock, err = testenv.StartStripeMock(bin); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.StripeMock.Stop)
	if s.Stripe, err = testenv.NewStripeProxy(s.StripeMock.URL); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Stripe.Close)
	phase("stripe-mock")

	// Step Functions and Lambda call each other; the Lambda port is chosen first so
	// the Step Functions service can be told where Lambda will listen.
	lambdaPort, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	lambdaURL := fmt.Sprintf("http://127.0.0.1:%d", lambdaPort)
	sms, err := s.Template.StateMachines()
	if err != nil {
		return nil, err
	}
	cfg := sfnsvc.Config{
		Server:         filepath.Join(opts.Root, "tools", "sfn-local", "server.mjs"),
		LambdaEndpoint: lambdaURL, RetryIntervalsZero: opts.RetryIntervalsZero,
		Region: testenv.Region, AccountID: testenv.AccountID, Log: opts.Log,
	}
	for _, sm := range sms {
		cfg.StateMachines = append(cfg.StateMachines, sfnsvc.StateMachine{Name: sm.Name, ARN: sm.ARN, DefinitionPath: sm.DefinitionPath, Substitutions: sm.DefinitionSubstitutions})
		s.StateMachines[sm.LogicalID] = sm.ARN
	}
	if s.SFN, err = sfnsvc.Start(ctx, cfg); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.SFN.Close() })
	phase("stepfunctions")

	env := map[string]string{
		"AWS_ENDPOINT_URL_SFN": s.SFN.Endpoint(),
		"STRIPE_API_BASE":      s.Stripe.URL,
	}
	for _, kv := range testenv.AWSEnv(s.Moto.Endpoint) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	fnEnv := map[string]map[string]string{}
	for id, c := range s.Principals {
		fnEnv[id] = map[string]string{"AWS_ACCESS_KEY_ID": c.AccessKeyID, "AWS_SECRET_ACCESS_KEY": c.SecretAccessKey}
	}
	if s.AWSFaults, err = startAWSFaults(s.Moto.Endpoint, s.SFN.Endpoint()); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.AWSFaults.Close)
	for _, id := range FaultedFunctions {
		if fnEnv[id] == nil {
			fnEnv[id] = map[string]string{}
		}
		fnEnv[id]["AWS_ENDPOINT_URL_DYNAMODB"] = s.AWSFaults.URL()
		fnEnv[id]["AWS_ENDPOINT_URL_SFN"] = s.AWSFaults.URL()
	}
	lcfg := lambdasvc.Config{Root: opts.Root, Functions: fns, Env: env, FunctionEnv: fnEnv, Log: opts.Log, Addr: fmt.Sprintf("127.0.0.1:%d", lambdaPort), Region: testenv.Region, AccountID: testenv.AccountID}
	if opts.Bootstraps != nil {
		if lcfg.BuildDir, err = opts.Bootstraps(ctx); err != nil {
			return nil, err
		}
	}
	if s.Lambda, err = lambdasvc.Start(ctx, lcfg); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.Lambda.Close() })
	phase("lambda")
	return s, nil
}

// Close stops every process the stack started, newest first.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// PIDs lists the processes the stack started (for leak checks).
func (s *Stack) PIDs() []int {
	var out []int
	if s.Moto != nil {
		out = append(out, s.Moto.PID())
	}
	if s.StripeMock != nil {
		out = append(out, s.StripeMock.PID())
	}
	if s.SFN != nil {
		out = append(out, s.SFN.PID())
	}
	if s.Lambda != nil {
		out = append(out, s.Lambda.PIDs()...)
	}
	return out
}

// DynamoDB returns a client for the stack's moto.
func (s *Stack) DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(s.AWS) }

// S3 returns an S3 client for moto (path-style: moto serves buckets under its one host).
func (s *Stack) S3() *s3.Client {
	return s3.NewFromConfig(s.AWS, func(o *s3.Options) { o.UsePathStyle = true })
}

// SFNClient returns a Step Functions client for the local service. A flow's
// constructor takes it as the functions' wiring hands it over: sfnexec.New(client).
func (s *Stack) SFNClient() *sfn.Client {
	cfg := s.AWS.Copy()
	cfg.BaseEndpoint = aws.String(s.SFN.Endpoint())
	return sfn.NewFromConfig(cfg)
}

// createResources creates in moto what template.yaml declares: tables, buckets, the
// lifecycle bus (with a queue capturing its events so tests and the dev console can read them),
// and the Stripe secret.
func (s *Stack) createResources(ctx context.Context, stripeSecret string) error {
	names, err := testenv.CreateTables(ctx, s.DynamoDB(), "")
	if err != nil {
		return err
	}
	s.TenantsTable, s.DataTable = names["TenantsTable"], names["TenantDataTable"]
	s3c := s.S3()
	for _, r := range s.Template.ResourcesOfType("AWS::S3::Bucket") {
		name, err := s.Template.Ref(r.LogicalID)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", r.LogicalID, err)
		}
		bucket, _ := name.(string)
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
		s.Buckets = append(s.Buckets, bucket)
	}
	eb := eventbridge.NewFromConfig(s.AWS)
	q := sqs.NewFromConfig(s.AWS)
	for _, r := range s.Template.ResourcesOfType("AWS::Events::EventBus") {
		name, _ := r.Properties["Name"].(string)
		if name == "" {
			return fmt.Errorf("event bus %s has no Name", r.LogicalID)
		}
		if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(name)}); err != nil {
			return fmt.Errorf("create bus %s: %w", name, err)
		}
		if r.LogicalID != "LifecycleEventBus" {
			continue
		}
		s.EventBus = name
		qo, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("devstack-lifecycle-events")})
		if err != nil {
			return fmt.Errorf("create events queue: %w", err)
		}
		s.EventsQueueURL = aws.ToString(qo.QueueUrl)
		pattern, _ := json.Marshal(map[string]any{"source": []string{"tenantflow.lifecycle"}})
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("devstack-capture"), EventBusName: aws.String(name), EventPattern: aws.String(string(pattern))}); err != nil {
			return fmt.Errorf("create capture rule: %w", err)
		}
		arn := fmt.Sprintf("arn:aws:sqs:%s:%s:devstack-lifecycle-events", testenv.Region, testenv.AccountID)
		if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("devstack-capture"), EventBusName: aws.String(name),
			Targets: []ebTarget{{Id: aws.String("queue"), Arn: aws.String(arn)}}}); err != nil {
			return fmt.Errorf("create capture target: %w", err)
		}
	}
	if s.EventBus == "" {
		return errors.New("template declares no LifecycleEventBus")
	}
	if stripeSecret != "" {
		sm := secretsmanager.NewFromConfig(s.AWS)
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(stripeSecret), SecretString: aws.String(StripeTestKey)}); err != nil {
			return fmt.Errorf("create Stripe secret: %w", err)
		}
	}
	if s.WebhookSecretName != "" {
		sm := secretsmanager.NewFromConfig(s.AWS)
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.WebhookSecretName), SecretString: aws.String(StripeWebhookTestSecret)}); err != nil {
			return fmt.Errorf("create Stripe webhook secret: %w", err)
		}
	}
	return nil
}
