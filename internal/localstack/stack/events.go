package stack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

type ebTarget = ebtypes.Target

// Event is one lifecycle event captured from the bus.
type Event struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`
}

// DrainEvents returns (and removes) every lifecycle event captured so far.
func (s *Stack) DrainEvents(ctx context.Context) ([]Event, error) {
	q := sqs.NewFromConfig(s.AWS)
	var out []Event
	for {
		msgs, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.EventsQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		if len(msgs.Messages) == 0 {
			return out, nil
		}
		for _, m := range msgs.Messages {
			var e Event
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				return nil, fmt.Errorf("event %q: %w", aws.ToString(m.Body), err)
			}
			out = append(out, e)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.EventsQueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("ack event: %w", err)
			}
		}
	}
}
