package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/meter"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
	"github.com/tenantflow/tenantflow/shared/purge"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// PurgeSweep checks that the hourly purge sweep reads what is due, not the table: of
// 100,000 tenants 10 are due, and the sweep may read at most twice those plus one
// index page. It runs on a private stack, which it fills with the tenants, so no other
// section's queries pay for moto scanning them. TENANTFLOW_SWEEP_TENANTS sets another
// population (docs/scale.md runs it at 1,000,000).
var PurgeSweep = Bench{Name: "purge-sweep", Run: runPurgeSweep}

// SweepTenantsEnv overrides the purge-sweep section's tenant count.
const SweepTenantsEnv = "TENANTFLOW_SWEEP_TENANTS"

const (
	defaultSweepTenants = 100_000
	sweepDue            = 10
	// seedChunk is how many tenants are built and loaded at a time, so a million
	// never sit in memory at once.
	seedChunk = 50_000
	// bareWriteItems is the size of the bulk-load baseline: four bulk requests, a
	// steady rate, a small part of the seeding's time.
	bareWriteItems = 20_000
)

// sweepTenantCount is the section's population: SweepTenantsEnv, or 100,000.
func sweepTenantCount() (int, error) {
	v := os.Getenv(SweepTenantsEnv)
	if v == "" {
		return defaultSweepTenants, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 4*sweepDue {
		return 0, fmt.Errorf("%s=%q: want a tenant count of at least %d", SweepTenantsEnv, v, 4*sweepDue)
	}
	return n, nil
}

func runPurgeSweep(ctx context.Context, env *Env) (Section, error) {
	sec := Section{Name: "purge-sweep"}
	sweepTenants, err := sweepTenantCount()
	if err != nil {
		return sec, err
	}
	s, err := env.StartStack(ctx)
	if err != nil {
		return sec, err
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)

	// Baseline of the seeding: the same bulk load with minimal items.
	bareStart := time.Now()
	if err := s.BulkPut(ctx, s.DataTable, bareItems(bareWriteItems)); err != nil {
		return sec, fmt.Errorf("bare writes: %w", err)
	}
	barePerItem := time.Since(bareStart) / bareWriteItems

	env.Logf("purge sweep: seeding %s tenants (%d due)", Count(sweepTenants), sweepDue)
	var seedTook time.Duration
	for start := 0; start < sweepTenants; start += seedChunk {
		items, err := tenantItems(s, sweepPopulation(now, start, min(start+seedChunk, sweepTenants)))
		if err != nil {
			return sec, err
		}
		seedStart := time.Now()
		if err := s.BulkPut(ctx, s.TenantsTable, items); err != nil {
			return sec, fmt.Errorf("seed: %w", err)
		}
		seedTook += time.Since(seedStart)
	}
	env.Logf("purge sweep: seeded %s items in %s", Count(sweepTenants), seedTook.Round(time.Second))

	// Baseline of the sweep: the bare Due-index query for what is due, the least any
	// sweep must do. Once: on moto it costs seconds (see the notes).
	counted := &countingDB{DynamoDB: dynamodb.NewFromConfig(functionConfig(s, "PurgeSweepFunction"))}
	queryStart := time.Now()
	if err := dueQuery(ctx, counted.DynamoDB, s.TenantsTable, now); err != nil {
		return sec, err
	}
	queryTook := time.Since(queryStart)
	// The sweep as PurgeSweepFunction wires it (app.PurgeSweeper), on a counting client.
	sw := purge.NewSweeper(store.New(counted, s.TenantsTable, nil), sfnexec.New(s.SFNClient()), s.StateMachines["PurgeStateMachine"],
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	// The emulator's meter prices the sweep's reads as DynamoDB would (RRU); it runs
	// from here on, for the sweep and the purges it starts.
	if err := meter.ResetUsage(ctx, s.Moto.Endpoint); err != nil {
		return sec, err
	}
	sweepStart := time.Now()
	res, err := sw.Handle(ctx, events.CloudWatchEvent{Time: now})
	if err != nil {
		return sec, fmt.Errorf("sweep: %w", err)
	}
	sweepTook := time.Since(sweepStart)
	read, page, calls := counted.counts()
	usage, err := meter.ReadUsage(ctx, s.Moto.Endpoint, false)
	if err != nil {
		return sec, err
	}
	units := usage.Principals["PurgeSweepFunction"]["dynamodb"].Total()

	limit := 2*sweepDue + page
	started := len(res.Started) == sweepDue && len(res.Failed) == 0
	startedRow := NewRow("purges started", float64(len(res.Started)), "tenants")
	startedRow.Goal, startedRow.Met = fmt.Sprintf("= %d (every due tenant)", sweepDue), &started
	sec.Rows = []Row{
		NewRow("tenants due", sweepDue, "tenants"),
		NewRow("items read by the sweep", float64(read), "items").AtMost(float64(limit), fmt.Sprintf("<= 2 x due + 1 page (%d)", limit)),
		NewRow("Due entries read (the sweep's own count)", float64(res.Read), "items"),
		NewRow("sweep read units", units.RRU, "RRU"),
		NewRow("sweep write units", units.WRU, "WRU"),
		startedRow,
		NewRow("sweep time", Ms(sweepTook), "ms").Vs(Ms(queryTook)),
		NewRow(fmt.Sprintf("seed %s tenants", Count(sweepTenants)), seedTook.Seconds(), "s").
			Vs((barePerItem * time.Duration(sweepTenants)).Seconds()),
	}
	sec.Notes = []string{
		fmt.Sprintf("%s tenant items as store.BulkItems makes them, seeded with stack.BulkPut (without their audit records, which the sweep never reads): %d due (DELETED, retention over), "+
			"a quarter of the rest DELETED with retention ending in 20-59 days (in the Due index, not due), the others ACTIVE", Count(sweepTenants), sweepDue),
		fmt.Sprintf("items read = what every read call of the sweep returned (Query ScannedCount, GetItem hits), counted on its DynamoDB client: %d calls %s; 1 page = the sweep's Query Limit (%d)",
			counted.total(), formatCalls(calls), page),
		"sweep = purge.Sweeper as PurgeSweepFunction wires it, in process, with that function's credentials, starting the real purge executions; baseline = one bare Due-index query. " +
			"Both take seconds only on moto, which answers one request at a time and reads a whole index partition (here every not-due DELETED tenant) for a query; the sweep's time also holds moto serving the purges it started",
		fmt.Sprintf("seeding baseline = %s minimal items written the same way (stack.BulkPut, straight into the emulator's table), scaled to the item count", Count(bareWriteItems)),
		fmt.Sprintf("read and write units = what DynamoDB on demand bills the sweep's principal (tools/moto_server.py's meter: %d requests, %s bytes read); "+
			"%s of the %s tenants are in the Due index under PURGE, the partition every sweep queries", units.Requests, Count(int(units.BytesRead)), Count(notDue(sweepTenants)+sweepDue), Count(sweepTenants)),
	}
	return sec, nil
}

// notDue is how many of n tenants are DELETED but not due (a quarter of the rest).
func notDue(n int) int {
	c := 0
	for i := sweepDue; i < n; i++ {
		if i%4 == 0 {
			c++
		}
	}
	return c
}

// sweepPopulation is tenants [from, to) of the benchmark: the first sweepDue due, a
// quarter of the rest DELETED but not due, the others ACTIVE.
func sweepPopulation(now time.Time, from, to int) []*tenant.Tenant {
	out := make([]*tenant.Tenant, 0, to-from)
	for i := from; i < to; i++ {
		t := &tenant.Tenant{ID: fmt.Sprintf("bench-%07d", i), Name: fmt.Sprintf("Bench %d", i), Plan: tenant.Free, State: tenant.Active}
		switch {
		case i < sweepDue:
			deleted, after := now.AddDate(0, 0, -40), now.Add(-time.Hour-time.Duration(i)*time.Minute)
			t.State, t.DeletedAt, t.PurgeAfter, t.RetentionDays = tenant.Deleted, &deleted, &after, 30
		case i%4 == 0:
			deleted, after := now.AddDate(0, 0, -10), now.AddDate(0, 0, 20+i%40)
			t.State, t.DeletedAt, t.PurgeAfter, t.RetentionDays = tenant.Deleted, &deleted, &after, 30
		}
		out = append(out, t)
	}
	return out
}

// tenantItems returns the tenant items of tenants as the store writes them
// (store.BulkItems), without the audit record BulkItems pairs with each.
func tenantItems(s *stack.Stack, tenants []*tenant.Tenant) ([]map[string]types.AttributeValue, error) {
	all, err := s.Store().BulkItems(tenants, nil, store.Actor{Who: "system:bench"})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]types.AttributeValue, 0, len(tenants))
	for _, it := range all {
		if sk, ok := it["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "TENANT" {
			out = append(out, it)
		}
	}
	if len(out) != len(tenants) {
		return nil, fmt.Errorf("bulk items: %d tenant items for %d tenants", len(out), len(tenants))
	}
	return out, nil
}

// bareItems are n minimal items of the data table, all of one bench partition.
func bareItems(n int) []map[string]types.AttributeValue {
	out := make([]map[string]types.AttributeValue, n)
	for i := range out {
		out[i] = map[string]types.AttributeValue{
			"tenant_id": &types.AttributeValueMemberS{Value: "bench-bare"},
			"item_id":   &types.AttributeValueMemberS{Value: fmt.Sprintf("%06d", i)},
		}
	}
	return out
}

// formatCalls renders call counts in a stable order ("PutItem 10, Query 1").
func formatCalls(calls map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, calls[op]))
	}
	return strings.Join(parts, ", ")
}

// dueQuery reads the due purges from the Due index, all pages, with a bare client.
func dueQuery(ctx context.Context, db store.DynamoDB, table string, now time.Time) error {
	in := &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String(store.DueIndex),
		KeyConditionExpression: aws.String("due_kind = :k AND due_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": &types.AttributeValueMemberS{Value: store.DuePurge},
			// The store's time format (fixed width, so strings sort as times).
			":now": &types.AttributeValueMemberS{Value: now.UTC().Format("2006-01-02T15:04:05.000000000Z")},
		},
	}
	n := 0
	for {
		out, err := db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("due query: %w", err)
		}
		n += len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if n != sweepDue {
		return fmt.Errorf("due query found %d tenants, seeded %d due", n, sweepDue)
	}
	return nil
}

// functionConfig is an SDK config for moto signed as one function of the stack.
func functionConfig(s *stack.Stack, logicalID string) aws.Config {
	return testenv.AWSConfigWith(s.Moto.Endpoint, principal(s, logicalID))
}

// principal is the credentials a function calls moto with: its IAM user's where the
// stack enforces IAM, the admin's otherwise.
func principal(s *stack.Stack, logicalID string) testenv.Credentials {
	if c, ok := s.Principals[logicalID]; ok {
		return c
	}
	return s.Moto.Admin
}

// countingDB counts what a store reads: the items every read call returned (a Query's
// ScannedCount: what DynamoDB reads and bills, before any filter) and the calls.
type countingDB struct {
	store.DynamoDB

	mu    sync.Mutex
	items int
	page  int            // the largest Query Limit asked for
	calls map[string]int // by operation
}

func (c *countingDB) count(op string, items int, limit *int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	c.items += items
	if limit != nil && int(*limit) > c.page {
		c.page = int(*limit)
	}
}

func (c *countingDB) counts() (items, page int, calls map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items, c.page, c.calls
}

func (c *countingDB) total() int {
	_, _, calls := c.counts()
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.DynamoDB.GetItem(ctx, in, optFns...)
	n := 0
	if err == nil && out.Item != nil {
		n = 1
	}
	c.count("GetItem", n, nil)
	return out, err
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.DynamoDB.Query(ctx, in, optFns...)
	n := 0
	if err == nil {
		n = int(max(out.ScannedCount, out.Count, int32(len(out.Items))))
	}
	c.count("Query", n, in.Limit)
	return out, err
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count("PutItem", 0, nil)
	return c.DynamoDB.PutItem(ctx, in, optFns...)
}

func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count("UpdateItem", 0, nil)
	return c.DynamoDB.UpdateItem(ctx, in, optFns...)
}

func (c *countingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.count("TransactWriteItems", 0, nil)
	return c.DynamoDB.TransactWriteItems(ctx, in, optFns...)
}
