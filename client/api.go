package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// One method per operation of openapi.yaml; the comment names its operationId.

func p(s string) string { return url.PathEscape(s) }

// CreateTenant creates a tenant (createTenant; admin). Repeating the create of a tenant
// still PROVISIONING resumes it.
func (c *Client) CreateTenant(ctx context.Context, in CreateTenantRequest, opts ...WriteOption) (*Tenant, error) {
	return decode[Tenant](c.do(ctx, &request{method: http.MethodPost, path: "/tenants", body: in, idempotent: true}, opts...))
}

// ListTenantsParams select one page of ListTenants.
type ListTenantsParams struct {
	State  State
	Limit  int    // 1..100; 0: the server's default (25)
	Cursor string // NextCursor of the previous page
}

// ListTenants lists the tenants of one state, one page at a time (listTenants; admin).
func (c *Client) ListTenants(ctx context.Context, in ListTenantsParams) (*TenantList, error) {
	q := url.Values{"state": {string(in.State)}}
	if in.Limit != 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	if in.Cursor != "" {
		q.Set("cursor", in.Cursor)
	}
	return decode[TenantList](c.do(ctx, &request{method: http.MethodGet, path: "/tenants", query: q}))
}

// GetTenant reads a tenant (getTenant).
func (c *Client) GetTenant(ctx context.Context, id string) (*Tenant, error) {
	return decode[Tenant](c.do(ctx, &request{method: http.MethodGet, path: "/tenants/" + p(id)}))
}

// DeleteTenant soft-deletes a tenant (deleteTenant); it is purged after the retention.
func (c *Client) DeleteTenant(ctx context.Context, id string, in DeleteRequest, opts ...WriteOption) (*Deletion, error) {
	r := &request{method: http.MethodDelete, path: "/tenants/" + p(id), idempotent: true}
	if in != (DeleteRequest{}) {
		r.body = in
	}
	return decode[Deletion](c.do(ctx, r, opts...))
}

// PutUsage reports a tenant's usage (putUsage; metering scope or admin).
func (c *Client) PutUsage(ctx context.Context, id string, in Usage, opts ...WriteOption) (*Tenant, error) {
	return decode[Tenant](c.do(ctx, &request{method: http.MethodPut, path: "/tenants/" + p(id) + "/usage", body: in, idempotent: true}, opts...))
}

// GetAudit reads a tenant's audit trail (getAudit).
func (c *Client) GetAudit(ctx context.Context, id string) (*Audit, error) {
	return decode[Audit](c.do(ctx, &request{method: http.MethodGet, path: "/tenants/" + p(id) + "/audit"}))
}

// Upgrade starts an upgrade (upgrade).
func (c *Client) Upgrade(ctx context.Context, id string, in PlanRequest, opts ...WriteOption) (*Accepted, error) {
	return decode[Accepted](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(id) + "/upgrade", body: in, idempotent: true}, opts...))
}

// Downgrade starts or schedules a downgrade (downgrade).
func (c *Client) Downgrade(ctx context.Context, id string, in DowngradeRequest, opts ...WriteOption) (*Accepted, error) {
	return decode[Accepted](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(id) + "/downgrade", body: in, idempotent: true}, opts...))
}

// SuspendTenant suspends a tenant (suspendTenant; admin).
func (c *Client) SuspendTenant(ctx context.Context, id string, in SuspendRequest, opts ...WriteOption) (*Accepted, error) {
	return decode[Accepted](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(id) + "/suspend", body: in, idempotent: true}, opts...))
}

// ReactivateTenant lifts a suspension or wins back a deleted tenant (reactivateTenant).
func (c *Client) ReactivateTenant(ctx context.Context, id string, in ReactivateRequest, opts ...WriteOption) (*Accepted, error) {
	return decode[Accepted](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(id) + "/reactivate", body: in, idempotent: true}, opts...))
}

// GetDeletionCertificate reads a purged tenant's certificate (getDeletionCertificate;
// admin).
func (c *Client) GetDeletionCertificate(ctx context.Context, id string) (*DeletionCertificate, error) {
	return decode[DeletionCertificate](c.do(ctx, &request{method: http.MethodGet, path: "/tenants/" + p(id) + "/deletion-certificate"}))
}

// RequestExport starts a GDPR export, or returns the one queued or running
// (requestExport).
func (c *Client) RequestExport(ctx context.Context, id string, opts ...WriteOption) (*Export, error) {
	return decode[Export](c.do(ctx, &request{method: http.MethodPost, path: "/tenants/" + p(id) + "/exports", idempotent: true}, opts...))
}

// ListExports lists a tenant's exports, newest first (listExports).
func (c *Client) ListExports(ctx context.Context, id string) (*ExportList, error) {
	return decode[ExportList](c.do(ctx, &request{method: http.MethodGet, path: "/tenants/" + p(id) + "/exports"}))
}

// GetExport reads an export; a completed one has a freshly signed DownloadURL
// (getExport).
func (c *Client) GetExport(ctx context.Context, id, exportID string) (*Export, error) {
	return decode[Export](c.do(ctx, &request{method: http.MethodGet, path: "/tenants/" + p(id) + "/exports/" + p(exportID)}))
}

// GetOperation reads an operation (getOperation).
func (c *Client) GetOperation(ctx context.Context, id string) (*Operation, error) {
	return decode[Operation](c.do(ctx, &request{method: http.MethodGet, path: "/operations/" + p(id)}))
}

// RetryOperation reruns the incomplete compensation of an operation that needs
// attention (retryOperation with action "retry"; admin): 202 while it runs.
func (c *Client) RetryOperation(ctx context.Context, id string, opts ...WriteOption) (*Accepted, error) {
	return decode[Accepted](c.do(ctx, &request{method: http.MethodPost, path: "/operations/" + p(id) + "/retry", body: RetryRequest{Action: "retry"}, idempotent: true}, opts...))
}

// ResolveOperation records that an operator fixed an operation's incomplete
// compensation by hand (retryOperation with action "resolve"; admin): 200 with the
// operation.
func (c *Client) ResolveOperation(ctx context.Context, id, note string, opts ...WriteOption) (*Operation, error) {
	return decode[Operation](c.do(ctx, &request{method: http.MethodPost, path: "/operations/" + p(id) + "/retry", body: RetryRequest{Action: "resolve", Note: note}, idempotent: true}, opts...))
}

// PostStripeWebhook delivers a Stripe event signed with the webhook secret
// (stripeWebhook): what Stripe does, for replaying an event by hand. The route takes no
// Idempotency-Key; events are deduplicated by their id.
func (c *Client) PostStripeWebhook(ctx context.Context, event []byte, signature string) (*WebhookResult, error) {
	return decode[WebhookResult](c.do(ctx, &request{
		method: http.MethodPost, path: "/webhooks/stripe", raw: event,
		header: http.Header{"Stripe-Signature": {signature}},
	}))
}
