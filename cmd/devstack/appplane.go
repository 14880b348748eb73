package main

// The sample app plane of `make dev --provisioning-hook`: it plays the SaaS application's
// provisioning service. It consumes ProvisioningRequested from the lifecycle bus
// through its own EventBridge rule and queue (as a real app plane subscribes) and
// answers through the real answer route, POST /tenants/{id}/provisioning/{request_id},
// with a token of scope tenants/provisioning. What it answers is chosen per tenant and
// per action in STATE_DIR/appplane.json, written by `devstack appplane`, and read at
// every request, so a change takes effect without a restart.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/apphook"
)

// AppPlaneFile keeps the sample app plane's answers per tenant.
const AppPlaneFile = "appplane.json"

// What the sample app plane answers.
const (
	AnswerSucceed = "succeed"
	AnswerFail    = "fail"
	AnswerNever   = "never"
)

var answers = []string{AnswerSucceed, AnswerFail, AnswerNever}

// AppPlaneChoice is what the app plane answers one tenant's requests: Apply for the
// provisioning of a change, Undo for the compensation's request to undo it.
type AppPlaneChoice struct {
	Apply string `json:"apply"`
	Undo  string `json:"undo"`
}

// AppPlaneSettings is the content of appplane.json: tenants not listed get the default
// (succeed to both).
type AppPlaneSettings struct {
	Tenants map[string]AppPlaneChoice `json:"tenants"`
}

// choice returns what to answer tenant's request of action.
func (s *AppPlaneSettings) choice(tenantID, action string) string {
	c := s.Tenants[tenantID]
	a := c.Apply
	if action == apphook.ActionUndo {
		a = c.Undo
	}
	if a == "" {
		return AnswerSucceed
	}
	return a
}

// readAppPlane reads stateDir/appplane.json; a missing file is the default.
func readAppPlane(stateDir string) (*AppPlaneSettings, error) {
	s := &AppPlaneSettings{Tenants: map[string]AppPlaneChoice{}}
	data, err := os.ReadFile(filepath.Join(stateDir, AppPlaneFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s: %w", AppPlaneFile, err)
	}
	if s.Tenants == nil {
		s.Tenants = map[string]AppPlaneChoice{}
	}
	return s, nil
}

// appPlaneQueue is the sample app plane's queue; appPlaneRule feeds it.
const (
	appPlaneQueue = "devstack-app-plane"
	appPlaneRule  = "devstack-app-plane"
)

// responder is the running sample app plane.
type responder struct {
	sqs      *sqs.Client
	queueURL string
	apiURL   string
	token    string
	stateDir string
	logf     func(format string, args ...any)
	done     chan struct{}
}

// startResponder subscribes the sample app plane to ProvisioningRequested on bus and
// answers until ctx ends; wait for it with <-r.done.
func startResponder(ctx context.Context, cfg aws.Config, bus, apiURL, stateDir string, auth *jwtauth.Authority, logf func(string, ...any)) (*responder, error) {
	token, err := auth.Mint(jwtauth.Claims{"sub": "devstack-app-plane", "scope": "tenants/provisioning"})
	if err != nil {
		return nil, err
	}
	q := sqs.NewFromConfig(cfg)
	qo, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(appPlaneQueue)})
	if err != nil {
		return nil, fmt.Errorf("app plane queue: %w", err)
	}
	eb := eventbridge.NewFromConfig(cfg)
	pattern, _ := json.Marshal(map[string]any{"source": []string{"tenantflow.lifecycle"}, "detail-type": []string{apphook.DetailType}})
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(appPlaneRule), EventBusName: aws.String(bus), EventPattern: aws.String(string(pattern))}); err != nil {
		return nil, fmt.Errorf("app plane rule: %w", err)
	}
	arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", testenv.Region, testenv.AccountID, appPlaneQueue)
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(appPlaneRule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("app-plane"), Arn: aws.String(arn)}}}); err != nil {
		return nil, fmt.Errorf("app plane target: %w", err)
	}
	r := &responder{sqs: q, queueURL: aws.ToString(qo.QueueUrl), apiURL: apiURL, token: token, stateDir: stateDir, logf: logf, done: make(chan struct{})}
	go r.loop(ctx)
	return r, nil
}

// loop polls the queue. Short polls with a pause: moto serves one request at a time,
// and a long poll would hold every function's calls behind it.
func (r *responder) loop(ctx context.Context) {
	defer close(r.done)
	seen := map[string]bool{}
	for ctx.Err() == nil {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			if ctx.Err() == nil {
				r.logf("read requests: %v", err)
			}
		} else {
			for _, m := range out.Messages {
				r.handle(ctx, aws.ToString(m.Body), seen)
				if _, err := r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
					r.logf("ack request: %v", err)
				}
			}
			if len(out.Messages) > 0 {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// handle answers one ProvisioningRequested event as appplane.json says.
func (r *responder) handle(ctx context.Context, body string, seen map[string]bool) {
	var e struct {
		Detail apphook.Event `json:"detail"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Detail.RequestID == "" {
		r.logf("ignoring an event that is not a provisioning request: %.200s", body)
		return
	}
	ev := e.Detail
	what := fmt.Sprintf("%s %s %s %s→%s (request %s, attempt %d)", ev.TenantID, ev.Action, ev.Kind, ev.FromPlan, ev.ToPlan, ev.RequestID, ev.Attempt)
	if seen[ev.RequestID] {
		r.logf("%s: announced again; answered already", what) // consumers dedupe on request_id
		return
	}
	seen[ev.RequestID] = true
	settings, err := readAppPlane(r.stateDir)
	if err != nil {
		r.logf("%s: %v; answering the default (succeed)", what, err)
		settings = &AppPlaneSettings{}
	}
	var ans map[string]any
	switch c := settings.choice(ev.TenantID, ev.Action); c {
	case AnswerNever:
		r.logf("%s: not answering (%s is set to never); the flow waits up to %d s, %d s without a heartbeat", what, ev.TenantID, ev.TimeoutSeconds, ev.HeartbeatSeconds)
		return
	case AnswerFail:
		ans = map[string]any{"status": apphook.StatusFailed, "error": "DevstackAppPlaneRefused",
			"cause": fmt.Sprintf("the devstack app plane is set to fail %s's %s requests (devstack appplane --tenant %s)", ev.TenantID, ev.Action, ev.TenantID)}
	default:
		ans = map[string]any{"status": apphook.StatusSucceeded, "output": map[string]any{"responder": "devstack", "action": ev.Action, "plan": planOf(ev)}}
	}
	status, resp, err := r.answer(ctx, ev.AnswerPath, ans)
	switch {
	case err != nil:
		r.logf("%s: answering %s failed: %v", what, ans["status"], err)
	default:
		r.logf("%s: answered %s → %d %s", what, ans["status"], status, strings.TrimSpace(resp))
	}
}

// planOf is the plan the request leaves the tenant on in the app plane.
func planOf(ev apphook.Event) string {
	if ev.Action == apphook.ActionUndo {
		return string(ev.FromPlan)
	}
	return string(ev.ToPlan)
}

// answer POSTs body to the API path with the app plane's token, and returns the status
// and the (short) answer.
func (r *responder) answer(ctx context.Context, path string, body any) (int, string, error) {
	data, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.apiURL+path, bytes.NewReader(data))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(raw), nil
}

func cmdAppPlane(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack appplane", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenantID := fs.String("tenant", "", "the tenant whose requests to answer this way")
	apply := fs.String("answer", "", "answer to the tenant's provisioning (apply) requests: succeed, fail or never")
	undo := fs.String("undo", "", "answer to the tenant's undo requests (compensation): succeed, fail or never (default succeed)")
	reset := fs.Bool("reset", false, "forget the tenant's setting (or every tenant's, without --tenant)")
	stateDir := fs.String("state-dir", "", "state directory (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack appplane [--tenant ID --answer succeed|fail|never [--undo succeed|fail|never]] [--reset]\n\n"+
			"Chooses what the sample app plane of `make dev ARGS=--provisioning-hook` answers to a tenant's\n"+
			"provisioning requests (default: succeed). Without flags, prints the settings. Takes effect at\n"+
			"the next request; a running devstack needs no restart.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "devstack appplane: unexpected argument %q\n", pos[0])
		return 2
	}
	for _, v := range []string{*apply, *undo} {
		if v != "" && !slices.Contains(answers, v) {
			fmt.Fprintf(stderr, "devstack appplane: answer %q: want one of %s\n", v, strings.Join(answers, ", "))
			return 2
		}
	}
	if (*apply != "" || *undo != "") && (*tenantID == "" || *reset) {
		fmt.Fprintln(stderr, "devstack appplane: --answer and --undo need --tenant, and not --reset")
		return 2
	}
	_, dir, err := resolveDirs("", *stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "devstack appplane: %v\n", err)
		return 1
	}
	s, err := readAppPlane(dir)
	if err != nil {
		fmt.Fprintf(stderr, "devstack appplane: %v\n", err)
		return 1
	}
	changed := false
	switch {
	case *reset && *tenantID == "":
		s.Tenants, changed = map[string]AppPlaneChoice{}, true
	case *reset:
		delete(s.Tenants, *tenantID)
		changed = true
	case *tenantID != "" && (*apply != "" || *undo != ""):
		c := s.Tenants[*tenantID]
		if *apply != "" {
			c.Apply = *apply
		}
		if *undo != "" {
			c.Undo = *undo
		}
		s.Tenants[*tenantID] = c
		changed = true
	}
	if changed {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fmt.Fprintf(stderr, "devstack appplane: %v\n", err)
			return 1
		}
		data, _ := json.MarshalIndent(s, "", "  ")
		if err := writeFileAtomic(filepath.Join(dir, AppPlaneFile), append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "devstack appplane: %v\n", err)
			return 1
		}
	}
	ids := make([]string, 0, len(s.Tenants))
	for id := range s.Tenants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if *tenantID != "" && !*reset {
		ids = []string{*tenantID}
	}
	for _, id := range ids {
		fmt.Fprintf(stdout, "%s\tapply=%s\tundo=%s\n", id, s.choice(id, apphook.ActionApply), s.choice(id, apphook.ActionUndo))
	}
	if len(ids) == 0 {
		fmt.Fprintln(stdout, "every tenant: apply=succeed\tundo=succeed")
	}
	return 0
}
