package sfnsvc

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
)

// smallPages is the Step Functions client with every GetExecutionHistory page cut to
// three events, so that the adapter's paging follows nextToken through the server.
type smallPages struct {
	*sfn.Client
	calls int
}

func (s *smallPages) GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, opts ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error) {
	s.calls++
	c := *in
	c.MaxResults = 3
	return s.Client.GetExecutionHistory(ctx, &c, opts...)
}

type stepView struct {
	name, status string
	attempts     int
	err          string
	compensation bool
}

func stepViews(steps []flow.Step) []stepView {
	out := make([]stepView, len(steps))
	for i, s := range steps {
		out[i] = stepView{name: s.Name, status: s.Status, attempts: s.Attempts, compensation: s.Compensation}
		if s.Error != nil {
			out[i].err = *s.Error
		}
	}
	return out
}

// stepsFromHistory reads executions of the test pipeline through the adapter the API
// uses (sfnexec.History, paging with nextToken) and folds them into steps: what
// GET /operations/{id}/steps shows, on the histories this server writes as AWS does.
func stepsFromHistory(t *testing.T, c *sfn.Client) {
	ctx := context.Background()
	read := func(t *testing.T, arn string) ([]flow.Step, string, int) {
		t.Helper()
		api := &smallPages{Client: c}
		events, err := sfnexec.New(api).History(ctx, arn)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		for i, e := range events {
			if e.ID != int64(i+1) || e.PreviousID != int64(i) || e.Time.IsZero() {
				t.Errorf("event %d: %+v", i, e)
			}
		}
		steps, status := flow.FoldHistory("x", events, false)
		return steps, status, api.calls
	}

	t.Run("steps of a retried success", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-steps-flaky", "mode": "flaky"})
		waitDone(t, c, aws.ToString(out.ExecutionArn))
		steps, status, calls := read(t, aws.ToString(out.ExecutionArn))
		want := []stepView{
			{"Validate", "SUCCEEDED", 2, "Lambda.ServiceException", false},
			{"Route", "SUCCEEDED", 0, "", false},
			{"Commit", "SUCCEEDED", 1, "", false},
			{"Done", "SUCCEEDED", 0, "", false},
		}
		if status != "SUCCEEDED" || !slices.Equal(stepViews(steps), want) {
			t.Errorf("status %s steps %+v\nwant %+v", status, stepViews(steps), want)
		}
		if calls < 3 {
			t.Errorf("%d history calls: the adapter did not follow nextToken", calls)
		}
		for _, s := range steps {
			if s.EndedAt == nil || s.DurationMS == nil || *s.DurationMS < 0 || s.EndedAt.Before(s.StartedAt) {
				t.Errorf("step times %+v", s)
			}
		}
	})

	t.Run("steps of a caught failure and its compensation", func(t *testing.T) {
		t.Parallel()
		out := start(t, c, "pipeline", "", map[string]any{"tenant_id": "t-steps-boom", "mode": "boom"})
		waitDone(t, c, aws.ToString(out.ExecutionArn))
		steps, status, _ := read(t, aws.ToString(out.ExecutionArn))
		want := []stepView{
			{"Validate", "FAILED", 1, "DatabaseUnavailableError", false},
			{"Rollback", "SUCCEEDED", 1, "", true},
			{"RolledBack", "FAILED", 0, "OperationFailed", true},
		}
		if status != "FAILED" || !slices.Equal(stepViews(steps), want) {
			t.Errorf("status %s steps %+v\nwant %+v", status, stepViews(steps), want)
		}
	})

	t.Run("history of an execution that does not exist", func(t *testing.T) {
		t.Parallel()
		_, err := sfnexec.New(c).History(ctx, "arn:aws:states:us-east-1:123456789012:execution:pipeline:never-started")
		if !errors.Is(err, flow.ErrNoExecution) {
			t.Errorf("want ErrNoExecution, got %v", err)
		}
	})
}
