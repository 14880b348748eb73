// Command devstack is the local, Docker-free runtime behind `make dev`: it starts the
// whole system of template.yaml on 127.0.0.1 (moto, stripe-mock, local Step Functions,
// the local Lambda service running the real bootstraps), seeds the example tenants,
// serves the HTTP API with an emulated JWT authorizer, and fires the template's
// schedules. Its other subcommands mint tokens, fire a schedule now, and invoke one
// function with one event (the twin of `sam local invoke`). Run `devstack help`.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line to its subcommand and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		cmd, args = "help", nil
	}
	switch cmd {
	case "serve":
		return cmdServe(args, stdout, stderr)
	case "token":
		return cmdToken(args, stdout, stderr)
	case "fire":
		return cmdFire(args, stdout, stderr)
	case "invoke":
		return cmdInvoke(args, stdout, stderr)
	case "stripe-event":
		return cmdStripeEvent(args, stdout, stderr)
	case "end-retention":
		return cmdEndRetention(args, stdout, stderr)
	case "appplane":
		return cmdAppPlane(args, stdout, stderr)
	case "help":
		switch topic := strings.Join(args, " "); topic {
		case "serve", "token", "fire", "invoke", "stripe-event", "end-retention", "appplane":
			// `devstack help fire` is `devstack fire -h`, on stdout.
			return run([]string{topic, "-h"}, stdout, stdout)
		case "", "help":
		default:
			fmt.Fprintf(stderr, "devstack help: unknown command %q\n\n%s", topic, usage)
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "devstack: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

const usage = `devstack runs tenantflow on this machine: no AWS account, no Docker.

Usage:
  devstack [serve] [flags]                 start the stack and serve the HTTP API (make dev)
  devstack token [--scope S] [--tenant ID] print a JWT the local API accepts
  devstack fire <FunctionLogicalId> [--time RFC3339]
                                           deliver one scheduled event to the running devstack
  devstack invoke <FunctionLogicalId> <event.json>
                                           run one function with one event, print its result
  devstack stripe-event <type> --tenant ID [--status S]
                                           send a signed Stripe event to POST /webhooks/stripe
  devstack end-retention --tenant ID       end a DELETED tenant's retention now (to see a purge)
  devstack appplane [--tenant ID --answer succeed|fail|never]
                                           what the sample app plane answers (with --provisioning-hook)
  devstack help [command]                  this text, or a command's flags

serve (the default command):
  Starts moto, stripe-mock, local Step Functions and the local Lambda service from
  template.yaml, seeds the example tenants (tenant_acme, tenant_techstart,
  tenant_enterprise, tenant_suspended), serves the HttpApi on http://127.0.0.1:3000
  with the JWT authorizer emulated, and fires the template's schedules. It writes
  .devstack/operator.jwt (an operator token) and .devstack/endpoints.json (the
  URLs of every local service). All data is in memory: every start is a clean,
  freshly seeded system. Ctrl-C stops every process it started.

token:
  Mints a token with the signing key kept in .devstack/ (created if missing), so it
  works with or without a running devstack and survives restarts.
    --scope tenants/admin   operator: may act on any tenant (the default)
    --tenant tenant_acme    may act only on tenant_acme

fire:
  Delivers one EventBridge "Scheduled Event" for the function's schedule to the
  running devstack, with --time as the event time (default now), and prints the
  function's result: see a period-end downgrade without waiting. A purge also
  needs the tenant's retention over by the clock: end-retention ends it.

invoke (make invoke FN=ApiFunction EVENT=events/api/get-tenant.json):
  Invokes on the running devstack when there is one (state carries over, so step
  fixtures can be run in flow order); otherwise starts a fresh seeded stack (without
  the bulk data), invokes, prints and stops it. Prints the payload on stdout; on a
  function error prints the error document and exits 1. FN may be left out when the
  event lives in events/<function>/.

stripe-event:
  Builds the event from events/stripe-webhook/<type>.json for the tenant's
  subscription, signs it with the local webhook secret (stripe_webhook_secret in
  .devstack/endpoints.json) and POSTs it to the running devstack's API, like Stripe.

end-retention:
  Sets a DELETED tenant's purge_after to now in the running devstack, with an audit
  line, so that the next purge sweep purges it and signs its certificate.

appplane:
  With serve --provisioning-hook (make dev ARGS=--provisioning-hook) plan changes
  wait for the app plane's answer, and a sample app plane in the devstack answers
  every ProvisioningRequested through POST /tenants/{id}/provisioning/{request_id}:
  succeed by default; per tenant, --answer chooses the answer to the provisioning and
  --undo (default succeed) to the compensation's undo. The [app-plane] log lines say
  what it received and answered. Settings are kept in .devstack/appplane.json.

Every command takes --state-dir (default .devstack at the repository root).
`
