package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/events/bus"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// TestPublishReachesTheBus publishes through moto's EventBridge and reads the event back
// from a queue subscribed to the bus, the way a consumer of the lifecycle bus sees it.
func TestPublishReachesTheBus(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.AWSConfig(testenv.MotoEndpoint(t))
	eb, q := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	prefix := testenv.UniquePrefix(t)
	busName, queue := prefix+"bus", prefix+"q"
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)}); err != nil {
		t.Fatal(err)
	}
	qo, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queue)})
	if err != nil {
		t.Fatal(err)
	}
	pattern := `{"source":["` + events.Source + `"]}`
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventBusName: aws.String(busName), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatal(err)
	}
	arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", testenv.Region, testenv.AccountID, queue)
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), EventBusName: aws.String(busName), Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(arn)}}}); err != nil {
		t.Fatal(err)
	}
	p := bus.NewPublisher(eb, busName)
	if err := p.Publish(ctx, events.TenantPlanChanged, map[string]string{"tenant_id": "t1", "to_plan": "starter"}); err != nil {
		t.Fatal(err)
	}
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qo.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on the queue, want 1", len(out.Messages))
	}
	var got struct {
		DetailType string            `json:"detail-type"`
		Source     string            `json:"source"`
		Detail     map[string]string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &got); err != nil {
		t.Fatal(err)
	}
	if got.DetailType != events.TenantPlanChanged || got.Source != events.Source || got.Detail["tenant_id"] != "t1" {
		t.Fatalf("event %+v", got)
	}
	// A bus that does not exist is an error, not a silent drop.
	if err := bus.NewPublisher(eb, prefix+"missing").Publish(ctx, events.TenantPlanChanged, map[string]string{}); err == nil {
		t.Fatal("publish to a missing bus succeeded")
	}
}
