package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// verify checks every tenant after the load, that no operation of the load's tenants
// is left RUNNING, and that after one reconcile period nothing of theirs is open
// without a live execution.
func (g *gen) verify(ctx context.Context, runs []*tenantRun) error {
	bySub := map[string][]testenv.StripeRequest{}
	for _, r := range g.s.Stripe.Requests() {
		if id, ok := strings.CutPrefix(r.Path, "/v1/subscriptions/"); ok && r.Method == http.MethodPost && id != "" && !strings.Contains(id, "/") {
			bySub[id] = append(bySub[id], r)
		}
	}
	if err := parallel(ctx, 8, len(runs), func(i int) error {
		tr := runs[i]
		return g.verifyTenant(ctx, tr, bySub)
	}); err != nil {
		return err
	}
	if err := g.scanRunning(ctx); err != nil {
		return err
	}
	return g.checkOpen(ctx)
}

// reconcilePeriod is the reconciler's schedule (template.yaml): checkOpen runs it as
// it would run one period after the load, past the grace a start is given.
const reconcilePeriod = 5 * time.Minute

// machines are the state machines (template logical ids) of the operation kinds.
var machines = map[string]string{
	tenant.KindUpgrade: "UpgradeStateMachine", tenant.KindDowngrade: "DowngradeStateMachine",
	tenant.KindDeletion: "DeletionStateMachine", tenant.KindReactivation: "ReactivationStateMachine",
	tenant.KindSuspension: "SuspensionStateMachine", tenant.KindPurge: "PurgeStateMachine",
}

// checkOpen runs the reconciler once, as its schedule would one period after the
// load (one run ends both open operations and open export jobs without a live
// execution), then reads the sparse Open index: every operation (open_kind OP) and
// export job (EXPORT) of the load's tenants still open must have a live execution. One
// whose execution does not exist or has ended is an open_without_execution violation.
func (g *gen) checkOpen(ctx context.Context) error {
	res, err := g.api.reconcileAt(ctx, time.Now().Add(reconcilePeriod))
	if err != nil {
		return fmt.Errorf("reconcile after the load: %w", err)
	}
	g.cfg.Logf("loadgen: one reconcile period after the load: checked %d open operations, ended %v; checked %d open export jobs, ended %d, failed %d",
		res.Checked, res.Ended, res.ExportsChecked, res.ExportsEnded, res.ExportsFailed)
	client := g.s.SFNClient()
	for _, kind := range []string{store.OpenOperation, store.OpenExport} {
		p := dynamodb.NewQueryPaginator(g.s.DynamoDB(), &dynamodb.QueryInput{
			TableName: aws.String(g.s.TenantsTable), IndexName: aws.String(store.OpenIndex),
			KeyConditionExpression: aws.String("open_kind = :k"),
			FilterExpression:       aws.String("begins_with(tenant_id, :prefix)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":k": &types.AttributeValueMemberS{Value: kind}, ":prefix": &types.AttributeValueMemberS{Value: g.cfg.Prefix + "-"},
			},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("query the Open index: %w", err)
			}
			for _, it := range page.Items {
				var rec struct {
					OperationID string `dynamodbav:"operation_id"`
					ExportID    string `dynamodbav:"export_id"`
					TenantID    string `dynamodbav:"tenant_id"`
					Kind        string `dynamodbav:"kind"`
					Attempt     int    `dynamodbav:"attempt"`
				}
				if err := attributevalue.UnmarshalMap(it, &rec); err != nil {
					return fmt.Errorf("open item: %w", err)
				}
				id, machine, name := rec.OperationID, machines[rec.Kind], (&tenant.Operation{ID: rec.OperationID, Attempt: rec.Attempt}).ExecutionName()
				if kind == store.OpenExport {
					id, machine, name = rec.ExportID, "ExportStateMachine", rec.ExportID
				}
				arn := strings.Replace(g.s.StateMachines[machine], ":stateMachine:", ":execution:", 1) + ":" + name
				out, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
				var nf *sfntypes.ExecutionDoesNotExist
				switch {
				case errors.As(err, &nf):
					g.violate(CheckOpen, rec.TenantID, id, "%s open, execution %s does not exist", kind, name)
				case err != nil:
					return fmt.Errorf("describe %s: %w", name, err)
				case out.Status != sfntypes.ExecutionStatusRunning:
					g.violate(CheckOpen, rec.TenantID, id, "%s open, execution %s ended %s", kind, name, out.Status)
				}
			}
		}
	}
	return nil
}

// verifyTenant compares one tenant with the replay of its accepted operations.
func (g *gen) verifyTenant(ctx context.Context, tr *tenantRun, bySub map[string][]testenv.StripeRequest) error {
	t, err := g.store.GetTenant(ctx, tr.id)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.rep.FinalStates[t.State]++
	g.mu.Unlock()

	// Every operation's record now, after whatever settled it.
	for _, o := range tr.ops {
		if o.req.Kind == Export {
			if !o.view.terminal() {
				g.violate(CheckRunning, tr.id, o.id, "export %s", o.view.Status)
			}
			continue
		}
		rec, err := g.store.GetOperation(ctx, o.id)
		if err != nil {
			return err
		}
		o.record = rec
		switch {
		case !rec.Done():
			g.violate(CheckRunning, tr.id, o.id, "%s is %s after the load (claimed: %v); the API reported %s %s", o.req, rec.Status,
				rec.PreviousState != "", o.view.Status, o.view.Error)
		case string(rec.Status) != o.view.Status:
			g.violate(CheckRunning, tr.id, o.id, "%s: the API reported %s, the record says %s", o.req, o.view.Status, rec.Status)
		}
	}

	// The sequential replay: the accepted operations in acceptance order, each with
	// its terminal status.
	replay := tr.initial
	for _, o := range tr.ops {
		replay = replay.After(o.req, o.succeeded(), o.claimed())
	}
	if t.State != replay.State {
		g.violate(CheckState, tr.id, "", "state %s, the replay of %s says %s", t.State, describe(tr.ops), replay.State)
	}
	if t.Plan != replay.Plan {
		g.violate(CheckPlan, tr.id, "", "plan %s, the replay of %s says %s", t.Plan, describe(tr.ops), replay.Plan)
	}
	switch {
	case t.State == tenant.Upgrading || t.State == tenant.Downgrading || t.State == tenant.Deleting || t.State == tenant.Reactivating:
		g.violate(CheckTransient, tr.id, t.Operation, "left %s", t.State)
	case t.Operation != "":
		g.violate(CheckTransient, tr.id, t.Operation, "left %s held by %s", t.State, t.Operation)
	case t.Attention != "":
		g.violate(CheckTransient, tr.id, t.Attention, "left waiting for an operator (%s)", t.Attention)
	}

	if err := g.verifyAudit(ctx, tr); err != nil {
		return err
	}

	e, err := g.store.GetEntitlements(ctx, tr.id)
	if err != nil {
		return err
	}
	want := tenant.Entitlements{Plan: t.Plan, Access: tenant.AccessActive}
	switch t.State {
	case tenant.Active:
		want.Limits, _ = g.catalog.Limits(t.Plan)
	case tenant.Suspended:
		want.Access = tenant.AccessSuspended
	case tenant.Deleted:
		want.Access = tenant.AccessRevoked
	}
	access := e.Access
	if access == "" {
		access = tenant.AccessActive
	}
	if e.Plan != want.Plan || e.Limits != want.Limits || access != want.Access {
		g.violate(CheckEntitlements, tr.id, e.OperationID, "entitlements %s %+v %s (written by %s), tenant %s on %s wants %s %+v %s",
			e.Plan, e.Limits, access, e.OperationID, t.State, t.Plan, want.Plan, want.Limits, want.Access)
	}

	// Stripe: stripe-mock keeps no state, so the price is the one the flows last set,
	// from the requests the proxy recorded (each idempotency key once, as Stripe
	// applies it). A deleted tenant's subscription cancels at period end.
	sub := t.Billing.SubscriptionID
	if sub != "sub_"+tr.id {
		g.violate(CheckPrice, tr.id, "", "subscription replaced by %q: its price cannot be followed", sub)
		return nil
	}
	price, canceling := testenv.ReplaySubscription(bySub[sub], g.prices[tr.initial.Plan], false)
	wantPrice := g.prices[t.Plan]
	if price != wantPrice || canceling != (t.State == tenant.Deleted) {
		g.violate(CheckPrice, tr.id, "", "subscription on %s (cancel at period end %v), tenant %s on %s wants %s (%v)",
			price, canceling, t.State, t.Plan, wantPrice, t.State == tenant.Deleted)
	}
	return nil
}

// verifyAudit checks the tenant's audit trail: its state changes are exactly those of
// the operations that claimed the tenant, each one's claim and end (per attempt) as
// the model says from where the one before left the tenant, one operation after the
// other, and written by no operation the load did not start.
func (g *gen) verifyAudit(ctx context.Context, tr *tenantRun) error {
	trail, err := g.store.Audit(ctx, tr.id)
	if err != nil {
		return err
	}
	byID := map[string]*opRun{}
	for _, o := range tr.ops {
		if o.req.Kind != Export {
			byID[o.id] = o
		}
	}
	var order []string
	got := map[string][]string{}
	var all []string
	for _, a := range trail {
		if a.From == a.To || a.From == "" {
			continue
		}
		change := arrow(a.From, a.To)
		all = append(all, change)
		if byID[a.OperationID] == nil {
			g.violate(CheckAudit, tr.id, a.OperationID, "transition %s by an operation the load did not start", change)
			continue
		}
		if _, seen := got[a.OperationID]; !seen {
			order = append(order, a.OperationID)
		}
		got[a.OperationID] = append(got[a.OperationID], change)
	}
	m := tr.initial
	var want []string
	for _, id := range order {
		o := byID[id]
		exp := m.Transitions(o.req, o.succeeded(), o.attempts())
		if !slices.Equal(got[id], exp) {
			g.violate(CheckAudit, tr.id, id, "%s (%s, attempt %d) left %v, the model says %v from %s", o.req, o.view.Status, o.attempts(), got[id], exp, m.State)
		}
		want = append(want, exp...)
		m = m.After(o.req, o.succeeded(), true)
	}
	if !slices.Equal(all, want) && len(all) == len(want) {
		g.violate(CheckAudit, tr.id, "", "transitions %v interleave operations; one after the other gives %v", all, want)
	}
	for _, o := range tr.ops {
		if o.req.Kind == Export {
			continue
		}
		_, inTrail := got[o.id]
		switch {
		case o.claimed() != inTrail:
			g.violate(CheckAudit, tr.id, o.id, "%s: claimed %v (previous_state %q) but audit transitions %v", o.req, o.claimed(), o.record.PreviousState, got[o.id])
		case o.succeeded() && !o.claimed():
			g.violate(CheckAudit, tr.id, o.id, "%s succeeded without claiming the tenant", o.req)
		}
	}
	return nil
}

// describe renders a tenant's operations for a violation ("upgrade starter
// SUCCEEDED, suspend FAILED(claimed), ...").
func describe(ops []*opRun) string {
	parts := make([]string, 0, len(ops))
	for _, o := range ops {
		s := o.req.String() + " " + o.view.Status
		if o.claimed() && !o.succeeded() {
			s += "(claimed)"
		}
		if o.dup {
			s += "(duplicate)"
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// scanRunning looks for any operation of the load's tenants still RUNNING, including
// ones the load does not know of.
func (g *gen) scanRunning(ctx context.Context) error {
	db := g.s.DynamoDB()
	in := &dynamodb.ScanInput{
		TableName:                aws.String(g.s.TenantsTable),
		FilterExpression:         aws.String("begins_with(pk, :op) AND #st = :run AND begins_with(tenant_id, :prefix)"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":op": &types.AttributeValueMemberS{Value: "OP#"}, ":run": &types.AttributeValueMemberS{Value: string(tenant.OpRunning)},
			":prefix": &types.AttributeValueMemberS{Value: g.cfg.Prefix + "-"},
		},
	}
	known := map[string]bool{}
	g.mu.Lock()
	for _, v := range g.rep.Violations {
		if v.Check == CheckRunning {
			known[v.Operation] = true
		}
	}
	g.mu.Unlock()
	p := dynamodb.NewScanPaginator(db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan for running operations: %w", err)
		}
		for _, it := range page.Items {
			id, tid := attr(it, "operation_id"), attr(it, "tenant_id")
			if !known[id] {
				g.violate(CheckRunning, tid, id, "operation RUNNING after the load")
			}
		}
	}
	return nil
}

func attr(it map[string]types.AttributeValue, k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
