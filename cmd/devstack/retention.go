package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// EndRetention moves a DELETED tenant's purge_after of the running devstack to now, so
// that the next purge sweep purges it. A purge never runs before purge_after by the
// clock (a sweep fired with a future --time does not count), so a local walkthrough
// that wants to see a purge and its certificate ends the retention this way. The
// write is an ordinary conditional, audited change of the local table; nothing like
// it exists in a deployment.
func EndRetention(ctx context.Context, stateDir, tenantID string, now time.Time) (*tenant.Tenant, error) {
	_, stateDir, err := resolveDirs("", stateDir)
	if err != nil {
		return nil, err
	}
	ep, err := readEndpoints(ctx, stateDir)
	if err != nil {
		return nil, fmt.Errorf("%w: start one with `make dev`", err)
	}
	st := store.New(dynamodb.NewFromConfig(ep.motoConfig()), ep.TenantsTable, nil)
	by := store.Actor{Who: "devstack", Reason: "local retention ended early (devstack end-retention)"}
	return st.Change(ctx, tenantID, by, func(cur *tenant.Tenant) (store.Write, error) {
		if cur.State != tenant.Deleted || cur.PurgeAfter == nil {
			return store.Write{}, &tenant.ConflictError{TenantID: cur.ID, Reason: "only a DELETED tenant has a retention to end; it is " + string(cur.State)}
		}
		if !cur.PurgeAfter.After(now) {
			return store.Write{}, store.ErrUnchanged
		}
		// A second before now, whole seconds: a scheduled event's time has no fraction.
		at := now.UTC().Truncate(time.Second).Add(-time.Second)
		return store.Write{Reason: by.Reason, Mutate: func(x *tenant.Tenant) { x.PurgeAfter = &at }}, nil
	})
}

func cmdEndRetention(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack end-retention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("tenant", "", "the DELETED tenant whose retention ends now (required)")
	stateDir := fs.String("state-dir", "", "state directory of the running devstack (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack end-retention --tenant ID\n\n"+
			"Sets the DELETED tenant's purge_after to now in the running devstack (an audited, local\n"+
			"write), so the next purge sweep purges it:\n"+
			"  go run ./cmd/devstack end-retention --tenant tenant_techstart\n"+
			"  go run ./cmd/devstack fire PurgeSweepFunction\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 0 || *id == "" {
		fs.Usage()
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	t, err := EndRetention(ctx, *stateDir, *id, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "devstack end-retention: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: DELETED, purge_after %s (the next purge sweep purges it)\n", t.ID, t.PurgeAfter.UTC().Format(time.RFC3339))
	return 0
}
