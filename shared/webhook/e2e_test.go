package webhook_test

// End-to-end tests of the Stripe webhook as it runs in AWS: API Gateway v2 events
// (no authorizer) through the real stripe-webhook bootstrap, signed with the local
// secret from Secrets Manager, starting the real suspension and reactivation flows.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	st "github.com/tenantflow/tenantflow/internal/localstack/stacktest"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

const fn = "StripeWebhookFunction"

// deliver invokes the webhook function with one API Gateway v2 event carrying body
// and, when sig is set, its Stripe-Signature header. It returns the HTTP answer.
func deliver(s *stack.Stack, body []byte, sig string) (events.APIGatewayV2HTTPResponse, error) {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /webhooks/stripe", RawPath: "/webhooks/stripe", Body: string(body),
		Headers: map[string]string{"content-type": "application/json; charset=utf-8", "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "POST /webhooks/stripe", RequestID: fmt.Sprintf("req-%d", time.Now().UnixNano()),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/webhooks/stripe"},
		},
	}
	if sig != "" {
		ev.Headers["stripe-signature"] = sig
	}
	raw, _ := json.Marshal(ev)
	var resp events.APIGatewayV2HTTPResponse
	res, err := s.Lambda.Invoke(context.Background(), fn, raw)
	if err != nil {
		return resp, err
	}
	if res.FunctionError != "" {
		return resp, fmt.Errorf("function error %s: %s", res.FunctionError, res.Payload)
	}
	return resp, json.Unmarshal(res.Payload, &resp)
}

// step is one recorded Stripe event: type (fixture name), tenant index, seconds
// after the sequence start.
type step struct {
	typ    string
	tenant int
	at     int64
}

// recorded is a sequence of 20 events across four tenants, in Stripe's order.
// Expected in order: a ends SUSPENDED (canceled), b ACTIVE, c SUSPENDED, d ACTIVE.
var recorded = []step{
	{"customer.subscription.updated-unpaid", 0, 10},
	{"invoice.paid", 3, 11},
	{"customer.subscription.updated-past_due", 1, 12},
	{"customer.subscription.updated-unpaid", 2, 13},
	{"customer.subscription.updated-active", 0, 20},
	{"customer.subscription.updated-unpaid", 1, 21},
	{"customer.subscription.updated-unpaid", 3, 22},
	{"customer.subscription.deleted", 2, 23},
	{"customer.subscription.updated-past_due", 3, 24},
	{"customer.subscription.updated-unpaid", 0, 30},
	{"invoice.paid", 1, 31},
	{"invoice.paid", 2, 32},
	{"charge.succeeded", 3, 33},
	{"invoice.paid", 0, 40},
	{"customer.subscription.updated-unpaid", 1, 41},
	{"customer.subscription.updated-active", 3, 42},
	{"customer.subscription.deleted", 0, 50},
	{"customer.subscription.updated-active", 1, 51},
	{"customer.subscription.updated-unpaid", 3, 52},
	{"invoice.paid", 3, 60},
}

var examples = []string{"tenant_acme", "tenant_techstart", "tenant_enterprise", "tenant_acme"}

// payloads builds the recorded events for the tenants named prefix-0..3.
func payloads(t *testing.T, root, prefix string, base time.Time) [][]byte {
	t.Helper()
	var out [][]byte
	for i, e := range recorded {
		p, err := stack.StripeEvent(root, stack.StripeEventSpec{Type: e.typ, TenantID: fmt.Sprintf("%s-%d", prefix, e.tenant),
			ID: fmt.Sprintf("evt_%s_%02d", strings.ReplaceAll(prefix, "-", "_"), i), Created: base.Add(time.Duration(e.at) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// run delivers payloads in order (each until it is accepted, as Stripe retries a
// 5xx), one goroutine per tenant since order only matters per subscription, or in
// the shuffled order given, with a 5xx put back at the end of the queue.
func run(s *stack.Stack, queue [][]byte, inOrder bool, deadline time.Time) (accepted, retried int, err error) {
	for len(queue) > 0 {
		if time.Now().After(deadline) {
			return accepted, retried, fmt.Errorf("%d deliveries still refused at the deadline", len(queue))
		}
		p := queue[0]
		queue = queue[1:]
		resp, err := deliver(s, p, stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, time.Now()))
		if err != nil {
			return accepted, retried, err
		}
		switch {
		case resp.StatusCode == 200:
			accepted++
		case resp.StatusCode == 503:
			retried++
			if inOrder {
				queue = append([][]byte{p}, queue...)
			} else {
				queue = append(queue, p)
			}
			time.Sleep(40 * time.Millisecond)
		default:
			return accepted, retried, fmt.Errorf("answer %d %s", resp.StatusCode, resp.Body)
		}
	}
	return accepted, retried, nil
}

func byTenant(ps [][]byte) map[int][][]byte {
	out := map[int][][]byte{}
	for i, p := range ps {
		out[recorded[i].tenant] = append(out[recorded[i].tenant], p)
	}
	return out
}

// settle waits until no execution runs and no tenant is held.
func settle(t *testing.T, s *stack.Stack, ids []string) {
	t.Helper()
	client := s.SFNClient()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		running := 0
		for _, arn := range s.StateMachines {
			out, err := client.ListExecutions(context.Background(), &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning})
			if err != nil {
				t.Fatal(err)
			}
			running += len(out.Executions)
		}
		held := 0
		for _, id := range ids {
			if st.Tenant(t, s, id).Operation != "" {
				held++
			}
		}
		if running == 0 && held == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("flows did not settle")
}

// outcomes reads the recorded outcome of each event id.
func outcomes(t *testing.T, s *stack.Stack, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		got, err := s.DynamoDB().GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.TenantsTable), Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "WEBHOOK#" + id}, "sk": &ddbtypes.AttributeValueMemberS{Value: "EVENT"}}})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := got.Item["outcome"].(*ddbtypes.AttributeValueMemberS); ok {
			out[id] = v.Value
		}
	}
	return out
}

func eventID(p []byte) string {
	var e struct{ ID string }
	_ = json.Unmarshal(p, &e)
	return e.ID
}

// TestWebhookShuffledRedeliveries: the recorded 20 events, each delivered twice and
// the whole set shuffled, leave every tenant in the state the in-order single
// delivery leaves its twin in, and every audited transition is one started flow
// (no event started two).
func TestWebhookShuffledRedeliveries(t *testing.T) {
	s := st.Shared(t)
	root := testenv.RepoRoot()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var inOrder, shuffled []string
	for i, ex := range examples {
		inOrder = append(inOrder, fmt.Sprintf("wh-o-%d", i))
		shuffled = append(shuffled, fmt.Sprintf("wh-x-%d", i))
		st.Clone(t, s, ex, inOrder[i])
		st.Clone(t, s, ex, shuffled[i])
	}
	ordered := payloads(t, root, "wh-o", base)
	twice := payloads(t, root, "wh-x", base)
	twice = append(twice, twice...)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	rng.Shuffle(len(twice), func(i, j int) { twice[i], twice[j] = twice[j], twice[i] })
	t.Logf("shuffle seed %d", seed)

	start := time.Now()
	deadline := start.Add(30 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	stats := map[string][2]int{}
	record := func(name string, a, r int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		x := stats[name[:1]]
		stats[name[:1]] = [2]int{x[0] + a, x[1] + r}
	}
	for i, ps := range byTenant(ordered) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, r, err := run(s, ps, true, deadline)
			record(fmt.Sprintf("o tenant %d", i), a, r, err)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a, r, err := run(s, twice, false, deadline)
		record("x shuffled", a, r, err)
	}()
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	settle(t, s, append(append([]string{}, inOrder...), shuffled...))
	t.Logf("delivered in %s: in order %d accepted (%d retried 503), shuffled twice %d accepted (%d retried 503)",
		time.Since(start).Round(time.Millisecond), stats["o"][0], stats["o"][1], stats["x"][0], stats["x"][1])

	want := []tenant.State{tenant.Suspended, tenant.Active, tenant.Suspended, tenant.Active}
	for i := range examples {
		o, x := st.Tenant(t, s, inOrder[i]), st.Tenant(t, s, shuffled[i])
		t.Logf("tenant %d: in order %s (%s) %v; shuffled %s (%s) %v", i, o.State, o.SuspendReason, st.Transitions(t, s, o.ID),
			x.State, x.SuspendReason, st.Transitions(t, s, x.ID))
		if o.State != want[i] || x.State != o.State || x.Plan != o.Plan || x.Attention != "" || o.Attention != "" {
			t.Errorf("tenant %d: in order %s/%s, shuffled %s/%s, want %s", i, o.State, o.Plan, x.State, x.Plan, want[i])
		}
	}
	// Every transition into SUSPENDED or REACTIVATING is a flow one event started.
	for _, run := range []struct {
		ids []string
		ps  [][]byte
	}{{inOrder, ordered}, {shuffled, payloads(t, root, "wh-x", base)}} {
		var evIDs []string
		for _, p := range run.ps {
			evIDs = append(evIDs, eventID(p))
		}
		started := 0
		for _, o := range outcomes(t, s, evIDs) {
			if strings.HasSuffix(o, "_started") {
				started++
			}
		}
		flows := 0
		for _, id := range run.ids {
			for _, tr := range st.Transitions(t, s, id) {
				if tr == "ACTIVE->SUSPENDED" || tr == "SUSPENDED->REACTIVATING" {
					flows++
				}
			}
		}
		t.Logf("%s: %d flows started by events, %d audited flow starts", run.ids[0][:4], started, flows)
		if started != flows || flows == 0 {
			t.Errorf("%s: %d flows started by events, %d audited flow starts: duplicate or lost transitions", run.ids[0][:4], started, flows)
		}
	}
}

// webhookItems counts the webhook's records in the table.
func webhookItems(t *testing.T, s *stack.Stack) int {
	t.Helper()
	out, err := s.DynamoDB().Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(s.TenantsTable),
		FilterExpression:          aws.String("begins_with(pk, :p)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: "WEBHOOK"}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

// TestWebhookRefusesBadInput: a tampered body, another secret, a timestamp older
// than 300 s and a missing header are 400 and write nothing; an unknown type is 200
// and writes nothing; a valid event suspends once and its redelivery is a duplicate.
func TestWebhookRefusesBadInput(t *testing.T) {
	s := st.Shared(t)
	id := "wh-bad"
	st.Clone(t, s, "tenant_acme", id)
	p, err := stack.StripeEvent(testenv.RepoRoot(), stack.StripeEventSpec{Type: "customer.subscription.updated", Status: "unpaid", TenantID: id, ID: "evt_bad_input"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, now)
	tampered := []byte(strings.Replace(string(p), `"unpaid"`, `"active"`, 1))
	cases := []struct {
		name string
		body []byte
		sig  string
		want string
	}{
		{"tampered body", tampered, good, "no valid signature"},
		{"wrong secret", p, stack.SignStripeEvent(p, "whsec_someone_else", now), "no valid signature"},
		{"timestamp older than 300 s", p, stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, now.Add(-301*time.Second)), "older than"},
		{"missing header", p, "", "missing Stripe-Signature"},
		{"malformed header", p, "t=yesterday,v1=zz", "malformed"},
	}
	for _, c := range cases {
		resp, err := deliver(s, c.body, c.sig)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d %s", c.name, resp.StatusCode, resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, c.want) {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, resp.Body)
		}
	}
	if n := webhookItems(t, s); n != 0 {
		t.Fatalf("refused deliveries wrote %d webhook records", n)
	}
	if tn := st.Tenant(t, s, id); tn.State != tenant.Active || tn.Version != 1 || tn.Operation != "" {
		t.Fatalf("refused deliveries changed the tenant: %+v", tn)
	}
	unknown, _ := stack.StripeEvent(testenv.RepoRoot(), stack.StripeEventSpec{Type: "charge.succeeded", TenantID: id, ID: "evt_bad_unknown"})
	if resp, _ := deliver(s, unknown, stack.SignStripeEvent(unknown, stack.StripeWebhookTestSecret, now)); resp.StatusCode != 200 || !strings.Contains(resp.Body, `"ignored"`) {
		t.Fatalf("unknown type: %d %s", resp.StatusCode, resp.Body)
	}
	if n := webhookItems(t, s); n != 0 {
		t.Fatalf("an unknown event type wrote %d webhook records", n)
	}
	// The same event, validly signed: accepted once, then a duplicate.
	for i, want := range []string{"suspension_started", "duplicate"} {
		resp, err := deliver(s, p, stack.SignStripeEvent(p, stack.StripeWebhookTestSecret, time.Now()))
		if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, want) {
			t.Fatalf("delivery %d: %v %d %s", i+1, err, resp.StatusCode, resp.Body)
		}
	}
	settle(t, s, []string{id})
	if tn := st.Tenant(t, s, id); tn.State != tenant.Suspended || tn.SuspendReason != "nonpayment" {
		t.Fatalf("after unpaid: %+v", tn)
	}
}
