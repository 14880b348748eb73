package flow

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// TransientError is a failure the same step may not meet again: throttling, a
// transaction conflict, a 5xx from AWS or the billing provider, a timeout. Its type
// name is the ASL error name the state machines retry.
type TransientError struct {
	Step string
	Err  error
}

// Error says which step failed and that a retry may succeed.
func (e *TransientError) Error() string {
	return fmt.Sprintf("%s: transient failure, retry: %v", e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransientError) Unwrap() error { return e.Err }

// TransientErrors are the ASL error names every Task retries: this package's and the
// billing adapter's TransientError, a state timeout, and Lambda's own service and
// sandbox errors (a crashed or timed-out invocation may have done its work; steps are
// safe to repeat).
var TransientErrors = []string{
	"TransientError", "States.Timeout",
	"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
	"Lambda.TooManyRequestsException", "Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError",
}

// transient is implemented by adapter errors that know they are worth a retry (the
// billing adapter's TransientError, the event publisher's throttled entries).
type transient interface{ Transient() bool }

// Classify returns err as a step must report it to Step Functions:
//   - typed domain errors (tenant.*Error), unwrapped from any fmt wrapping, so the ASL
//     sees their type name and catches them at once;
//   - *TransientError for what a retry may cure;
//   - anything else unchanged (caught as final by States.ALL).
func Classify(step string, err error) error {
	if err == nil {
		return nil
	}
	var (
		te  *TransientError
		tr  transient
		ite *tenant.InvalidTransitionError
		ule *tenant.UsageExceedsLimitError
		ree *tenant.RetentionExpiredError
		ce  *tenant.ConflictError
		nfe *tenant.NotFoundError
		ve  *tenant.ValidationError
		fe  *tenant.ForbiddenError
		rno *tenant.RetentionNotOverError
	)
	switch {
	case errors.As(err, &te):
		return te
	case errors.As(err, &tr) && tr.Transient(), isTransientAWS(err):
		return &TransientError{Step: step, Err: err}
	case errors.As(err, &ite):
		return ite
	case errors.As(err, &ule):
		return ule
	case errors.As(err, &ree):
		return ree
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &nfe):
		return nfe
	case errors.As(err, &ve):
		return ve
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &rno):
		return rno
	}
	return err
}

// isTransientAWS recognises what the AWS SDK itself would retry (throttling, 5xx,
// connection errors, timeouts) once its own attempts are spent, plus DynamoDB
// transaction conflicts and a store change that kept losing its race.
func isTransientAWS(err error) bool {
	if errors.Is(err, store.ErrContended) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				return true
			}
		}
	}
	var tcf *types.TransactionConflictException
	if errors.As(err, &tcf) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
		return true
	}
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}
