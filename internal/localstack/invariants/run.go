package invariants

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// runner runs sequences on one stack.
type runner struct {
	s       *stack.Stack
	api     *api
	root    string
	prices  map[tenant.Plan]string
	catalog *tenant.Catalog
	cfg     Config
	// tokens of the operator and the metering service (each tenant has its own).
	operator, metering string
}

func newRunner(s *stack.Stack, cfg Config) (*runner, error) {
	p, err := s.PriceIDs()
	if err != nil {
		return nil, err
	}
	a, err := startAPI(s)
	if err != nil {
		return nil, err
	}
	r := &runner{s: s, api: a, root: testenv.RepoRoot(), prices: p, catalog: tenant.DefaultCatalog(), cfg: cfg}
	if r.operator, err = a.operatorToken(); err != nil {
		a.close()
		return nil, err
	}
	if r.metering, err = a.meteringToken(); err != nil {
		a.close()
		return nil, err
	}
	return r, nil
}

func (r *runner) close() { r.api.close() }

// apiOp is an operation the API accepted (202): who asked, for what.
type apiOp struct {
	ID     string
	Actor  Actor
	Kind   Kind
	Tenant int
	Plan   tenant.Plan
	// Status is what the 202 said: RUNNING, or SCHEDULED for a period-end change.
	Status string
	Step   int
	// Override is the tenant's users override when the API accepted the operation.
	Override *int64
}

// tstate is what the sequence knows of one tenant: what it sent and what it saw.
type tstate struct {
	id    string
	token string
	// causes are the suspension causes in force, from the actions that suspended it
	// (an operator's suspension, Stripe's unpaid or deleted subscription).
	causes map[string]bool
	// usage is the last usage report metering made that was accepted; before is what
	// it was when the current step began.
	usage, before tenant.Usage
	// audit counts the audit entries already judged.
	audit int
	// status is each operation's status when last seen.
	status map[string]tenant.OperationStatus
	// counted are the Stripe deliveries whose suspension is already accounted for,
	// so one that started a suspension long ago does not explain a new one.
	counted map[string]bool
	// override is the users limit an operator's accepted override set (nil: none).
	override *int64
	// resolved is set once an operator resolved an operation of the tenant by hand:
	// billing is then whatever the operator made it, which the sequence cannot see.
	resolved bool
	// Observed at the end of the last step.
	view  *tenant.Tenant
	trail []store.AuditEntry
	ops   map[string]*tenant.Operation
}

// Suspension causes.
const (
	causeOperator   = "operator"
	causeNonpayment = "nonpayment"
	causeCanceled   = "canceled"
	causeUnknown    = "unknown"
)

// seqRun is one sequence running.
type seqRun struct {
	r       *runner
	ctx     context.Context
	seq     *Sequence
	tenants []*tstate
	ops     map[string]*apiOp
	// events are the Stripe events sent, by number; killed the subscriptions whose
	// deletion Stripe announced.
	events     map[int]*sentEvent
	killed     map[string]bool
	stripeBase time.Time
	ledger     *ledger
	step       int
	// transcript is every action with its answer, for the report.
	transcript []string
	violations []Violation
	seen       map[string]bool
	mu         sync.Mutex
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string // I1..I6, or Q (the tenant never became quiescent)
	Tenant    string
	Step      int // 0: before the first step
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s after step %d: %s: %s", v.Invariant, v.Step, v.Tenant, v.Detail)
}

// result is what running one sequence gave.
type result struct {
	seq        Sequence
	steps      int
	violations []Violation
	transcript []string
}

// run runs seq (its Steps; with gen, steps are generated until n) on a freshly reset
// stack, checking after every step, and stops at the first step that breaks an
// invariant. err is for a run that could not go on (the stack failed).
func (r *runner) run(ctx context.Context, seq Sequence, gen *generator, n int) (*result, error) {
	if err := r.s.Reset(ctx, false); err != nil {
		return nil, err
	}
	q := &seqRun{r: r, ctx: ctx, seq: &seq, ops: map[string]*apiOp{}, events: map[int]*sentEvent{}, killed: map[string]bool{},
		stripeBase: time.Now().Add(-time.Hour).Truncate(time.Second), seen: map[string]bool{}}
	if err := q.createTenants(); err != nil {
		return nil, err
	}
	if err := q.observe(); err != nil {
		return nil, err
	}
	q.check()
	if gen == nil {
		n = len(seq.Steps)
	}
	for q.step = 1; q.step <= n && len(q.violations) == 0; q.step++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var st Step
		if gen != nil {
			st = gen.next(q.views())
			q.seq.Steps = append(q.seq.Steps, st)
		} else {
			st = seq.Steps[q.step-1]
		}
		for _, t := range q.tenants {
			t.before = t.usage
		}
		q.exec(st)
		if err := q.settle(); err != nil {
			return nil, err
		}
		if err := q.observe(); err != nil {
			return nil, err
		}
		q.check()
		// I8 reads the API (the document the app plane reads), so it is judged here,
		// on the settled stack, rather than in check.
		for _, t := range q.tenants {
			q.checkEntitlements(t)
		}
	}
	steps := q.step - 1
	return &result{seq: *q.seq, steps: steps, violations: q.violations, transcript: q.transcript}, nil
}

func (q *seqRun) logf(format string, args ...any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.transcript = append(q.transcript, fmt.Sprintf("%3d. ", q.step)+fmt.Sprintf(format, args...))
}

func (q *seqRun) violate(inv string, t *tstate, key, format string, args ...any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id := ""
	if t != nil {
		id = t.id
	}
	k := inv + "|" + id + "|" + key
	if key != "" && q.seen[k] {
		return
	}
	q.seen[k] = true
	q.violations = append(q.violations, Violation{Invariant: inv, Tenant: id, Step: q.step, Detail: fmt.Sprintf(format, args...)})
}

// createTenants creates the sequence's tenants through the API (an operator's POST
// /tenants, so billing creates their subscriptions in Stripe) and reports their first
// usage as the metering service.
func (q *seqRun) createTenants() error {
	for i, st := range q.seq.Tenants {
		id := fmt.Sprintf("inv-t%d", i)
		tok, err := q.r.api.tenantToken(id)
		if err != nil {
			return err
		}
		t := &tstate{id: id, token: tok, causes: map[string]bool{}, status: map[string]tenant.OperationStatus{}, counted: map[string]bool{}}
		q.tenants = append(q.tenants, t)
		ans, err := q.r.api.call(q.ctx, http.MethodPost, "/tenants", q.r.operator,
			map[string]any{"id": id, "name": "Invariants " + id, "plan": st.Plan, "email": "billing@" + id + ".example"}, nil)
		if err != nil {
			return err
		}
		if ans.Status != http.StatusCreated {
			return fmt.Errorf("create %s: %s", id, ans)
		}
		if err := q.report(t, st.Usage); err != nil {
			return err
		}
	}
	return nil
}

// report sends a usage report as the metering service.
func (q *seqRun) report(t *tstate, u tenant.Usage) error {
	ans, err := q.r.api.call(q.ctx, http.MethodPut, "/tenants/"+t.id+"/usage", q.r.metering,
		map[string]any{"users": u.Users, "storage_gb": u.StorageGB, "api_calls_per_month": u.APICallsPerMonth}, nil)
	if err != nil {
		return err
	}
	if ans.Status == http.StatusOK {
		q.mu.Lock()
		t.usage = u
		q.mu.Unlock()
	} else if q.step == 0 {
		return fmt.Errorf("first usage report of %s: %s", t.id, ans)
	}
	return nil
}

// exec runs the step's actions: faults armed first, then every action at the same
// moment.
func (q *seqRun) exec(st Step) {
	for _, a := range st.Actions {
		if a.Fault != nil {
			err := q.r.s.Lambda.Inject(lambdasvc.FaultSpec{Function: a.Fault.Function, After: a.Fault.After, Count: a.Fault.Count, ErrorType: a.Fault.ErrorType})
			if err != nil {
				q.logf("%s: fault not armed: %v", a, err)
			}
		}
	}
	if len(st.Actions) == 1 {
		q.do(st.Actions[0])
		return
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, a := range st.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			q.do(a)
		}()
	}
	close(gate)
	wg.Wait()
}

// do runs one action and records what it started.
func (q *seqRun) do(a Action) {
	if a.Actor == Schedule {
		q.schedule(a)
		return
	}
	if a.Tenant < 0 || a.Tenant >= len(q.tenants) {
		q.logf("%s: no such tenant", a)
		return
	}
	t := q.tenants[a.Tenant]
	if a.Kind.stripeKind() {
		q.stripe(a, t)
		return
	}
	tok := q.r.operator
	switch a.Actor {
	case Own:
		tok = t.token
	case Metering:
		tok = q.r.metering
	}
	base := "/tenants/" + t.id
	var ans answer
	var err error
	switch a.Kind {
	case Upgrade, Downgrade:
		body := map[string]any{"plan": a.Plan}
		if a.AtPeriodEnd {
			body["at_period_end"] = true
		}
		ans, err = q.r.api.call(q.ctx, http.MethodPost, base+"/"+string(a.Kind), tok, body, nil)
	case Suspend:
		ans, err = q.r.api.call(q.ctx, http.MethodPost, base+"/suspend", tok, map[string]any{"reason": "abuse review (invariants)"}, nil)
	case Reactivate:
		ans, err = q.r.api.call(q.ctx, http.MethodPost, base+"/reactivate", tok, map[string]any{"plan": a.Plan}, nil)
	case Delete:
		ans, err = q.r.api.call(q.ctx, http.MethodDelete, base, tok, nil, nil)
	case Export:
		ans, err = q.r.api.call(q.ctx, http.MethodPost, base+"/exports", tok, nil, nil)
	case ReportUsage:
		ans, err = q.r.api.call(q.ctx, http.MethodPut, base+"/usage", tok,
			map[string]any{"users": a.Usage.Users, "storage_gb": a.Usage.StorageGB, "api_calls_per_month": a.Usage.APICallsPerMonth}, nil)
		if err == nil && ans.Status == http.StatusOK {
			q.mu.Lock()
			t.usage = a.Usage
			q.mu.Unlock()
		}
	case Override:
		body := map[string]any{"reason": "enterprise deal (invariants)"}
		if a.Users != nil {
			body["limits"] = map[string]any{tenant.LimitUsers: *a.Users}
		}
		ans, err = q.r.api.call(q.ctx, http.MethodPut, base+"/overrides", tok, body, nil)
		if err == nil && ans.Status == http.StatusOK {
			q.mu.Lock()
			t.override = a.Users
			q.mu.Unlock()
		}
	case Retry, Resolve:
		cur, gerr := q.r.s.Store().GetTenant(q.ctx, t.id)
		if gerr != nil || cur.Attention == "" {
			q.logf("%s: nothing waits for an operator", a)
			return
		}
		body := map[string]any{"action": "retry"}
		if a.Kind == Resolve {
			body = map[string]any{"action": "resolve", "note": "fixed by hand (invariants)"}
		}
		ans, err = q.r.api.call(q.ctx, http.MethodPost, "/operations/"+cur.Attention+"/retry", tok, body, nil)
		if err == nil && a.Kind == Resolve && ans.Status == http.StatusOK {
			q.mu.Lock()
			t.resolved = true
			q.mu.Unlock()
		}
	default:
		q.logf("%s: unknown action", a)
		return
	}
	if err != nil {
		q.logf("%s: %v", a, err)
		return
	}
	q.logf("%s → %s", a, ans)
	if ans.Status == http.StatusAccepted {
		if id := ans.field("operation_id"); id != "" && a.Kind != Retry {
			q.mu.Lock()
			q.ops[id] = &apiOp{ID: id, Actor: a.Actor, Kind: a.Kind, Tenant: a.Tenant, Plan: a.Plan, Status: ans.field("status"), Step: q.step, Override: t.override}
			q.mu.Unlock()
		}
	}
	q.checkRefusal(a, t, ans)
}

// schedule fires a scheduled function with an event dated now + a.At, as EventBridge
// would, and logs its result.
func (q *seqRun) schedule(a Action) {
	fn := map[Kind]string{DowngradeSweep: "DowngradeSweepFunction", PurgeSweep: "PurgeSweepFunction", Reconcile: "ReconcileFunction"}[a.Kind]
	if fn == "" {
		q.logf("%s: unknown schedule", a)
		return
	}
	res, err := q.invokeScheduled(fn, time.Now().UTC().Add(a.At))
	if err != nil {
		q.logf("%s: %v", a, err)
		return
	}
	q.logf("%s → %s", a, res)
}

func (q *seqRun) invokeScheduled(fn string, at time.Time) (string, error) {
	raw, _ := json.Marshal(events.CloudWatchEvent{Version: "0", ID: fmt.Sprintf("inv-%s-%d", fn, time.Now().UnixNano()), DetailType: "Scheduled Event",
		Source: "aws.events", AccountID: testenv.AccountID, Time: at, Region: testenv.Region, Detail: json.RawMessage("{}")})
	res, err := q.r.s.Lambda.Invoke(q.ctx, fn, raw)
	if err != nil {
		return "", err
	}
	if res.FunctionError != "" {
		return fmt.Sprintf("function error %s: %.200s", res.FunctionError, res.Payload), nil
	}
	return fmt.Sprintf("%.300s", res.Payload), nil
}

// stripe sends one Stripe event about the tenant's current subscription (a
// redelivery resends the event of that number as it was). Stripe says nothing new of a
// subscription it canceled: such an event (created after the cancellation) is not
// sent. A deletion is Stripe's fact from the moment the event is made: from then on
// the proxy answers for that subscription as Stripe does for a canceled one.
func (q *seqRun) stripe(a Action, t *tstate) {
	q.mu.Lock()
	e := q.events[a.Event]
	q.mu.Unlock()
	if e == nil {
		l := replayStripe(q.r.s.Stripe.Requests(), q.killedCopy())
		sub := l.current(t.id)
		if sub == nil {
			q.logf("%s: the tenant has no subscription in Stripe", a)
			return
		}
		created := q.stripeBase.Add(time.Duration(a.Created) * time.Second)
		if sub.Dead && a.Kind != SubDeleted && !q.createdBeforeDeath(sub.ID, created) {
			q.logf("%s: not sent, Stripe canceled %s", a, sub.ID)
			return
		}
		id := fmt.Sprintf("evt_inv_%d_%d", q.seq.Seed%1_000_000, a.Event)
		payload, err := eventPayload(q.r.root, a.Kind, id, t.id, sub.ID, created)
		if err != nil {
			q.logf("%s: %v", a, err)
			return
		}
		e = &sentEvent{Number: a.Event, ID: id, Kind: a.Kind, Tenant: a.Tenant, Sub: sub.ID, Created: created, Payload: payload}
		q.mu.Lock()
		if prev := q.events[a.Event]; prev != nil { // the same event made at once by a concurrent action
			e = prev
		} else {
			q.events[a.Event] = e
		}
		q.mu.Unlock()
		if a.Kind == SubDeleted {
			q.mu.Lock()
			first := !q.killed[sub.ID]
			q.killed[sub.ID] = true
			q.mu.Unlock()
			if first {
				if err := canceledStub(q.ctx, q.r.s, sub); err != nil {
					q.logf("%s: %v", a, err)
				}
			}
		}
	}
	ans := q.deliver(e)
	q.logf("%s → %s %s", a, e.Sub, ans)
}

// createdBeforeDeath reports whether an event created at created is older than the
// deletion event of sub: Stripe may deliver it late, but not make it after.
func (q *seqRun) createdBeforeDeath(sub string, created time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.events {
		if e.Sub == sub && e.Kind == SubDeleted && created.Before(e.Created) {
			return true
		}
	}
	return false
}

func (q *seqRun) killedCopy() map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]bool, len(q.killed))
	for k, v := range q.killed {
		out[k] = v
	}
	return out
}

// deliver POSTs the event to the webhook, signed now with the endpoint's secret, as
// Stripe does; an answer other than 2xx leaves it pending for Stripe's retry.
func (q *seqRun) deliver(e *sentEvent) answer {
	sig := stack.SignStripeEvent(e.Payload, stack.StripeWebhookTestSecret, time.Now())
	ans, err := q.r.api.call(q.ctx, http.MethodPost, "/webhooks/stripe", "", e.Payload, map[string]string{"Stripe-Signature": sig})
	if err != nil {
		ans = answer{Status: 0, Body: []byte(err.Error())}
	}
	q.mu.Lock()
	e.Answers = append(e.Answers, ans)
	e.Pending = ans.Status/100 != 2
	q.mu.Unlock()
	return ans
}

// maxDeliveries bounds Stripe's retries of one event in one settle: Stripe retries
// for days, so an event still refused stays pending for the next step's settle.
const maxDeliveries = 3

// settle waits until the sequence's tenants are quiescent: no execution running, the
// faults the step armed cleared, Stripe's retries of refused deliveries made, and no
// operation of theirs RUNNING (the reconciler is fired once, as its 5-minute schedule
// would, when one is). A tenant that does not get there in time is a violation (Q).
func (q *seqRun) settle() error {
	deadline := time.Now().Add(q.r.cfg.SettleTimeout)
	reconciled := false
	retries := map[int]int{}
	for {
		if err := q.waitExecutions(deadline); err != nil {
			if q.ctx.Err() != nil {
				return q.ctx.Err()
			}
			q.violate("Q", nil, "", "%v", err)
			return nil
		}
		q.r.s.Lambda.ClearFaults()
		progressed := false
		for _, e := range q.pending() {
			if retries[e.Number] >= maxDeliveries {
				continue
			}
			retries[e.Number]++
			ans := q.deliver(e)
			q.logf("stripe retries event %d (%s %s) → %s", e.Number, e.Kind, e.Sub, ans)
			if ans.Status/100 == 2 {
				progressed = true
			}
		}
		if progressed {
			continue
		}
		running, err := q.runningOps()
		if err != nil {
			return err
		}
		if len(running) == 0 {
			return nil
		}
		if !reconciled {
			reconciled = true
			res, err := q.invokeScheduled("ReconcileFunction", time.Now().UTC())
			q.logf("the reconciler's schedule fires (operations %v RUNNING, no execution) → %s %v", running, res, err)
			continue
		}
		for _, id := range running {
			q.violate("Q", nil, id, "operation %s is RUNNING, its execution has ended, and the reconciler did not end it", id)
		}
		return nil
	}
}

// pending returns the events Stripe still has to deliver, in order.
func (q *seqRun) pending() []*sentEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*sentEvent
	for _, e := range q.events {
		if e.Pending {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// waitExecutions waits until no execution of any state machine is running.
func (q *seqRun) waitExecutions(deadline time.Time) error {
	client := q.r.s.SFNClient()
	for {
		var running []string
		for _, arn := range q.r.s.StateMachines {
			out, err := client.ListExecutions(q.ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn), StatusFilter: sfntypes.ExecutionStatusRunning})
			if err != nil {
				return fmt.Errorf("list executions: %w", err)
			}
			for _, e := range out.Executions {
				running = append(running, aws.ToString(e.Name))
			}
		}
		if len(running) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("executions %v still running after %s", running, q.r.cfg.SettleTimeout)
		}
		select {
		case <-q.ctx.Done():
			return q.ctx.Err()
		case <-time.After(40 * time.Millisecond):
		}
	}
}

// opIDs lists the ids of every operation record of the sequence's tenants.
func (q *seqRun) opIDs() (map[string]string, error) {
	var ids []types.AttributeValue
	for _, t := range q.tenants {
		ids = append(ids, &types.AttributeValueMemberS{Value: t.id})
	}
	vals := map[string]types.AttributeValue{":op": &types.AttributeValueMemberS{Value: "OP#"}}
	var in []string
	for i, v := range ids {
		k := fmt.Sprintf(":t%d", i)
		vals[k] = v
		in = append(in, k)
	}
	p := dynamodb.NewScanPaginator(q.r.s.DynamoDB(), &dynamodb.ScanInput{
		TableName:                 aws.String(q.r.s.TenantsTable),
		FilterExpression:          aws.String("begins_with(pk, :op) AND tenant_id IN (" + strings.Join(in, ", ") + ")"),
		ExpressionAttributeValues: vals,
		ProjectionExpression:      aws.String("operation_id, tenant_id"),
		ConsistentRead:            aws.Bool(true),
	})
	out := map[string]string{}
	for p.HasMorePages() {
		page, err := p.NextPage(q.ctx)
		if err != nil {
			return nil, fmt.Errorf("scan operations: %w", err)
		}
		for _, it := range page.Items {
			id, _ := it["operation_id"].(*types.AttributeValueMemberS)
			tid, _ := it["tenant_id"].(*types.AttributeValueMemberS)
			if id != nil && tid != nil {
				out[id.Value] = tid.Value
			}
		}
	}
	return out, nil
}

// runningOps lists the RUNNING operations of the sequence's tenants.
func (q *seqRun) runningOps() ([]string, error) {
	ids, err := q.opIDs()
	if err != nil {
		return nil, err
	}
	var out []string
	for id := range ids {
		op, err := q.r.s.Store().GetOperation(q.ctx, id)
		if err != nil {
			continue // purged meanwhile
		}
		if op.Status == tenant.OpRunning {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// observe reads every tenant, its audit trail and its operations, and Stripe's side.
func (q *seqRun) observe() error {
	st := q.r.s.Store()
	ids, err := q.opIDs()
	if err != nil {
		return err
	}
	for _, t := range q.tenants {
		v, err := st.GetTenant(q.ctx, t.id)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.id, err)
		}
		trail, err := st.Audit(q.ctx, t.id)
		if err != nil {
			return fmt.Errorf("audit of %s: %w", t.id, err)
		}
		sort.SliceStable(trail, func(i, j int) bool { return trail[i].Version < trail[j].Version })
		t.view, t.trail, t.ops = v, trail, map[string]*tenant.Operation{}
		for id, tid := range ids {
			if tid != t.id {
				continue
			}
			if op, err := st.GetOperation(q.ctx, id); err == nil {
				t.ops[id] = op
			}
		}
	}
	q.ledger = replayStripe(q.r.s.Stripe.Requests(), q.killedCopy())
	return nil
}

// view is what the generator sees of a tenant.
type view struct {
	State     tenant.State
	Plan      tenant.Plan
	Usage     tenant.Usage
	Attention bool
	Pending   bool // a period-end change is scheduled
}

func (q *seqRun) views() []view {
	out := make([]view, len(q.tenants))
	for i, t := range q.tenants {
		if t.view == nil {
			continue
		}
		out[i] = view{State: t.view.State, Plan: t.view.Plan, Usage: t.usage, Attention: t.view.Attention != "", Pending: t.view.PendingChange != nil}
	}
	return out
}
