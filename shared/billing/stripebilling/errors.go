package stripebilling

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stripe/stripe-go/v76"

	"github.com/tenantflow/tenantflow/shared/billing"
)

// stripeMessage is what an error's text says of a *stripe.Error: its message, or its
// type when it has none, never its JSON rendering (the text ends up in Step Functions
// causes).
func stripeMessage(se *stripe.Error) string {
	if se.Msg != "" {
		return se.Msg
	}
	return string(se.Type)
}

// classify turns an error from stripe-go into *billing.TransientError or
// *billing.RejectedError.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		if errors.Is(err, context.Canceled) {
			// The caller gave up; that is neither Stripe's answer nor worth a retry here.
			return fmt.Errorf("billing: %s: %w", op, err)
		}
		// No Stripe answer: connection refused or reset, timeout, a proxy's HTML error
		// page that is not Stripe JSON. The write may or may not have happened, which
		// is exactly what a retry with the same idempotency key resolves.
		return &billing.TransientError{Op: op, Err: err}
	}
	if transientStripe(se) {
		return &billing.TransientError{Op: op, StatusCode: se.HTTPStatusCode, Code: string(se.Code), RequestID: se.RequestID, Message: stripeMessage(se), Err: err}
	}
	return &billing.RejectedError{
		Op:          op,
		StatusCode:  se.HTTPStatusCode,
		Type:        string(se.Type),
		Code:        string(se.Code),
		DeclineCode: string(se.DeclineCode),
		Param:       se.Param,
		Message:     se.Msg,
		RequestID:   se.RequestID,
		Err:         err,
	}
}

func transientStripe(se *stripe.Error) bool {
	// Stripe's explicit advice wins when it gives one.
	if se.LastResponse != nil {
		switch se.LastResponse.Header.Get("Stripe-Should-Retry") {
		case "true":
			return true
		case "false":
			return false
		}
	}
	switch {
	case se.HTTPStatusCode >= 500, se.HTTPStatusCode == http.StatusTooManyRequests:
		return true
	case se.HTTPStatusCode == http.StatusConflict:
		// lock_timeout, idempotency_key_in_use: another request holds the object or key.
		return true
	case se.Type == stripe.ErrorTypeAPI:
		return true
	}
	return false
}
