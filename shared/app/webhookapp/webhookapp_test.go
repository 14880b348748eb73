package webhookapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/tenantflow/tenantflow/shared/webhook"
)

const payload = `{"id":"evt_1","object":"event","type":"charge.succeeded","created":1700000000,"data":{"object":{"id":"ch_1","object":"charge"}}}`

// TestSecretReadOnFirstDeliveryAndKept: the cold start reads nothing; a delivery
// whose secret cannot be read is answered 503 (Stripe delivers it again), not 400;
// the next delivery reads again, and once read the secret is kept.
func TestSecretReadOnFirstDeliveryAndKept(t *testing.T) {
	reads, fail := 0, true
	v := &lazyVerifier{read: func(context.Context) (string, error) {
		reads++
		if fail {
			return "", errors.New("secrets manager unreachable")
		}
		return "whsec_test", nil
	}}
	h := &webhook.Handler{Verifier: v, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	signed := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: []byte(payload), Secret: "whsec_test"})
	req := events.APIGatewayV2HTTPRequest{Body: payload, Headers: map[string]string{"stripe-signature": signed.Header}}
	if reads != 0 {
		t.Fatalf("secret read %d times before any delivery", reads)
	}

	resp, err := h.Handle(context.Background(), req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Headers["retry-after"] == "" {
		t.Fatalf("unreadable secret: got %d %v %v, want 503 with retry-after", resp.StatusCode, resp.Headers, err)
	}

	fail = false
	for i := 0; i < 3; i++ {
		ev, err := v.Verify([]byte(payload), signed.Header)
		if err != nil || ev.ID != "evt_1" {
			t.Fatalf("verify %d: %v %v", i, ev.ID, err)
		}
	}
	if reads != 2 {
		t.Fatalf("secret read %d times, want 2 (the failed read, then once)", reads)
	}
	if _, err := v.Verify([]byte(payload), "t=1,v1=bad"); err == nil || errors.As(err, new(*webhook.UnavailableError)) {
		t.Fatalf("bad signature: %v, want a signature error", err)
	}
}
