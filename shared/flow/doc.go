// Package flow is the kit every lifecycle flow is built on (upgrade, downgrade,
// deletion, suspension, reactivation, purge). Step Functions Standard workflows chain one Lambda
// per step; this package holds what those steps must all get right in AWS's failure
// model, once:
//
//   - At-least-once steps. Step Functions and Lambda may run a step again after its side
//     effects happened and its answer was lost (a timeout, a crash, a lost response).
//     Every helper here is correct when repeated: Claim, Finish and Release recognise
//     their own earlier write and answer as if they had just made it.
//   - Ownership, not versions. Claim moves the tenant into the flow's busy state and
//     writes the operation id on it; every later step checks that ownership (Owned), not
//     the item version, so an unrelated write such as a usage report never fails a
//     step (store.Change re-reads and re-decides when it loses a race).
//   - One transaction at the end. Finish (success) and Release (failure) write the
//     tenant and the operation status in one TransactWriteItems: a Commit that dies
//     after its write is seen as committed by its retry and by every compensation step
//     (Compensating answers "skip"), so a committed change is never rolled back.
//   - No stranded tenant. Release puts the tenant back into a defined state whatever
//     happened before it, and records truthfully what compensation could not undo
//     (compensation_incomplete, needs_attention; the tenant keeps the operation id in
//     Attention so no other flow starts on top of it). When an execution ends without
//     reaching Release (it was stopped, timed out, or Release itself kept failing), the
//     scheduled Reconciler does the same release. Operations.Retry (admin) runs the
//     compensation again; Operations.Resolve records an operator's manual fix.
//   - Retry the transient, catch the final. Handler wraps each step: typed domain
//     errors are returned unwrapped (their type name is the ASL error name), and
//     throttling, transaction conflicts, 5xx and timeouts become *TransientError, which
//     the state machine retries with JitterStrategy FULL.
//
// # Adding a flow
//
//  1. Write its Input type embedding Ref (plus its own parameters) and a Definition:
//     its kind, busy state, state machine ARN, how Settle releases a failed operation
//     (which state, which fields, what is still to undo, read from the records, never
//     from the execution path) and the input of an operator retry.
//  2. Its first step calls Kit.Claim; every forward step calls Kit.Owned before a side
//     effect and records a Mark before effects it cannot cheaply read back; its last
//     step calls Kit.Finish. Compensation steps start with Kit.Compensating and undo
//     only what the records say this operation did.
//  3. In the ASL: Retry the transient class (TransientErrors) on every Task with
//     TimeoutSeconds; Catch States.ALL on forward steps into the compensation chain;
//     compensation steps retry for hours and Catch into the next one; the chain ends in
//     the kit's release step, whose result ($.outcome.status) decides between Succeed
//     (the commit had happened) and Fail. A "resume" Choice at the start jumps to the
//     compensation chain for operator retries.
//  4. Register the Definition with the Reconciler and Operations
//     (reconcileapp.Followed, shared/app/reconcileapp). (The purge is the one
//     exception: its own sweep releases and restarts purges whose execution ended,
//     and a failed purge has nothing to compensate.)
package flow
