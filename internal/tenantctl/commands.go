package tenantctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/tenantflow/tenantflow/client"
)

var commands []*command

func init() {
	commands = []*command{
		{name: "tenants list", args: "", summary: "list the tenants of one state", nargs: 0, flags: flagsList, run: runList},
		{name: "tenants show", args: "TENANT", summary: "show a tenant", nargs: 1, run: runShow},
		{name: "tenants create", args: "", summary: "create a tenant (admin)", nargs: 0, flags: flagsCreate, run: runCreate},
		{name: "tenants audit", args: "TENANT", summary: "the tenant's audit trail, oldest first", nargs: 1, run: runAudit},
		{name: "tenants wait", args: "TENANT", summary: "wait until the tenant is in --state", nargs: 1, flags: flagsWaitState, run: runWaitState},
		{name: "tenants usage", args: "TENANT", summary: "report usage (metering scope or admin)", nargs: 1, flags: flagsUsage, run: runUsage},
		{name: "upgrade", args: "TENANT", summary: "upgrade to --plan", nargs: 1, flags: flagsPlan(true), run: runUpgrade},
		{name: "downgrade", args: "TENANT", summary: "downgrade to --plan, now or --at-period-end", nargs: 1, flags: flagsDowngrade, run: runDowngrade},
		{name: "suspend", args: "TENANT", summary: "suspend with --reason (admin)", nargs: 1, flags: flagsSuspend, run: runSuspend},
		{name: "reactivate", args: "TENANT", summary: "lift a suspension or win back a deleted tenant", nargs: 1, flags: flagsPlan(false), run: runReactivate},
		{name: "delete", args: "TENANT", summary: "soft-delete; purged after the retention", nargs: 1, flags: flagsDelete, run: runDelete},
		{name: "operations show", args: "OPERATION", summary: "show an operation", nargs: 1, run: runOpShow},
		{name: "operations wait", args: "OPERATION", summary: "wait until the operation ends", nargs: 1, run: runOpWait},
		{name: "operations steps", args: "OPERATION", summary: "the steps of the operation's execution", nargs: 1, run: runOpSteps},
		{name: "operations list", args: "", summary: "list operations by --tenant and/or --status", nargs: 0, flags: flagsOpList, run: runOpList},
		{name: "operations retry", args: "OPERATION", summary: "rerun an incomplete compensation (admin)", nargs: 1, flags: flagsWait, run: runOpRetry},
		{name: "operations resolve", args: "OPERATION", summary: "record a manual fix with --note (admin)", nargs: 1, flags: flagsResolve, run: runOpResolve},
		{name: "exports start", args: "TENANT", summary: "start a GDPR export (or get the one running)", nargs: 1, flags: flagsExportStart, run: runExportStart},
		{name: "exports list", args: "TENANT", summary: "the tenant's exports, newest first", nargs: 1, run: runExportList},
		{name: "exports show", args: "TENANT EXPORT", summary: "show an export", nargs: 2, run: runExportShow},
		{name: "exports wait", args: "TENANT EXPORT", summary: "wait until the export is completed", nargs: 2, run: runExportWait},
		{name: "exports download", args: "TENANT EXPORT", summary: "download to --file and verify its sha256", nargs: 2, flags: flagsDownload, run: runExportDownload},
		{name: "certificate", args: "TENANT", summary: "the deletion certificate of a purged tenant (admin)", nargs: 1, run: runCertificate},
		{name: "entitlements", args: "TENANT", summary: "the tenant's effective limits and features", nargs: 1, run: runEntitlements},
		{name: "overrides", args: "TENANT", summary: "replace the tenant's overrides of its plan (admin; --reason, --limit, --feature)", nargs: 1, flags: flagsOverrides, run: runOverrides},
		{name: "provisioning answer", args: "TENANT REQUEST", summary: "answer a provisioning request as the app plane (--status)", nargs: 2, flags: flagsAnswer, run: runAnswer},
		{name: "stats", args: "", summary: "tenants by state, open operations, what is due (admin)", nargs: 0, run: runStats},
	}
}

// lookup finds the command named exactly by words.
func lookup(words []string) *command {
	cmd, n := lookupPrefix(words)
	if cmd == nil || n != len(words) {
		return nil
	}
	return cmd
}

// lookupPrefix finds the command named by the first one or two words.
func lookupPrefix(words []string) (*command, int) {
	if len(words) >= 2 {
		for _, c := range commands {
			if c.name == words[0]+" "+words[1] {
				return c, 2
			}
		}
	}
	for _, c := range commands {
		if c.name == words[0] {
			return c, 1
		}
	}
	return nil, 0
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: tenantctl [global flags] <command> [arguments] [flags]

tenantflow's HTTP API for operators and scripts. Against make dev it needs no
configuration: it finds .devstack/ (endpoint and operator token).

commands:
`)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
global flags (before or after the command):
  --endpoint URL      $TENANTFLOW_ENDPOINT; default: a running make dev's, else `+client.DefaultEndpoint+`
  --token T           $TENANTFLOW_TOKEN; default for a local endpoint: .devstack/operator.jwt
  --token-file F      read the token from F
  -o, --output F      table (default) or json (the API's JSON)
  -q, --quiet         print only the id of the answer (operation, export, tenant)
  --timeout D         stop waiting after D (exit 5; the operation goes on)
  --progress P        auto, lines or none: the progress display on stderr while waiting

exit codes: 0 ok, 1 error (API problem, network, file), 2 usage, 3 operation or export
FAILED, 4 download verification failed, 5 wait timed out or interrupted.
Run 'tenantctl help <command>' for a command's flags; docs/cli.md has everything.
`)
}

func cmdUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: tenantctl %s %s [flags]\n\n%s.\n", c.name, c.args, c.summary)
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		if c.flags != nil {
			c.flags(fs, &opts{})
		}
	}
	var own []string
	fs.VisitAll(func(fl *flag.Flag) {
		switch fl.Name {
		case "endpoint", "token", "token-file", "output", "o", "quiet", "q", "timeout", "progress":
			return
		}
		own = append(own, fmt.Sprintf("  --%s\t%s", fl.Name, fl.Usage))
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nflags:")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(own, "\n"))
		tw.Flush()
	}
	fmt.Fprintln(w, "\nglobal flags: --endpoint, --token, --token-file, --output, --quiet, --timeout, --progress (tenantctl help)")
}

// opts are the values of the commands' own flags.
type opts struct {
	state, plan, name, id, email, reason, note, tenant, status, cursor, file string
	answerError, cause, output                                               string
	limits                                                                   client.LimitOverrides
	hasLimits                                                                bool
	features                                                                 map[string]bool
	limit, retentionDays                                                     int
	all, wait, atPeriodEnd                                                   bool
	users, apiCalls                                                          int64
	storageGB                                                                float64
}

func flagsWait(fs *flag.FlagSet, o *opts) {
	fs.BoolVar(&o.wait, "wait", false, "wait until the operation ends, showing progress on stderr")
}

func flagsList(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.state, "state", "ACTIVE", "the state to list")
	fs.IntVar(&o.limit, "limit", 0, "page size, 1-100 (default the server's, 25)")
	fs.StringVar(&o.cursor, "cursor", "", "next_cursor of the previous page")
	fs.BoolVar(&o.all, "all", false, "follow next_cursor through every page")
}

func flagsCreate(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.name, "name", "", "the tenant's name (required)")
	fs.StringVar(&o.plan, "plan", "", "its plan (required)")
	fs.StringVar(&o.id, "id", "", "its id (default: generated)")
	fs.StringVar(&o.email, "email", "", "billing email")
}

func flagsWaitState(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.state, "state", "", "the state to wait for (required)")
}

func flagsUsage(fs *flag.FlagSet, o *opts) {
	fs.Int64Var(&o.users, "users", 0, "users")
	fs.Float64Var(&o.storageGB, "storage-gb", 0, "storage in GB")
	fs.Int64Var(&o.apiCalls, "api-calls", 0, "API calls per month")
}

func flagsPlan(required bool) func(*flag.FlagSet, *opts) {
	return func(fs *flag.FlagSet, o *opts) {
		usage := "the target plan"
		if required {
			usage += " (required)"
		} else {
			usage += " (default: the tenant's)"
		}
		fs.StringVar(&o.plan, "plan", "", usage)
		flagsWait(fs, o)
	}
}

func flagsDowngrade(fs *flag.FlagSet, o *opts) {
	flagsPlan(true)(fs, o)
	fs.BoolVar(&o.atPeriodEnd, "at-period-end", false, "at the end of the billing period (SCHEDULED) instead of now")
}

func flagsSuspend(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.reason, "reason", "", "why (required, at most 500 characters)")
	flagsWait(fs, o)
}

func flagsDelete(fs *flag.FlagSet, o *opts) {
	fs.IntVar(&o.retentionDays, "retention-days", 0, "30-90 days before the purge (default: the deployment's)")
	flagsWait(fs, o)
}

func flagsOpList(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.tenant, "tenant", "", "the tenant's operations")
	fs.StringVar(&o.status, "status", "", "running, needs_attention or scheduled (any status with --tenant)")
	fs.IntVar(&o.limit, "limit", 0, "page size")
	fs.StringVar(&o.cursor, "cursor", "", "next_cursor of the previous page")
}

func flagsResolve(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.note, "note", "", "what was fixed by hand (required)")
}

func flagsExportStart(fs *flag.FlagSet, o *opts) {
	fs.BoolVar(&o.wait, "wait", false, "wait until the export is completed, showing progress on stderr")
	fs.StringVar(&o.file, "download", "", "with --wait: download to this file and verify its sha256")
}

func flagsDownload(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.file, "file", "", "where to write the export (default <EXPORT>.ndjson.gz; - for stdout)")
	fs.StringVar(&o.file, "f", "", "short for --file")
	fs.BoolVar(&o.wait, "wait", false, "wait for the export to complete first")
}

// --- tenants

func runList(ctx context.Context, x *cli, _ []string) error {
	params := client.ListTenantsParams{State: client.State(strings.ToUpper(x.f.state)), Limit: x.f.limit, Cursor: x.f.cursor}
	var all client.TenantList
	for {
		page, err := x.c.ListTenants(ctx, params)
		if err != nil {
			return err
		}
		all.Tenants = append(all.Tenants, page.Tenants...)
		all.NextCursor = page.NextCursor
		if !x.f.all || page.NextCursor == nil {
			break
		}
		params.Cursor = *page.NextCursor
	}
	return x.print(&all)
}

func runShow(ctx context.Context, x *cli, args []string) error {
	t, err := x.c.GetTenant(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(t)
}

func runCreate(ctx context.Context, x *cli, _ []string) error {
	if x.f.name == "" || x.f.plan == "" {
		return usagef("--name and --plan are required")
	}
	in := client.CreateTenantRequest{ID: x.f.id, Name: x.f.name, Plan: x.f.plan}
	if x.f.email != "" {
		in.Email = &x.f.email
	}
	t, err := x.c.CreateTenant(ctx, in)
	if err != nil {
		return err
	}
	return x.print(t)
}

func runAudit(ctx context.Context, x *cli, args []string) error {
	a, err := x.c.GetAudit(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(a)
}

func runWaitState(ctx context.Context, x *cli, args []string) error {
	if x.f.state == "" {
		return usagef("--state is required")
	}
	want := client.State(strings.ToUpper(x.f.state))
	ctx, cancel := x.waitContext(ctx)
	defer cancel()
	pr := x.newProgress()
	defer pr.done()
	t, err := x.c.WaitTenantState(ctx, args[0], want, func(t *client.Tenant) {
		pr.show(fmt.Sprintf("%s: %s", t.ID, t.State))
	})
	if err != nil {
		return err
	}
	pr.done()
	return x.print(t)
}

func runUsage(ctx context.Context, x *cli, args []string) error {
	t, err := x.c.PutUsage(ctx, args[0], client.Usage{Users: x.f.users, StorageGB: x.f.storageGB, APICallsPerMonth: x.f.apiCalls})
	if err != nil {
		return err
	}
	return x.print(t)
}

// --- lifecycle actions

func runUpgrade(ctx context.Context, x *cli, args []string) error {
	if x.f.plan == "" {
		return usagef("--plan is required")
	}
	acc, err := x.c.Upgrade(ctx, args[0], client.PlanRequest{Plan: x.f.plan})
	return x.started(ctx, acc, err)
}

func runDowngrade(ctx context.Context, x *cli, args []string) error {
	if x.f.plan == "" {
		return usagef("--plan is required")
	}
	acc, err := x.c.Downgrade(ctx, args[0], client.DowngradeRequest{Plan: x.f.plan, AtPeriodEnd: x.f.atPeriodEnd})
	return x.started(ctx, acc, err)
}

func runSuspend(ctx context.Context, x *cli, args []string) error {
	if x.f.reason == "" {
		return usagef("--reason is required")
	}
	acc, err := x.c.SuspendTenant(ctx, args[0], client.SuspendRequest{Reason: x.f.reason})
	return x.started(ctx, acc, err)
}

func runReactivate(ctx context.Context, x *cli, args []string) error {
	acc, err := x.c.ReactivateTenant(ctx, args[0], client.ReactivateRequest{Plan: x.f.plan})
	return x.started(ctx, acc, err)
}

func runDelete(ctx context.Context, x *cli, args []string) error {
	d, err := x.c.DeleteTenant(ctx, args[0], client.DeleteRequest{RetentionDays: x.f.retentionDays})
	if err != nil {
		return err
	}
	if !x.f.wait {
		return x.print(d)
	}
	if !x.g.quiet && x.g.output == "table" {
		fmt.Fprintf(x.stderr, "%s: deletion started, retention %d days, purge after %s\n", d.OperationID, d.RetentionDays, d.PurgeAfter.Format("2006-01-02T15:04:05Z07:00"))
	}
	return x.waitOp(ctx, d.OperationID)
}

// started prints a started operation, or waits for it with --wait.
func (x *cli) started(ctx context.Context, acc *client.Accepted, err error) error {
	if err != nil {
		return err
	}
	if !x.f.wait {
		return x.print(acc)
	}
	return x.waitOp(ctx, acc.OperationID)
}

// waitOp waits for an operation with a progress display and prints the final record.
func (x *cli) waitOp(ctx context.Context, id string) error {
	ctx, cancel := x.waitContext(ctx)
	defer cancel()
	pr := x.newProgress()
	defer pr.done()
	op, err := x.c.WaitOperation(ctx, id, func(op *client.Operation) {
		line := fmt.Sprintf("%s %s %s: %s", op.OperationID, op.Kind, op.TenantID, op.Status)
		if op.Status == client.Scheduled && op.EffectiveAt != nil {
			line += " until " + op.EffectiveAt.Format("2006-01-02T15:04:05Z07:00")
		}
		pr.show(line)
	})
	pr.done()
	if op != nil && (err == nil || isFailed(err)) {
		if perr := x.print(op); perr != nil {
			return perr
		}
	}
	return err
}

// --- operations

func runOpShow(ctx context.Context, x *cli, args []string) error {
	op, err := x.c.GetOperation(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(op)
}

func runOpWait(ctx context.Context, x *cli, args []string) error { return x.waitOp(ctx, args[0]) }

func runOpSteps(ctx context.Context, x *cli, args []string) error {
	s, err := x.c.GetOperationSteps(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(s)
}

func runOpList(ctx context.Context, x *cli, _ []string) error {
	l, err := x.c.ListOperations(ctx, client.ListOperationsParams{TenantID: x.f.tenant, Status: x.f.status, Limit: x.f.limit, Cursor: x.f.cursor})
	if err != nil {
		return err
	}
	return x.print(l)
}

func runOpRetry(ctx context.Context, x *cli, args []string) error {
	acc, err := x.c.RetryOperation(ctx, args[0])
	return x.started(ctx, acc, err)
}

func runOpResolve(ctx context.Context, x *cli, args []string) error {
	if strings.TrimSpace(x.f.note) == "" {
		return usagef("--note is required: what was fixed by hand")
	}
	op, err := x.c.ResolveOperation(ctx, args[0], x.f.note)
	if err != nil {
		return err
	}
	return x.print(op)
}

// --- exports

func runExportStart(ctx context.Context, x *cli, args []string) error {
	ex, err := x.c.RequestExport(ctx, args[0])
	if err != nil {
		return err
	}
	if x.f.file != "" && !x.f.wait {
		return usagef("--download needs --wait")
	}
	if !x.f.wait {
		return x.print(ex)
	}
	if ex, err = x.waitExport(ctx, ex.TenantID, ex.ExportID); err != nil {
		return err
	}
	if x.f.file != "" {
		return x.download(ctx, ex, x.f.file)
	}
	return x.print(ex)
}

func runExportList(ctx context.Context, x *cli, args []string) error {
	l, err := x.c.ListExports(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(l)
}

func runExportShow(ctx context.Context, x *cli, args []string) error {
	ex, err := x.c.GetExport(ctx, args[0], args[1])
	if err != nil {
		return err
	}
	return x.print(ex)
}

func runExportWait(ctx context.Context, x *cli, args []string) error {
	ex, err := x.waitExport(ctx, args[0], args[1])
	if ex != nil && (err == nil || isFailed(err)) {
		if perr := x.print(ex); perr != nil {
			return perr
		}
	}
	return err
}

func (x *cli) waitExport(ctx context.Context, tenantID, exportID string) (*client.Export, error) {
	wctx, cancel := x.waitContext(ctx)
	defer cancel()
	pr := x.newProgress()
	defer pr.done()
	ex, err := x.c.WaitExport(wctx, tenantID, exportID, func(ex *client.Export) {
		line := fmt.Sprintf("%s %s: %s", ex.ExportID, ex.TenantID, ex.Status)
		if p := ex.Progress; p != nil && ex.Status != client.ExportCompleted {
			line += fmt.Sprintf(" %3.0f%% (%d", p.Percent, p.Items)
			if p.EstimatedItems > 0 {
				line += fmt.Sprintf(" of ~%d", p.EstimatedItems)
			}
			line += fmt.Sprintf(" items, %s)", humanBytes(p.Bytes))
		}
		if ex.Status == client.ExportCompleted {
			line += fmt.Sprintf(" %s, sha256 %s", humanBytes(ex.SizeBytes), ex.SHA256)
		}
		pr.show(line)
	})
	pr.done()
	return ex, err
}

func runExportDownload(ctx context.Context, x *cli, args []string) error {
	var ex *client.Export
	var err error
	if x.f.wait {
		ex, err = x.waitExport(ctx, args[0], args[1])
	} else {
		ex, err = x.c.GetExport(ctx, args[0], args[1])
	}
	if err != nil {
		return err
	}
	file := x.f.file
	if file == "" {
		file = ex.ExportID + ".ndjson.gz"
	}
	return x.download(ctx, ex, file)
}

// download writes the export to file through a temporary file that becomes file only
// once its sha256 is verified, so a file of that name is always the export.
func (x *cli) download(ctx context.Context, ex *client.Export, file string) error {
	if file == "-" {
		sum, n, err := x.c.DownloadExport(ctx, ex, x.stdout)
		if err == nil {
			fmt.Fprintf(x.stderr, "%s: %d bytes, sha256 %s verified\n", ex.ExportID, n, sum)
		}
		return err
	}
	path := x.env.path(file)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-")
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer os.Remove(tmp.Name())
	sum, n, err := x.c.DownloadExport(ctx, ex, tmp)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if x.g.quiet {
		fmt.Fprintln(x.stdout, file)
		return nil
	}
	if x.g.output == "json" {
		return x.printJSON(map[string]any{"export_id": ex.ExportID, "file": file, "size_bytes": n, "sha256": sum, "verified": true})
	}
	fmt.Fprintf(x.stdout, "%s: %s (%d bytes), sha256 %s verified\n", ex.ExportID, file, n, sum)
	return nil
}

// --- the rest

func runCertificate(ctx context.Context, x *cli, args []string) error {
	c, err := x.c.GetDeletionCertificate(ctx, args[0])
	if err != nil {
		return err
	}
	return x.print(c)
}

func runEntitlements(ctx context.Context, x *cli, args []string) error {
	e, _, err := x.c.GetEntitlements(ctx, args[0], "")
	if err != nil {
		return err
	}
	return x.print(e)
}

func runStats(ctx context.Context, x *cli, _ []string) error {
	s, err := x.c.GetStats(ctx)
	if err != nil {
		return err
	}
	return x.print(s)
}

func flagsAnswer(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.status, "status", "", "succeeded, failed or in_progress (a heartbeat) (required)")
	fs.StringVar(&o.answerError, "error", "", "with failed: the error name")
	fs.StringVar(&o.cause, "cause", "", "with failed: what went wrong")
	fs.StringVar(&o.output, "output-json", "", "with succeeded: a JSON object kept with the request")
}

func runAnswer(ctx context.Context, x *cli, args []string) error {
	if x.f.status == "" {
		return usagef("--status is required")
	}
	in := client.ProvisioningAnswer{Status: x.f.status, Error: x.f.answerError, Cause: x.f.cause}
	if x.f.output != "" {
		if !json.Valid([]byte(x.f.output)) {
			return usagef("--output-json is not JSON")
		}
		in.Output = json.RawMessage(x.f.output)
	}
	r, err := x.c.AnswerProvisioning(ctx, args[0], args[1], in)
	if err != nil {
		return err
	}
	return x.print(r)
}

func flagsOverrides(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.reason, "reason", "", "why (required; audited)")
	fs.Func("limit", "NAME=N or NAME=unlimited, NAME one of users, storage_gb, api_calls_per_month (repeatable)", func(s string) error {
		name, val, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want NAME=VALUE")
		}
		var l client.LimitOverride
		if err := l.UnmarshalJSON([]byte(quoteUnlimited(val))); err != nil {
			return err
		}
		switch name {
		case "users":
			o.limits.Users = &l
		case "storage_gb":
			o.limits.StorageGB = &l
		case "api_calls_per_month":
			o.limits.APICallsPerMonth = &l
		default:
			return fmt.Errorf("unknown limit %q", name)
		}
		o.hasLimits = true
		return nil
	})
	fs.Func("feature", "NAME=true or NAME=false (repeatable)", func(s string) error {
		name, val, ok := strings.Cut(s, "=")
		if !ok || (val != "true" && val != "false") {
			return fmt.Errorf("want NAME=true or NAME=false")
		}
		if o.features == nil {
			o.features = map[string]bool{}
		}
		o.features[name] = val == "true"
		return nil
	})
}

func quoteUnlimited(v string) string {
	if v == "unlimited" {
		return `"unlimited"`
	}
	return v
}

// runOverrides sends the whole set: limits and features not named have no override.
func runOverrides(ctx context.Context, x *cli, args []string) error {
	if strings.TrimSpace(x.f.reason) == "" {
		return usagef("--reason is required")
	}
	in := client.Overrides{Features: x.f.features, Reason: x.f.reason}
	if x.f.hasLimits {
		in.Limits = &x.f.limits
	}
	t, err := x.c.PutOverrides(ctx, args[0], in)
	if err != nil {
		return err
	}
	return x.print(t)
}
