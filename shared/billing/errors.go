package billing

import "fmt"

// TransientError is a failure that the same request may not meet again: Stripe
// answered 5xx or 429, a lock or in-flight idempotency conflict (409), or the network
// or a deadline failed. Retry with the same idempotency key: Stripe replays a write
// that did happen. The Step Functions Retry on this error type is the retry layer.
type TransientError struct {
	// Op names the call, e.g. "update subscription sub_123".
	Op string
	// StatusCode is Stripe's HTTP status, 0 when no answer came.
	StatusCode int
	// Code is Stripe's error code when it sent one (e.g. "rate_limit", "lock_timeout").
	Code string
	// RequestID is Stripe's Request-Id, for Stripe support.
	RequestID string
	// Message is Stripe's message (or its error type when it sent none) when Stripe
	// answered; the error's text shows it rather than the *stripe.Error's JSON.
	Message string
	// Err is the underlying error (*stripe.Error, a network error, a context error).
	Err error
}

// Error says what failed and that a retry may succeed.
func (e *TransientError) Error() string {
	msg := "billing: " + e.Op + ": transient failure"
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.StatusCode)
		if e.Code != "" {
			msg += " " + e.Code
		}
		if e.RequestID != "" {
			msg += ", request " + e.RequestID
		}
		msg += ")"
	}
	return msg + ": " + e.message()
}

func (e *TransientError) message() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Err == nil:
		return "unknown error"
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *TransientError) Unwrap() error { return e.Err }

// Transient reports true: the flow kit retries this error (see flow.Classify).
func (e *TransientError) Transient() bool { return true }

// RejectedError means Stripe refused the request (4xx other than 409 and 429): a
// declined card (402), an invalid request or unknown object (400/404), bad credentials
// (401/403), an idempotency key reused with other parameters. Retrying the same
// request gives the same answer.
type RejectedError struct {
	// Op names the call, e.g. "create subscription for tenant t_1".
	Op string
	// StatusCode is Stripe's HTTP status.
	StatusCode int
	// Type, Code, DeclineCode, Param and Message are Stripe's error fields.
	Type        string
	Code        string
	DeclineCode string
	Param       string
	Message     string
	// RequestID is Stripe's Request-Id, for Stripe support.
	RequestID string
	// Err is the *stripe.Error.
	Err error
}

// Error says what Stripe refused and why, in Stripe's words.
func (e *RejectedError) Error() string {
	msg := fmt.Sprintf("billing: %s: rejected by Stripe (HTTP %d %s", e.Op, e.StatusCode, e.Type)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.DeclineCode != "" {
		msg += " " + e.DeclineCode
	}
	if e.Param != "" {
		msg += " param " + e.Param
	}
	if e.RequestID != "" {
		msg += ", request " + e.RequestID
	}
	return msg + "): " + e.Message
}

// Unwrap returns the underlying *stripe.Error.
func (e *RejectedError) Unwrap() error { return e.Err }

// EndedError is what ChangePlan and SchedulePlanChange answer for a subscription that
// has ended (canceled, incomplete_expired): Stripe would refuse the change, and the
// subscription bills nothing whatever its price. It matches ErrEnded, and its type
// name is what a failed plan change reports.
type EndedError struct {
	SubscriptionID string
	Status         string
}

// Error names the subscription and its status.
func (e *EndedError) Error() string {
	return fmt.Sprintf("billing: subscription %s has ended (%s); it cannot be changed, a new subscription is needed", e.SubscriptionID, e.Status)
}

// Is makes errors.Is(err, ErrEnded) true.
func (e *EndedError) Is(target error) bool { return target == ErrEnded }
