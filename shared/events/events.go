// Package events publishes lifecycle events to the EventBridge bus so that other
// systems (the application, analytics, CRM) learn about tenant changes.
package events

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// Source is the EventBridge source of every lifecycle event.
const Source = "tenantflow.lifecycle"

// Detail types published on the lifecycle bus.
const (
	TenantPlanChanged   = "TenantPlanChanged"
	TenantPlanReverted  = "TenantPlanChangeReverted"
	TenantSuspended     = "TenantSuspended"
	TenantReactivated   = "TenantReactivated"
	TenantDeleted       = "TenantDeleted"
	TenantRestored      = "TenantDeletionReverted"
	TenantUnreactivated = "TenantReactivationReverted"
	TenantPurged        = "TenantPurged"
)

// PutEventsAPI is the part of the EventBridge client the publisher uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Publisher sends events to one bus.
type Publisher struct {
	api PutEventsAPI
	bus string
}

// NewPublisher returns a publisher for bus.
func NewPublisher(api PutEventsAPI, bus string) *Publisher { return &Publisher{api: api, bus: bus} }

// Publish sends one event. A partial failure reported by PutEvents is an error.
func (p *Publisher) Publish(ctx context.Context, detailType string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", detailType, err)
	}
	out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		EventBusName: aws.String(p.bus), Source: aws.String(Source), DetailType: aws.String(detailType), Detail: aws.String(string(b)),
	}}})
	if err != nil {
		return fmt.Errorf("publish %s: %w", detailType, err)
	}
	if out.FailedEntryCount > 0 {
		e := &RejectedError{DetailType: detailType}
		if len(out.Entries) > 0 {
			e.Code, e.Message = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		return e
	}
	return nil
}

// RejectedError is an entry PutEvents accepted as a request but failed to put.
type RejectedError struct {
	DetailType, Code, Message string
}

// Error names the event and EventBridge's error code.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("publish %s: rejected: %s %s", e.DetailType, e.Code, e.Message)
}

// Transient reports whether EventBridge may accept the entry on a retry (throttled
// or an internal failure), so the flow kit retries instead of rolling back.
func (e *RejectedError) Transient() bool {
	return e.Code == "ThrottlingException" || e.Code == "InternalFailure" || e.Code == "InternalException"
}
