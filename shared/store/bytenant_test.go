package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TestListTenantOperations: every operation recorded for a tenant is listed by tenant,
// whatever its status and whether or not the audit trail names it, page by page in id
// order; another tenant's are not; a cursor of another tenant is refused.
func TestListTenantOperations(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var want []string
	for i := range 105 {
		status := tenant.OpFailed // a refused claim: recorded, never audited
		if i%3 == 0 {
			status = tenant.OpSucceeded
		}
		id := fmt.Sprintf("op_%011x_listed", i)
		if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: id, TenantID: "tenant_a", Kind: tenant.KindUpgrade, Status: status, RequestedBy: "carol@example.com"}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op_other", TenantID: "tenant_b", Kind: tenant.KindUpgrade, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor, pages := "", 0
	for {
		ops, next, err := s.ListTenantOperations(ctx, "tenant_a", cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, op := range ops {
			if op.TenantID != "tenant_a" || op.RequestedBy != "carol@example.com" {
				t.Errorf("listed %+v", op)
			}
			got = append(got, op.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, want) || pages != 2 {
		t.Errorf("listed %d operations in %d pages, want the %d of tenant_a in id order in 2", len(got), pages, len(want))
	}
	_, next, err := s.ListTenantOperations(ctx, "tenant_a", "")
	if err != nil || next == "" {
		t.Fatalf("first page: next %q %v", next, err)
	}
	var ve *tenant.ValidationError
	if _, _, err := s.ListTenantOperations(ctx, "tenant_b", next); !errors.As(err, &ve) {
		t.Errorf("tenant_a's cursor for tenant_b: %v, want a ValidationError", err)
	}
	if ops, _, err := s.ListTenantOperations(ctx, "tenant_b", ""); err != nil || len(ops) != 1 || ops[0].ID != "op_other" {
		t.Errorf("tenant_b: %v %v", ops, err)
	}
}

// TestItemsAboutATenantNameIt: the items about a tenant outside its partition carry
// tenant_ref (the ByTenant index key): an operation, a kept Idempotency-Key answer,
// a finished webhook event and a subscription's order mark; an idempotency claim
// without an answer and a webhook event of no tenant do not.
func TestItemsAboutATenantNameIt(t *testing.T) {
	ctx := context.Background()
	db, names := testenv.Tables(t)
	s := store.New(db, names["TenantsTable"], nil)
	if _, err := s.CreateOperation(ctx, &tenant.Operation{ID: "op_ref", TenantID: "tenant_r", Kind: tenant.KindDeletion, Status: tenant.OpRunning}); err != nil {
		t.Fatal(err)
	}
	_, claim, err := s.ClaimIdempotency(ctx, "key-answered", "h", time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	claim.TenantRef = "tenant_r"
	if err := s.CompleteIdempotency(ctx, claim, 202, nil, `{"tenant_id":"tenant_r"}`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimIdempotency(ctx, "key-pending", "h", time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []struct{ id, tenant string }{{"evt_r", "tenant_r"}, {"evt_none", ""}} {
		if _, err := s.ClaimWebhookEvent(ctx, ev.id, "invoice.paid", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishWebhookEvent(ctx, ev.id, ev.tenant, "no change"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AcceptWebhookMark(ctx, "sub_r", "tenant_r", 0, store.WebhookMark{Created: 100, EventID: "evt_r"}); err != nil {
		t.Fatal(err)
	}
	refs := byTenant(t, db, names["TenantsTable"], "tenant_r")
	want := map[string]string{"OP#op_ref": tenant.SourceOperations, "WEBHOOK#evt_r": tenant.SourceWebhooks, "WEBHOOKSUB#sub_r": tenant.SourceWebhooks}
	if len(refs) != 4 {
		t.Errorf("ByTenant of tenant_r lists %v, want 4 items", refs)
	}
	idemp := 0
	for _, pk := range refs {
		src := store.RefSource(pk)
		if src == tenant.SourceIdempotency {
			idemp++
			continue
		}
		if want[pk] != src {
			t.Errorf("%s is in source %q, want %q", pk, src, want[pk])
		}
	}
	if idemp != 1 {
		t.Errorf("%d idempotency records name tenant_r, want only the answered one", idemp)
	}
}

// byTenant lists the partition keys of the ByTenant index under tenantID (plain SDK).
func byTenant(t *testing.T, db *dynamodb.Client, table, tenantID string) []string {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(table), IndexName: aws.String(store.ByTenantIndex),
		KeyConditionExpression:    aws.String("tenant_ref = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: tenantID}}})
	if err != nil {
		t.Fatal(err)
	}
	var pks []string
	for _, item := range out.Items {
		pks = append(pks, item["pk"].(*types.AttributeValueMemberS).Value)
	}
	return pks
}
