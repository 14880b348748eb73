package meter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/lambdasvc"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// AdminPrincipal is the IAM user of the stack itself (seeding, resets, tests' reads):
// not part of any flow's figures.
const AdminPrincipal = "devstack-admin"

// Meter measures what a stack does between Start and Stop. It owns the stack's
// counters meanwhile (it resets the emulator's meter and the Lambda service's
// statistics), so runs on one stack must not overlap.
type Meter struct {
	s     *stack.Stack
	start time.Time

	mu     sync.Mutex
	direct map[string][]time.Duration // durations of the invocations made through Invoke
}

// Start zeroes the stack's counters and starts measuring.
func Start(ctx context.Context, s *stack.Stack) (*Meter, error) {
	if err := ResetUsage(ctx, s.Moto.Endpoint); err != nil {
		return nil, err
	}
	s.Lambda.ResetStats()
	// A millisecond back: the local Step Functions service dates executions in ms.
	return &Meter{s: s, start: time.Now().Add(-time.Millisecond), direct: map[string][]time.Duration{}}, nil
}

// Invoke invokes fn synchronously, as API Gateway, a schedule or Stripe's webhook
// would, and keeps the invocation's duration for the run.
func (m *Meter) Invoke(ctx context.Context, fn string, payload []byte) (lambdasvc.Result, error) {
	res, err := m.s.Lambda.Invoke(ctx, fn, payload)
	if err == nil {
		m.mu.Lock()
		m.direct[fn] = append(m.direct[fn], res.Duration)
		m.mu.Unlock()
	}
	return res, err
}

// Function is what one function did in a run.
type Function struct {
	Invocations int
	ColdStarts  int
	// Durations are those of the invocations the run knows of: the ones made through
	// Invoke and every Step Functions task (from the execution history).
	Durations []time.Duration
	MemoryMB  int
}

// BilledMs is the duration Lambda bills: each invocation rounded up to the ms.
func (f *Function) BilledMs() int64 {
	var ms int64
	for _, d := range f.Durations {
		ms += int64((d + time.Millisecond - 1) / time.Millisecond)
	}
	return ms
}

// GBSeconds is the billed duration times the configured memory.
func (f *Function) GBSeconds() float64 {
	return float64(f.BilledMs()) / 1000 * float64(f.MemoryMB) / 1024
}

// Execution is one Step Functions execution of the run.
type Execution struct {
	ARN, StateMachine, Status string
	// States are the states entered, in order (each a billed transition).
	States []string
	// Retries are task attempts after a state's first: each is billed as a transition
	// too.
	Retries int
}

// Transitions is what Step Functions Standard bills for the execution.
func (e Execution) Transitions() int { return len(e.States) + e.Retries }

// StripeCalls are the Stripe API requests of a run: reads (GET) and writes.
type StripeCalls struct {
	Reads, Writes int
	// Paths counts requests by "METHOD /v1/<resource>".
	Paths map[string]int
}

// Run is everything a Meter counted between Start and Stop.
type Run struct {
	// Functions are by logical id; only the ones that were invoked.
	Functions  map[string]*Function
	Executions []Execution
	// Principals are the emulator's counters by function (the admin left out).
	Principals map[string]Services
	Stripe     StripeCalls
}

// Stop waits for every execution started since Start to end (until ctx is done), then
// reads every counter.
func (m *Meter) Stop(ctx context.Context) (*Run, error) {
	client := m.s.SFNClient()
	execs, err := m.executions(ctx, client)
	if err != nil {
		return nil, err
	}
	fns, err := m.s.Template.Functions()
	if err != nil {
		return nil, err
	}
	memory, byARN := map[string]int{}, map[string]string{}
	for _, f := range fns {
		memory[f.LogicalID] = f.MemorySize
		byARN[f.ARN] = f.LogicalID
	}
	run := &Run{Functions: map[string]*Function{}, Principals: map[string]Services{}, Stripe: StripeCalls{Paths: map[string]int{}}}
	fn := func(id string) *Function {
		if run.Functions[id] == nil {
			run.Functions[id] = &Function{MemoryMB: memory[id]}
		}
		return run.Functions[id]
	}
	for _, e := range execs {
		x, durations, err := history(ctx, client, e, byARN)
		if err != nil {
			return nil, err
		}
		run.Executions = append(run.Executions, x)
		for id, ds := range durations {
			fn(id).Durations = append(fn(id).Durations, ds...)
		}
	}
	m.mu.Lock()
	for id, ds := range m.direct {
		fn(id).Durations = append(fn(id).Durations, ds...)
	}
	m.mu.Unlock()
	for id, st := range m.s.Lambda.Stats() {
		if st.Invocations > 0 {
			fn(id).Invocations, fn(id).ColdStarts = st.Invocations, st.ColdStarts
		}
	}
	usage, err := ReadUsage(ctx, m.s.Moto.Endpoint, false)
	if err != nil {
		return nil, err
	}
	for p, svc := range usage.Principals {
		if p != AdminPrincipal {
			run.Principals[p] = svc
		}
	}
	for _, r := range m.s.Stripe.Requests() {
		if r.Time.Before(m.start) {
			continue
		}
		if r.Method == "GET" {
			run.Stripe.Reads++
		} else {
			run.Stripe.Writes++
		}
		run.Stripe.Paths[r.Method+" "+stripeResource(r.Path)]++
	}
	return run, nil
}

// stripeResource is a Stripe path without its object ids: "/v1/subscriptions/sub_1"
// → "/v1/subscriptions".
func stripeResource(path string) string {
	var keep []string
	for i, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if i > 0 && strings.Contains(part, "_") {
			continue
		}
		keep = append(keep, part)
	}
	return "/" + strings.Join(keep, "/")
}

// executions lists the executions started since Start, once none of them runs.
func (m *Meter) executions(ctx context.Context, client *sfn.Client) ([]sfntypes.ExecutionListItem, error) {
	arns := slices.Sorted(maps.Values(m.s.StateMachines))
	for {
		var out []sfntypes.ExecutionListItem
		running := false
		for _, arn := range arns {
			in := &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)}
			for {
				page, err := client.ListExecutions(ctx, in)
				if err != nil {
					return nil, fmt.Errorf("meter: list executions: %w", err)
				}
				for _, e := range page.Executions {
					if e.StartDate != nil && !e.StartDate.Before(m.start) {
						out = append(out, e)
						running = running || e.Status == sfntypes.ExecutionStatusRunning
					}
				}
				if page.NextToken == nil {
					break
				}
				in.NextToken = page.NextToken
			}
		}
		if !running {
			slices.SortFunc(out, func(a, b sfntypes.ExecutionListItem) int { return a.StartDate.Compare(*b.StartDate) })
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("meter: executions still running: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// history reads one execution's history: the states it entered, its task retries and
// each task's duration (from the function's start to its answer) by function.
func history(ctx context.Context, client *sfn.Client, e sfntypes.ExecutionListItem, byARN map[string]string) (Execution, map[string][]time.Duration, error) {
	x := Execution{ARN: aws.ToString(e.ExecutionArn), StateMachine: stateMachineName(aws.ToString(e.StateMachineArn)), Status: string(e.Status)}
	durations := map[string][]time.Duration{}
	in := &sfn.GetExecutionHistoryInput{ExecutionArn: e.ExecutionArn}
	var (
		function  string
		started   time.Time
		scheduled int // task attempts in the current state
	)
	for {
		page, err := client.GetExecutionHistory(ctx, in)
		if err != nil {
			return x, nil, fmt.Errorf("meter: history of %s: %w", x.ARN, err)
		}
		for _, ev := range page.Events {
			typ := string(ev.Type)
			switch {
			case strings.HasSuffix(typ, "StateEntered"):
				x.States = append(x.States, aws.ToString(ev.StateEnteredEventDetails.Name))
				scheduled = 0
			case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionScheduled:
				if scheduled++; scheduled > 1 {
					x.Retries++
				}
				res := aws.ToString(ev.LambdaFunctionScheduledEventDetails.Resource)
				function = byARN[res]
				if function == "" {
					function = res[strings.LastIndex(res, ":")+1:]
				}
			case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionStarted:
				started = aws.ToTime(ev.Timestamp)
			case ev.Type == sfntypes.HistoryEventTypeLambdaFunctionSucceeded, ev.Type == sfntypes.HistoryEventTypeLambdaFunctionFailed,
				ev.Type == sfntypes.HistoryEventTypeLambdaFunctionTimedOut:
				if !started.IsZero() && function != "" {
					durations[function] = append(durations[function], aws.ToTime(ev.Timestamp).Sub(started))
				}
				started = time.Time{}
			}
		}
		if page.NextToken == nil {
			break
		}
		in.NextToken = page.NextToken
	}
	return x, durations, nil
}

func stateMachineName(arn string) string { return arn[strings.LastIndex(arn, ":")+1:] }

// Invocations is the number of Lambda invocations of the run.
func (r *Run) Invocations() int {
	n := 0
	for _, f := range r.Functions {
		n += f.Invocations
	}
	return n
}

// ColdStarts is the number of function processes the run started.
func (r *Run) ColdStarts() int {
	n := 0
	for _, f := range r.Functions {
		n += f.ColdStarts
	}
	return n
}

// GBSeconds is the run's billed Lambda duration times memory.
func (r *Run) GBSeconds() float64 {
	s := 0.0
	for _, f := range r.Functions {
		s += f.GBSeconds()
	}
	return s
}

// BilledMs is the run's billed Lambda duration.
func (r *Run) BilledMs() int64 {
	var ms int64
	for _, f := range r.Functions {
		ms += f.BilledMs()
	}
	return ms
}

// Transitions is what Step Functions bills for the run's executions.
func (r *Run) Transitions() int {
	n := 0
	for _, e := range r.Executions {
		n += e.Transitions()
	}
	return n
}

// Service sums one service's counters over every function, by action.
func (r *Run) Service(service string) Actions {
	out := Actions{}
	for _, svc := range r.Principals {
		for action, c := range svc[service] {
			sum := out[action]
			sum.Add(c)
			out[action] = sum
		}
	}
	return out
}

// S3 counts the run's S3 requests by class (tier1, tier2, free).
func (r *Run) S3() map[string]int {
	out := map[string]int{}
	for _, c := range r.Service("s3") {
		out[c.Class] += c.Requests
	}
	return out
}
