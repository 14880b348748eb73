package webhook

import (
	"errors"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Tolerance is how old a signature's timestamp may be: Stripe's recommendation, and
// what bounds the replay of a captured delivery.
const Tolerance = 300 * time.Second

// SignatureError is a delivery refused before anything was read or written: no
// Stripe-Signature header, a malformed one, no signature matching the secret (a
// tampered body or another endpoint's secret), or a timestamp beyond Tolerance.
type SignatureError struct {
	Reason string
	Err    error
}

func (e *SignatureError) Error() string { return "webhook signature: " + e.Reason }
func (e *SignatureError) Unwrap() error { return e.Err }

// UnavailableError is what a Verifier returns when it could not check a delivery at
// all (its signing secret could not be read): the handler answers 503, so Stripe
// delivers the event again later, never 400, which would treat a genuine event as a
// forged one and drop it.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "cannot verify deliveries: " + e.Err.Error() }

func (e *UnavailableError) Unwrap() error { return e.Err }

// Verifier checks a delivery and returns its event.
type Verifier interface {
	Verify(payload []byte, signature string) (stripe.Event, error)
}

// StripeVerifier verifies with stripe-go's webhook package and the endpoint secret.
type StripeVerifier struct{ Secret string }

// Verify accepts events whatever their API version: the endpoint's version is chosen
// in the Stripe dashboard and may differ from stripe-go's pin (2023-10-16). Only the
// envelope (id, type, created, data.object) is taken from stripe-go; ReadFact reads
// the object's fields from the raw JSON in the shape of each version it knows.
func (v StripeVerifier) Verify(payload []byte, signature string) (stripe.Event, error) {
	ev, err := webhook.ConstructEventWithOptions(payload, signature, v.Secret, webhook.ConstructEventOptions{
		Tolerance: Tolerance, IgnoreAPIVersionMismatch: true,
	})
	switch {
	case err == nil:
		return ev, nil
	case errors.Is(err, webhook.ErrNotSigned):
		return ev, &SignatureError{Reason: "missing Stripe-Signature header", Err: err}
	case errors.Is(err, webhook.ErrInvalidHeader):
		return ev, &SignatureError{Reason: "malformed Stripe-Signature header", Err: err}
	case errors.Is(err, webhook.ErrTooOld):
		return ev, &SignatureError{Reason: fmt.Sprintf("timestamp older than %s", Tolerance), Err: err}
	case errors.Is(err, webhook.ErrNoValidSignature):
		return ev, &SignatureError{Reason: "no valid signature (tampered body or wrong secret)", Err: err}
	}
	return ev, &SignatureError{Reason: "unreadable event: " + err.Error(), Err: err}
}
