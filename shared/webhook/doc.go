// Package webhook receives Stripe's webhook events on POST /webhooks/stripe (the
// StripeWebhookFunction, a route without JWT: the Stripe-Signature header is the
// authentication) and turns billing facts into lifecycle flows: a subscription that
// went unpaid or was canceled suspends its tenant, a paid invoice or a subscription
// back to active reactivates a tenant suspended for nonpayment.
//
// Stripe delivers at least once, in any order, and retries every non-2xx answer for
// up to three days. So the handler:
//   - verifies the signature (300 s tolerance) and answers 400 to anything unsigned,
//     tampered or stale, before writing anything;
//   - reads the few fields it needs from the raw event, in the 2023-10-16 shape and in
//     the shape of the API versions since 2025-03-31.basil (an invoice names its
//     subscription under parent.subscription_details), whatever version the endpoint
//     is set to in the dashboard;
//   - dedupes by event id (a leased claim record with a TTL), so a redelivery is a 200
//     that changes nothing;
//   - orders events per subscription by (created, event id) with one conditional
//     write of the subscription's order record before any flow starts: an event
//     older than the newest one accepted is ignored, so the newest fact about a
//     subscription wins whatever the delivery order, and an event that starts a flow
//     holds the subscription (a lease, and the reserved id of its flow) until that
//     flow is started, so concurrent deliveries cannot overtake each other. A
//     deletion is final in Stripe, so it applies in any order and marks the
//     subscription canceled: no later event of that subscription reactivates the
//     tenant;
//   - starts the suspension or reactivation flow and answers at once (the flows run
//     asynchronously), and never moves a DELETED or PURGED tenant: the one write it
//     makes itself is a payment clearing the nonpayment cause a DELETED tenant kept
//     from its suspension (it stays DELETED);
//   - answers 503 when the tenant is held by another operation (a deletion running
//     included: it may roll back), waits for an operator (whatever the event), or
//     another event of the subscription is being applied: the event is not recorded,
//     so Stripe's retry applies it once the tenant is free. A permanent mismatch (no
//     tenant_id, unknown tenant, another subscription than the tenant's) is a 200
//     with a log line: retrying cannot help;
//   - does not lose an event whose flow fails: once the flow has started the answer
//     is 200 and the event is done, so a suspension or lift that fails short of its
//     effect ends needing attention ("stripe-event", shared/lifecycle's settle) and
//     the tenant waits for an operator's retry or resolve.
//
// Events without a mapping (past_due, incomplete, unknown types) are answered 200,
// logged, and written nowhere; they do not move the ordering record either, so a
// past_due arriving after a newer unpaid cannot hide it.
package webhook
