package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/store"
)

// StripeEventOptions say which Stripe event to send to the running devstack.
type StripeEventOptions struct {
	Root, StateDir string
	stack.StripeEventSpec
}

// StripeEventResult is the webhook's answer.
type StripeEventResult struct {
	Status  int
	Body    []byte
	EventID string
	URL     string
}

// SendStripeEvent builds the event for the tenant's subscription (read from the
// running stack), signs it with the local webhook secret and POSTs it to
// /webhooks/stripe through the local API gateway, like Stripe does.
func SendStripeEvent(ctx context.Context, opts StripeEventOptions) (*StripeEventResult, error) {
	root, stateDir, err := resolveDirs(opts.Root, opts.StateDir)
	if err != nil {
		return nil, err
	}
	ep, err := readEndpoints(ctx, stateDir)
	if err != nil {
		return nil, fmt.Errorf("%w: start one with `make dev`", err)
	}
	if ep.StripeWebhookSecret == "" {
		return nil, fmt.Errorf("%s has no stripe_webhook_secret: the running devstack has no webhook secret", EndpointsFile)
	}
	if opts.SubscriptionID == "" {
		st := store.New(dynamodb.NewFromConfig(ep.motoConfig()), ep.TenantsTable, nil)
		t, err := st.GetTenant(ctx, opts.TenantID)
		if err != nil {
			return nil, err
		}
		if t.Billing.SubscriptionID == "" {
			return nil, fmt.Errorf("tenant %s has no subscription", opts.TenantID)
		}
		opts.SubscriptionID = t.Billing.SubscriptionID
	}
	if opts.ID == "" {
		opts.ID = fmt.Sprintf("evt_devstack_%d", time.Now().UnixNano())
	}
	payload, err := stack.StripeEvent(root, opts.StripeEventSpec)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(ep.API, "/") + "/webhooks/stripe"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stack.SignStripeEvent(payload, ep.StripeWebhookSecret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &StripeEventResult{Status: resp.StatusCode, Body: body, EventID: opts.ID, URL: u}, nil
}

func cmdStripeEvent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack stripe-event", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o StripeEventOptions
	fs.StringVar(&o.TenantID, "tenant", "", "the tenant whose subscription the event is about (required)")
	fs.StringVar(&o.Status, "status", "", "the subscription status of a customer.subscription.updated event (unpaid, active, past_due, ...)")
	fs.StringVar(&o.SubscriptionID, "subscription", "", "the subscription id (default: the tenant's)")
	fs.StringVar(&o.ID, "id", "", "the event id (default: a new one; repeat one to see the dedupe)")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory of the running devstack (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack stripe-event <type> --tenant ID [--status S] [--id evt_...]\n\n"+
			"Sends one correctly signed Stripe event about the tenant's subscription to the running\n"+
			"devstack's POST /webhooks/stripe and prints the answer (exit 1 unless 2xx). Types are\n"+
			"the fixtures of events/stripe-webhook: invoice.paid, customer.subscription.deleted,\n"+
			"customer.subscription.updated-unpaid (or customer.subscription.updated --status unpaid), ...;\n"+
			"a -2025 suffix (invoice.paid-2025, customer.subscription.updated-unpaid-2025) sends the shape\n"+
			"of Stripe's 2025 API versions (the invoice's subscription under parent). E.g.\n"+
			"  go run ./cmd/devstack stripe-event customer.subscription.updated --status unpaid --tenant tenant_acme\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || o.TenantID == "" {
		fs.Usage()
		return 2
	}
	o.Type = pos[0]
	if s, ok := strings.CutPrefix(o.Type, "customer.subscription.updated-"); ok && o.Status == "" {
		o.Type, o.Status = "customer.subscription.updated", s
	}
	ctx, stop := signalContext()
	defer stop()
	res, err := SendStripeEvent(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "devstack stripe-event: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "POST %s (%s): %d\n", res.URL, res.EventID, res.Status)
	stdout.Write(bytes.TrimRight(res.Body, "\n"))
	fmt.Fprintln(stdout)
	if res.Status/100 != 2 {
		return 1
	}
	return 0
}
