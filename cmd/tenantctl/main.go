// Command tenantctl is tenantflow's HTTP API on the command line, for operators and CI
// scripts: tenants, every lifecycle action (with --wait), operations, exports with a
// verified download, deletion certificates and entitlements. Against `make dev` it
// needs no configuration. docs/cli.md describes it; the code is internal/tenantctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tenantflow/tenantflow/internal/tenantctl"
)

func main() {
	// Ctrl-C ends a wait (exit 5); the operation goes on on the server.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := tenantctl.Main(ctx, os.Args[1:], tenantctl.OSEnv(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
