// Package loadgen drives lifecycle load through the local stack and checks what it
// left behind. Many tenants get a seeded mix of upgrades, downgrades, suspensions,
// reactivations, deletions and exports, sent through the real api bootstrap with up to
// Concurrency requests in flight, each one followed to its terminal status on the local
// Step Functions service; optionally the local Lambda service fails a share of the
// step invocations at random (lambdasvc.Chaos). Afterwards every tenant is checked
// against a sequential replay of its accepted operations through a model of the flows
// (Model): final state and plan, audit transitions, entitlements, the Stripe price the
// flows last set, nothing left RUNNING or in a busy state, and, after one run of the
// reconciler, nothing open without a live execution.
//
// The operations of one tenant are serialized, as the API's reservation serializes
// them: each one starts when the previous one has ended, so the seed decides every
// tenant's sequence whatever the scheduling across tenants, and a failure is
// reproduced by running again with the seed the report prints. On top of that a share
// of the requests is sent twice, the second while the first runs or at the same
// moment: the API reserves the tenant for the first operation before it starts it, so
// the second is a 409 naming it (of two sent at the same moment, either may win).
//
// The bench sections lifecycle-load and chaos (internal/bench) and the test of this
// package run it, at two sizes.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Config sizes one load.
type Config struct {
	// Ops is how many lifecycle requests the load sends (duplicates not counted);
	// Tenants how many tenants share them, evenly; Concurrency how many requests are
	// in flight at most (each followed to its end).
	Ops, Tenants, Concurrency int
	// Seed decides the tenants and every tenant's requests (each tenant has its own
	// stream, so scheduling across tenants changes nothing: without faults a seed
	// replays the same requests and outcomes), and seeds Chaos's streams (0: a seed is
	// drawn; the report has it).
	Seed int64
	// Prefix names the tenants "<prefix>-<nnn>" (default "load"); two loads on one
	// stack need two prefixes.
	Prefix string
	// Chaos, when set, is armed on the stack's Lambda service for the load (its Seed
	// defaults to Seed; ApiFunction and ReconcileFunction are never faulted: the load
	// itself calls them, no retry policy does).
	Chaos *lambdasvc.Chaos
	// DuplicateRate is the share of accepted operations that get a duplicate request
	// while they run (default 0.1; negative: none).
	DuplicateRate float64
	// InvalidRate is the share of requests drawn from every request rather than the
	// ones the model says start a flow (default 0.08; negative: none).
	InvalidRate float64
	// Mix weighs the kinds of request (default DefaultMix).
	Mix Mix
	// Timeout bounds the whole load (default 10 minutes).
	Timeout time.Duration
	// Logf, when set, receives a few progress lines.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Tenants <= 0 {
		c.Tenants = 1
	}
	if c.Ops <= 0 {
		c.Ops = c.Tenants
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Prefix == "" {
		c.Prefix = "load"
	}
	if c.DuplicateRate == 0 {
		c.DuplicateRate = 0.1
	}
	if c.InvalidRate == 0 {
		c.InvalidRate = 0.08
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// The checks a Violation names.
const (
	// CheckPrediction: an answer (202/409/422) the model did not predict; without
	// chaos also an operation that ended otherwise than predicted.
	CheckPrediction = "prediction"
	// CheckState and CheckPlan: the final state or plan differs from the replay.
	CheckState = "state"
	CheckPlan  = "plan"
	// CheckEntitlements: the entitlements do not match the state and plan.
	CheckEntitlements = "entitlements"
	// CheckPrice: the subscription's price (or cancel-at-period-end flag), as the
	// flows last set it in Stripe, does not match the plan (and state).
	CheckPrice = "price"
	// CheckAudit: the audit transitions differ from the replay's.
	CheckAudit = "audit"
	// CheckRunning: an operation (or export) not in a terminal status after the load.
	CheckRunning = "running"
	// CheckTransient: a tenant in a busy state, held by an operation or waiting for an
	// operator after the load.
	CheckTransient = "transient"
	// CheckDuplicate: an operation and its duplicate both succeeded.
	CheckDuplicate = "duplicate"
	// CheckError: the load could not do something it had to (an API error, a timeout).
	CheckError = "error"
	// CheckOpen: after one reconcile period, an operation or export job of the load's
	// tenants that the Open index still holds although its execution does not exist
	// or has ended.
	CheckOpen = "open_without_execution"
)

// Checks lists the checks in report order.
var Checks = []string{CheckPrediction, CheckState, CheckPlan, CheckEntitlements, CheckPrice, CheckAudit, CheckRunning, CheckTransient, CheckDuplicate, CheckError, CheckOpen}

// Violation is one integrity failure.
type Violation struct {
	Check, Tenant, Operation, Detail string
}

func (v Violation) String() string {
	s := v.Check + ": " + v.Tenant
	if v.Operation != "" {
		s += " " + v.Operation
	}
	return s + ": " + v.Detail
}

// DuplicateStats counts the duplicate requests: the same request again, 0-300 ms
// after the first was accepted or at the same time as the first.
type DuplicateStats struct {
	// Sent duplicates; Refused answered 409 or 422 (the first had reserved the
	// tenant, or had already finished); Accepted answered 202 (the first was refused,
	// or had ended). WonByDuplicate are the pairs where the duplicate succeeded.
	Sent, Refused, Accepted, WonByDuplicate int
}

// Report is what one load did and found.
type Report struct {
	Config Config
	// Requests are the lifecycle requests sent, by kind in ByKind; Accepted those
	// answered 202, Refused the others by status.
	Requests int
	ByKind   map[Kind]int
	Accepted int
	Refused  map[int]int
	// Succeeded and Failed are how the accepted operations (duplicates included)
	// ended; ExportsFailed is the part of Failed that were exports, LostClaim the part
	// that were one of a duplicated pair failing without claiming the tenant (the
	// other one had it). Failed - ExportsFailed - LostClaim is what faults failed.
	Succeeded, Failed, ExportsFailed, LostClaim int
	// Latencies are accept → terminal status of every accepted request (duplicates
	// not included), as the API reported the terminal status.
	Latencies []time.Duration
	// Elapsed is from the first request to the last terminal status.
	Elapsed    time.Duration
	Duplicates DuplicateStats
	// Faults are what Chaos injected (zero without chaos); FaultsByFunction the same
	// per function.
	Faults           lambdasvc.ChaosStats
	FaultsByFunction map[string]lambdasvc.ChaosStats
	// Reconciled counts the tenants the ReconcileFunction run by the load released
	// (an execution that ended without releasing its tenant: in AWS the 5-minute
	// schedule does it); Retried the operations that needed attention and were retried
	// by the operator route. Both stay 0 unless a flow exhausted its retries;
	// Settlements says for each what the flow had left and why (without chaos any is
	// a violation: nothing should need them).
	Reconciled, Retried int
	Settlements         []string
	// FinalStates counts the tenants by final state.
	FinalStates map[tenant.State]int
	Violations  []Violation
}

// Count returns the number of violations of one check.
func (r *Report) Count(check string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Check == check {
			n++
		}
	}
	return n
}

// OpsPerSecond is the accepted operations that ended per second of Elapsed.
func (r *Report) OpsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Latency is the q-quantile (0..1, nearest rank) of Latencies.
func (r *Report) Latency(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Summary is a few lines for logs.
func (r *Report) Summary() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "seed %d: %d requests on %d tenants, %d concurrent, chaos %v: %d accepted, refused %v; %d succeeded, %d failed (%d exports, %d duplicates that lost the claim); %.1f s, %.2f ops/s\n",
		c.Seed, r.Requests, c.Tenants, c.Concurrency, c.Chaos != nil, r.Accepted, r.Refused, r.Succeeded, r.Failed, r.ExportsFailed, r.LostClaim, r.Elapsed.Seconds(), r.OpsPerSecond())
	fmt.Fprintf(&b, "latency p50 %s, p99 %s, max %s; by kind %v; duplicates %+v; faults %+v; reconciled %d, retried %d; final states %v\n",
		r.Latency(0.5).Round(time.Millisecond), r.Latency(0.99).Round(time.Millisecond), r.Latency(1).Round(time.Millisecond),
		r.ByKind, r.Duplicates, r.Faults, r.Reconciled, r.Retried, r.FinalStates)
	counts := []string{}
	for _, ch := range Checks {
		counts = append(counts, fmt.Sprintf("%s %d", ch, r.Count(ch)))
	}
	fmt.Fprintf(&b, "violations: %s", strings.Join(counts, ", "))
	return b.String()
}

// opRun is one accepted request and what became of it.
type opRun struct {
	req      Request
	id       string // operation id, or export id
	dup      bool   // a duplicate of the operation accepted before it
	accepted time.Time
	ended    time.Time
	view     opView
	// record is the operation's record after the load (nil for exports).
	record *tenant.Operation
}

func (o *opRun) succeeded() bool { return o.view.succeeded() }

// claimed reports whether the operation claimed its tenant (the claim records where
// the tenant was).
func (o *opRun) claimed() bool {
	if o.record != nil {
		return o.record.PreviousState != ""
	}
	return o.view.PreviousState != ""
}

func (o *opRun) attempts() int {
	if o.record != nil {
		return o.record.Attempt + 1
	}
	return o.view.Attempt + 1
}

// tenantRun is one tenant of the load: its model (replayed from what its operations
// did), its random stream, and its accepted operations in acceptance order.
type tenantRun struct {
	id      string
	initial Model
	model   Model
	rng     *rand.Rand
	left    int
	ops     []*opRun
}

// gen is one running load.
type gen struct {
	cfg     Config
	s       *stack.Stack
	api     *api
	store   *store.Store
	catalog *tenant.Catalog
	prices  map[tenant.Plan]string
	waiters *waiters

	mu     sync.Mutex
	rep    *Report
	last   time.Time
	reconc sync.Mutex // one ReconcileFunction run at a time
}

func (g *gen) violate(check, tenantID, opID, format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rep.Violations = append(g.rep.Violations, Violation{Check: check, Tenant: tenantID, Operation: opID, Detail: fmt.Sprintf(format, args...)})
}

// Run runs one load on s and checks it. The error is for a load that could not run
// (setup failed, ctx ended); integrity failures are the report's Violations.
func Run(ctx context.Context, s *stack.Stack, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	rep := &Report{Config: cfg, ByKind: map[Kind]int{}, Refused: map[int]int{}, FinalStates: map[tenant.State]int{}}
	prices, err := s.PriceIDs()
	if err != nil {
		return rep, err
	}
	g := &gen{cfg: cfg, s: s, api: &api{s: s}, store: s.Store(), catalog: tenant.DefaultCatalog(), prices: prices, rep: rep}
	g.waiters = newWaiters()
	for _, fn := range endSteps {
		if _, err := s.Template.Function(fn); err != nil {
			return rep, fmt.Errorf("end step %s: %w", fn, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	runs, err := g.createTenants(ctx)
	if err != nil {
		return rep, err
	}
	stop := s.Lambda.Observe(g.waiters.observe)
	defer stop()
	if cfg.Chaos != nil {
		c := *cfg.Chaos
		if c.Seed == 0 {
			c.Seed = cfg.Seed
		}
		c.Except = append(slices.Clone(c.Except), "ApiFunction", "ReconcileFunction")
		if err := s.Lambda.SetChaos(c); err != nil {
			return rep, err
		}
		defer s.Lambda.ClearChaos()
	}
	cfg.Logf("loadgen: seed %d: %d requests on %d tenants, %d concurrent, chaos %v", cfg.Seed, cfg.Ops, cfg.Tenants, cfg.Concurrency, cfg.Chaos != nil)

	start := time.Now()
	g.drive(ctx, runs)
	if rep.Elapsed = g.last.Sub(start); g.last.IsZero() {
		rep.Elapsed = time.Since(start)
	}
	if cfg.Chaos != nil {
		rep.Faults, rep.FaultsByFunction = s.Lambda.ChaosStats()
		s.Lambda.ClearChaos()
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("load (seed %d): %w", cfg.Seed, err)
	}
	cfg.Logf("loadgen: seed %d: load done in %s; checking", cfg.Seed, rep.Elapsed.Round(time.Millisecond))
	if err := g.verify(ctx, runs); err != nil {
		return rep, fmt.Errorf("verify (seed %d): %w", cfg.Seed, err)
	}
	return rep, nil
}

// createTenants writes the tenants (ACTIVE, each with its entitlements and a
// subscription id stripe-mock accepts) and deals out the requests.
func (g *gen) createTenants(ctx context.Context) ([]*tenantRun, error) {
	cfg := g.cfg
	runs := make([]*tenantRun, cfg.Tenants)
	periodEnd := time.Now().UTC().AddDate(0, 0, 15).Truncate(time.Second)
	for i := range runs {
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)+1))
		m, err := newModel(g.catalog, rng)
		if err != nil {
			return nil, err
		}
		left := cfg.Ops / cfg.Tenants
		if i < cfg.Ops%cfg.Tenants {
			left++
		}
		runs[i] = &tenantRun{id: fmt.Sprintf("%s-%03d", cfg.Prefix, i), initial: m, model: m, rng: rng, left: left}
	}
	err := parallel(ctx, 8, len(runs), func(i int) error {
		tr := runs[i]
		t := &tenant.Tenant{ID: tr.id, Name: "Load " + tr.id, Email: "billing@" + tr.id + ".example", Plan: tr.initial.Plan, State: tenant.Active,
			Usage: tr.initial.Usage, Billing: tenant.BillingRef{CustomerID: "cus_" + tr.id, SubscriptionID: "sub_" + tr.id, CurrentPeriodEnd: &periodEnd}}
		if _, err := g.store.CreateTenant(ctx, t, store.Actor{Who: "system:loadgen", Reason: "load tenant"}); err != nil {
			return fmt.Errorf("create %s: %w", tr.id, err)
		}
		limits, _ := g.catalog.Limits(t.Plan)
		if _, err := g.store.PutEntitlements(ctx, &tenant.Entitlements{TenantID: tr.id, Plan: t.Plan, Limits: limits, EventPublished: true}, 0); err != nil {
			return fmt.Errorf("entitlements of %s: %w", tr.id, err)
		}
		return nil
	})
	return runs, err
}

// parallel runs f(0..n-1) on at most k goroutines and returns the first error.
func parallel(ctx context.Context, k, n int, f func(i int) error) error {
	var mu sync.Mutex
	var first error
	next := 0
	var wg sync.WaitGroup
	for range min(k, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// drive runs the requests: Concurrency workers take a tenant whose previous operation
// has ended, run its next request to its end, and hand it back while it has requests
// left, so every tenant advances in turn and one tenant never has two of the load's
// requests in flight (besides a duplicate).
func (g *gen) drive(ctx context.Context, runs []*tenantRun) {
	ready := make(chan *tenantRun, len(runs))
	var pending sync.WaitGroup
	for _, tr := range runs {
		if tr.left > 0 {
			pending.Add(1)
			ready <- tr
		}
	}
	go func() { pending.Wait(); close(ready) }()
	var workers sync.WaitGroup
	for range g.cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for tr := range ready {
				if ctx.Err() == nil {
					g.step(ctx, tr)
				}
				if tr.left--; tr.left > 0 && ctx.Err() == nil {
					ready <- tr
				} else {
					pending.Done()
				}
			}
		}()
	}
	workers.Wait()
}

// step sends one request for tr (and maybe its duplicate), follows what it started
// to its end, settles the tenant if a flow left it needing what AWS would run, and
// replays the outcome into tr's model.
func (g *gen) step(ctx context.Context, tr *tenantRun) {
	req := tr.model.Pick(g.catalog, tr.rng, g.cfg.InvalidRate, g.cfg.Mix)
	want := tr.model.Answer(g.catalog, req)
	// A duplicate goes 0-300 ms after the first request was accepted, or (a quarter of
	// them) at the same time as the first: a double click, whose two requests both
	// pass the API's checks and race for the claim.
	dup, concurrent := false, false
	var dupDelay time.Duration
	if OperationKind(req.Kind) != "" && want == http.StatusAccepted && tr.rng.Float64() < g.cfg.DuplicateRate {
		dup = true
		d := tr.rng.IntN(400) - 100
		concurrent, dupDelay = d < 0, time.Duration(max(d, 0))*time.Millisecond
	}
	type sent struct {
		status int
		id     string
		body   []byte
		err    error
		at     time.Time
	}
	send := func() sent {
		st, id, body, err := g.api.start(ctx, tr.id, req)
		return sent{st, id, body, err, time.Now()}
	}
	var first, second sent
	switch {
	case concurrent:
		var both sync.WaitGroup
		both.Add(1)
		go func() { defer both.Done(); second = send() }()
		first = send()
		both.Wait()
	default:
		first = send()
		if dup && first.status == http.StatusAccepted {
			select {
			case <-time.After(dupDelay):
			case <-ctx.Done():
			}
			second = send()
		}
	}
	dupSent := dup && (concurrent || first.status == http.StatusAccepted)

	g.mu.Lock()
	g.rep.Requests++
	g.rep.ByKind[req.Kind]++
	if first.status == http.StatusAccepted {
		g.rep.Accepted++
	} else if first.err == nil {
		g.rep.Refused[first.status]++
	}
	if dupSent {
		g.rep.Duplicates.Sent++
		switch second.status {
		case http.StatusAccepted:
			g.rep.Duplicates.Accepted++
		case http.StatusConflict, http.StatusUnprocessableEntity:
			g.rep.Duplicates.Refused++
		}
	}
	g.mu.Unlock()
	switch {
	case first.err != nil:
		g.violate(CheckError, tr.id, "", "%s: %v", req, first.err)
	case first.status == want:
	case concurrent && first.status == http.StatusConflict && second.status == http.StatusAccepted:
		// Its twin claimed the tenant before this one was even checked.
	default:
		g.violate(CheckPrediction, tr.id, first.id, "%s on %s %s: answered %d, the model says %d: %s", req, tr.model.State, tr.model.Plan, first.status, want, first.body)
	}
	var ops []*opRun
	if first.status == http.StatusAccepted {
		ops = append(ops, &opRun{req: req, id: first.id, accepted: first.at})
	}
	if dupSent {
		switch {
		case second.err != nil:
			g.violate(CheckError, tr.id, first.id, "duplicate %s: %v", req, second.err)
		case second.status == http.StatusAccepted:
			ops = append(ops, &opRun{req: req, id: second.id, dup: true, accepted: second.at})
		case second.status != http.StatusConflict && second.status != http.StatusUnprocessableEntity:
			g.violate(CheckPrediction, tr.id, first.id, "duplicate %s answered %d: %s", req, second.status, second.body)
		}
	}
	if len(ops) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, o := range ops {
		wg.Add(1)
		go func() { defer wg.Done(); g.follow(ctx, tr, o) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// A flow that failed may have left what AWS would settle (a committed one
	// released its tenant in the transaction that ended it).
	for _, o := range ops {
		if !o.succeeded() {
			g.settle(ctx, tr, ops)
			break
		}
	}
	for _, o := range ops {
		g.mu.Lock()
		if o.succeeded() {
			g.rep.Succeeded++
		} else {
			g.rep.Failed++
			if req.Kind == Export {
				g.rep.ExportsFailed++
			}
		}
		if !o.dup {
			g.rep.Latencies = append(g.rep.Latencies, o.ended.Sub(o.accepted))
		}
		if o.ended.After(g.last) {
			g.last = o.ended
		}
		g.mu.Unlock()
		tr.ops = append(tr.ops, o)
		tr.model = tr.model.After(o.req, o.succeeded(), o.claimed())
	}
	g.judge(tr, ops)
}

// judge checks the outcome of one request (and its duplicate) against the model.
func (g *gen) judge(tr *tenantRun, ops []*opRun) {
	op := ops[0]
	won := 0
	for _, o := range ops {
		if o.succeeded() {
			won++
		}
	}
	if len(ops) == 2 {
		g.mu.Lock()
		if ops[1].succeeded() {
			g.rep.Duplicates.WonByDuplicate++
		}
		for _, o := range ops {
			if !o.succeeded() && !o.claimed() && won == 1 {
				g.rep.LostClaim++
			}
		}
		g.mu.Unlock()
		if won == 2 {
			g.violate(CheckDuplicate, tr.id, op.id, "%s and its duplicate %s both succeeded", op.req, ops[1].id)
		}
		for _, o := range ops {
			if !o.succeeded() && o.claimed() && g.cfg.Chaos == nil {
				g.violate(CheckPrediction, tr.id, o.id, "%s of a duplicated pair failed after claiming the tenant (%s: %s)", o.req, o.view.Status, o.view.Error)
			}
		}
	}
	if g.cfg.Chaos != nil {
		return
	}
	// Without faults every accepted request succeeds, exactly once for a pair.
	if won != 1 {
		g.violate(CheckPrediction, tr.id, op.id, "%s: %d of %d succeeded (%s %s), the model says 1", op.req, won, len(ops), op.view.Status, op.view.Error)
	}
}

// follow waits until the API reports o terminal.
func (g *gen) follow(ctx context.Context, tr *tenantRun, o *opRun) {
	v, at, err := g.await(ctx, tr.id, o.req, o.id)
	o.view, o.ended = v, at
	if err != nil {
		g.violate(CheckRunning, tr.id, o.id, "%s did not end: %v", o.req, err)
	}
}

// fallbackPoll is how often an operation is read through the API without one of its
// flow's end steps having run (an execution that died before them).
const fallbackPoll = 10 * time.Second

// endSteps are the functions that end a flow, with the commit or the release in one
// transaction with the operation's final status (the export's: its job's). Each time
// one of them ends for an operation, the load reads the operation: no polling.
var endSteps = []string{
	"PlanCommitFunction", "PlanReleaseFunction",
	"LifecycleFinishFunction", "LifecycleReleaseFunction",
	"ExportFinalizeFunction", "ExportReleaseFunction",
}

// await waits until the API reports operation (or export) id terminal: woken by its
// end steps (lambdasvc.Observe), it reads the record (one GetItem) and, once that has
// ended, the API's answer, which the latency is measured to; every fallbackPoll it
// asks the API anyway. An export has no operation record: the API is asked each time.
func (g *gen) await(ctx context.Context, tenantID string, req Request, id string) (opView, time.Time, error) {
	woken := g.waiters.add(id)
	defer g.waiters.remove(id)
	viaAPI := false
	for {
		if viaAPI || req.Kind == Export || g.recordDone(ctx, id) {
			v, err := g.api.get(ctx, tenantID, req, id)
			at := time.Now()
			if err == nil && v.terminal() {
				return v, at, nil
			}
			if err != nil && ctx.Err() != nil {
				return v, at, err
			}
		}
		select {
		case <-woken:
			viaAPI = false
		case <-time.After(fallbackPoll):
			viaAPI = true
		case <-ctx.Done():
			return opView{}, time.Now(), ctx.Err()
		}
	}
}

// recordDone reports whether the operation's record has ended (true on a read error:
// the API then decides).
func (g *gen) recordDone(ctx context.Context, id string) bool {
	rec, err := g.store.GetOperation(ctx, id)
	return err != nil || rec.Done()
}

// settle does for tr what AWS would do after a flow that ran out of retries: the
// scheduled reconciler releases a tenant whose execution ended without releasing it,
// and an operator retries an operation that needs attention. Each is counted; the
// load's checks then judge the result as for any other operation.
func (g *gen) settle(ctx context.Context, tr *tenantRun, ops []*opRun) {
	ours := map[string]*opRun{}
	for _, o := range ops {
		ours[o.id] = o
	}
	for range 4 {
		t, err := g.store.GetTenant(ctx, tr.id)
		if err != nil {
			g.violate(CheckError, tr.id, "", "read tenant: %v", err)
			return
		}
		why := ""
		if o := ours[t.Operation]; o != nil {
			why = fmt.Sprintf("%s %s ended %s (%s) with %s still %s and held", o.req, o.id, o.view.Status, o.view.Error, tr.id, t.State)
		} else if o := ours[t.Attention]; o != nil {
			why = fmt.Sprintf("%s %s ended %s (%s) needing attention", o.req, o.id, o.view.Status, o.view.Error)
		}
		if why != "" {
			g.mu.Lock()
			g.rep.Settlements = append(g.rep.Settlements, why)
			g.mu.Unlock()
			if g.cfg.Chaos == nil {
				g.violate(CheckPrediction, tr.id, t.Operation+t.Attention, "without faults a flow needed the reconciler or an operator: %s", why)
			}
		}
		switch {
		case t.Operation != "":
			if ours[t.Operation] == nil {
				g.violate(CheckTransient, tr.id, t.Operation, "held by an operation the load did not start")
				return
			}
			g.reconc.Lock()
			res, err := g.api.reconcile(ctx)
			g.reconc.Unlock()
			if err != nil {
				g.violate(CheckError, tr.id, t.Operation, "reconcile: %v", err)
				return
			}
			g.mu.Lock()
			if slices.Contains(res.Released, tr.id) {
				g.rep.Reconciled++
			}
			g.mu.Unlock()
			g.cfg.Logf("loadgen: %s held by %s after its execution ended: reconciled %+v", tr.id, t.Operation, res)
		case t.Attention != "":
			o := ours[t.Attention]
			if o == nil {
				g.violate(CheckTransient, tr.id, t.Attention, "waiting for an operation the load did not start")
				return
			}
			g.cfg.Logf("loadgen: %s: %s needs attention; operator retry", tr.id, t.Attention)
			if err := g.api.retry(ctx, o.id); err != nil {
				g.violate(CheckError, tr.id, o.id, "operator retry: %v", err)
				return
			}
			g.mu.Lock()
			g.rep.Retried++
			g.mu.Unlock()
			v, at, err := g.await(ctx, tr.id, o.req, o.id)
			if err != nil {
				g.violate(CheckRunning, tr.id, o.id, "operator retry did not end: %v", err)
				return
			}
			o.view, o.ended = v, at
		default:
			return
		}
	}
	g.violate(CheckTransient, tr.id, "", "still held or waiting for attention after the reconciler and operator retries")
}

// waiters wakes the goroutines awaiting an operation when an end step of its flow
// ends. An end step that ran before anyone awaited its operation (the flow was faster
// than the 202) is remembered, so the first await is woken at once.
type waiters struct {
	mu    sync.Mutex
	m     map[string]chan struct{}
	early map[string]bool
	ends  map[string]bool // endSteps
}

func newWaiters() *waiters {
	w := &waiters{m: map[string]chan struct{}{}, early: map[string]bool{}, ends: map[string]bool{}}
	for _, fn := range endSteps {
		w.ends[fn] = true
	}
	return w
}

func (w *waiters) add(id string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{}, 1)
	if w.early[id] {
		ch <- struct{}{}
		delete(w.early, id)
	}
	w.m[id] = ch
	return ch
}

func (w *waiters) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// observe is the lambdasvc observer: an end step's event names its operation
// (flow.Ref, also the export's).
func (w *waiters) observe(inv lambdasvc.Invocation) {
	if !w.ends[inv.Function] {
		return
	}
	var ref struct {
		OperationID string `json:"operation_id"`
	}
	if json.Unmarshal(inv.Payload, &ref) != nil || ref.OperationID == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := w.m[ref.OperationID]
	if ch == nil {
		w.early[ref.OperationID] = true
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}
