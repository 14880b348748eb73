// Package bus publishes lifecycle events (shared/events) on an EventBridge bus. Only
// the wiring of the functions that publish imports it.
package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/tenantflow/tenantflow/shared/events"
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

var _ events.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher for bus.
func NewPublisher(api PutEventsAPI, bus string) *Publisher { return &Publisher{api: api, bus: bus} }

// Publish sends one event with source events.Source. A partial failure reported by
// PutEvents is an *events.RejectedError.
func (p *Publisher) Publish(ctx context.Context, detailType string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", detailType, err)
	}
	out, err := p.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		EventBusName: aws.String(p.bus), Source: aws.String(events.Source), DetailType: aws.String(detailType), Detail: aws.String(string(b)),
	}}})
	if err != nil {
		return fmt.Errorf("publish %s: %w", detailType, err)
	}
	if out.FailedEntryCount > 0 {
		e := &events.RejectedError{DetailType: detailType}
		if len(out.Entries) > 0 {
			e.Code, e.Message = aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage)
		}
		return e
	}
	return nil
}
