package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Poll paces WaitOperation and WaitExport: the second poll comes Min after the first,
// each next one 1.5 times later, at most Max apart.
type Poll struct {
	Min, Max time.Duration
}

// DefaultPoll suits the local stack and AWS alike: flows take seconds.
var DefaultPoll = Poll{Min: 250 * time.Millisecond, Max: 5 * time.Second}

// OperationFailedError is returned by WaitOperation for an operation that ended FAILED.
type OperationFailedError struct {
	Operation *Operation
}

func (e *OperationFailedError) Error() string {
	msg := fmt.Sprintf("operation %s (%s of %s) FAILED", e.Operation.OperationID, e.Operation.Kind, e.Operation.TenantID)
	if t := e.Operation.ErrorText(); t != "" {
		msg += ": " + t
	}
	if e.Operation.Message != "" {
		msg += ": " + e.Operation.Message
	}
	return msg
}

// ExportFailedError is returned by WaitExport for an export that ended failed.
type ExportFailedError struct {
	Export *Export
}

func (e *ExportFailedError) Error() string {
	return fmt.Sprintf("export %s of %s failed: %s", e.Export.ExportID, e.Export.TenantID, e.Export.Error)
}

// WaitOperation polls an operation until it is SUCCEEDED or FAILED, or ctx ends. A
// SCHEDULED operation (a downgrade at period end) is waited for like a running one:
// bound the wait with ctx. FAILED is an *OperationFailedError with the operation.
// Errors the client retries (5xx, network) do not end the wait unless they persist
// through the client's retries.
func (c *Client) WaitOperation(ctx context.Context, id string, progress func(*Operation)) (*Operation, error) {
	return waitFor(ctx, c.poll, func(ctx context.Context) (*Operation, bool, error) {
		op, err := c.GetOperation(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if progress != nil {
			progress(op)
		}
		switch op.Status {
		case Succeeded:
			return op, true, nil
		case Failed:
			return op, true, &OperationFailedError{Operation: op}
		}
		return op, false, nil
	})
}

// WaitExport polls an export until it is completed or failed, or ctx ends. The
// returned export (completed) has a fresh DownloadURL.
func (c *Client) WaitExport(ctx context.Context, tenantID, exportID string, progress func(*Export)) (*Export, error) {
	return waitFor(ctx, c.poll, func(ctx context.Context) (*Export, bool, error) {
		ex, err := c.GetExport(ctx, tenantID, exportID)
		if err != nil {
			return nil, false, err
		}
		if progress != nil {
			progress(ex)
		}
		switch ex.Status {
		case ExportCompleted:
			return ex, true, nil
		case ExportFailed:
			return ex, true, &ExportFailedError{Export: ex}
		}
		return ex, false, nil
	})
}

// waitFor calls check until it says done, pacing the calls by poll.
func waitFor[T any](ctx context.Context, poll Poll, check func(context.Context) (*T, bool, error)) (*T, error) {
	delay := max(poll.Min, time.Millisecond)
	for {
		v, done, err := check(ctx)
		if done || err != nil {
			return v, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("waiting: %w", errors.Join(ctx.Err(), context.Cause(ctx)))
		case <-t.C:
		}
		delay = min(delay*3/2, poll.Max)
	}
}

// WaitTenantState polls a tenant until it is in state want with no flow holding it
// (OperationID nil), or ctx ends: for what no operation id names, such as a purge the
// sweep started or a flow a Stripe event started.
func (c *Client) WaitTenantState(ctx context.Context, id string, want State, progress func(*Tenant)) (*Tenant, error) {
	return waitFor(ctx, c.poll, func(ctx context.Context) (*Tenant, bool, error) {
		t, err := c.GetTenant(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if progress != nil {
			progress(t)
		}
		return t, t.State == want && t.OperationID == nil, nil
	})
}
