// Package invariants is a stateful, model-free property test of the tenant
// lifecycle on the local stack. Seeded sequences of actions by every actor (an
// operator, the tenant's own token, the metering service, Stripe's webhook
// deliveries, the schedules), some sent at the same moment and some with a fault
// armed on a function of the flow they start, run through the real API Gateway
// stand-in, api and webhook bootstraps, Step Functions and Lambda services, moto and
// stripe-mock. After every step the tenants are left to become quiescent and are
// judged against invariants written from the lifecycle's promises (check.go): who may
// lift a suspension, usage fitting a plan entered, ACTIVE meaning billed, an audit
// trail that replays, one operation at a time, nothing billing a deleted tenant.
//
// Nothing here predicts what a flow does. The sequence keeps only what its actors
// asked for and what Stripe said (the proxy's recorded requests, the events sent),
// and compares the system's state with that, so a rule the flows get wrong cannot be
// copied into the test that checks them (the loadgen's model can be).
//
// A failing sequence is shrunk (delta debugging, each candidate on a freshly reset
// stack) and printed one action per line with its seed. TestLifecycleInvariants runs
// a small sequence in `go test`; `make soak` (cmd/soak) runs many; the bench section
// soak puts their figures into .bench/latest.json. docs/invariants.md describes them.
package invariants
