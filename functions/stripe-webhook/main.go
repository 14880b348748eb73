// Command stripe-webhook is the Stripe webhook function (POST /webhooks/stripe, no
// JWT: the Stripe-Signature header authenticates the delivery): it suspends tenants
// whose subscription went unpaid or was canceled and reactivates them when paid.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/webhookapp"
)

func main() {
	_, h := webhookapp.New("StripeWebhookFunction")
	lambda.Start(h.Handle)
}
