package flow

import (
	"context"
	"log/slog"
	"reflect"
	"time"
)

// Handler wraps a step handler so that every step of every flow logs one line per
// invocation (tenant_id, operation_id, step, duration, outcome) and reports errors
// classified (Classify): typed domain errors by their own name, transient failures as
// *TransientError, which the state machines retry.
func Handler[In Input, Out any](log *slog.Logger, step string, fn func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		ref := in.FlowRef()
		start := time.Now()
		out, err := fn(ctx, in)
		err = Classify(step, err)
		l := log.With("tenant_id", ref.TenantID, "operation_id", ref.OperationID, "kind", ref.Kind, "step", step,
			"duration_ms", float64(time.Since(start).Microseconds())/1000)
		if err != nil {
			l.ErrorContext(ctx, "step failed", "error", err.Error(), "error_type", errorName(err))
			return out, err
		}
		l.InfoContext(ctx, "step done")
		return out, nil
	}
}

// errorName is the name Step Functions will see for err (the Go type name, as
// aws-lambda-go reports it).
func errorName(err error) string {
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
