package tenantctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tenantflow/tenantflow/client"
)

func isFailed(err error) bool {
	var of *client.OperationFailedError
	var ef *client.ExportFailedError
	return errors.As(err, &of) || errors.As(err, &ef)
}

// print writes an answer as --output and --quiet ask.
func (x *cli) print(v any) error {
	if x.g.quiet {
		if id := idOf(v); id != "" {
			fmt.Fprintln(x.stdout, id)
		}
		return nil
	}
	if x.g.output == "json" {
		return x.printJSON(v)
	}
	return x.printTable(v)
}

// idOf is what --quiet prints: the id a script goes on with.
func idOf(v any) string {
	switch v := v.(type) {
	case *client.Accepted:
		return v.OperationID
	case *client.Deletion:
		return v.OperationID
	case *client.Operation:
		return v.OperationID
	case *client.Export:
		return v.ExportID
	case *client.Tenant:
		return v.ID
	case *client.DeletionCertificate:
		return v.SHA256
	case *client.TenantList:
		ids := make([]string, len(v.Tenants))
		for i, t := range v.Tenants {
			ids[i] = t.ID
		}
		return strings.Join(ids, "\n")
	case *client.ExportList:
		ids := make([]string, len(v.Exports))
		for i, e := range v.Exports {
			ids[i] = e.ExportID
		}
		return strings.Join(ids, "\n")
	case *client.OperationList:
		ids := make([]string, len(v.Operations))
		for i, o := range v.Operations {
			ids[i] = o.OperationID
		}
		return strings.Join(ids, "\n")
	}
	return ""
}

// printJSON writes v indented; documents the client keeps raw (an admin's operation
// record, entitlements) are written as the API sent them, every field included.
func (x *cli) printJSON(v any) error {
	var raw json.RawMessage
	switch v := v.(type) {
	case *client.Operation:
		raw = v.Raw
	case *client.Entitlements:
		raw = v.Raw
	}
	var out []byte
	var err error
	if len(raw) > 0 {
		var buf any
		if err = json.Unmarshal(raw, &buf); err == nil {
			out, err = json.MarshalIndent(buf, "", "  ")
		}
	} else {
		out, err = json.MarshalIndent(v, "", "  ")
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(x.stdout, "%s\n", out)
	return err
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func tsp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ts(*t)
}

func sp(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func limit[T int64 | float64](v *T) string {
	if v == nil {
		return "unlimited"
	}
	return strconv.FormatFloat(float64(*v), 'f', -1, 64)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// kv writes "key  value" lines, skipping empty values.
func kv(w io.Writer, pairs ...string) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" || pairs[i+1] == "-" && i > 1 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", pairs[i], pairs[i+1])
	}
	tw.Flush()
}

func (x *cli) printTable(v any) error {
	w := x.stdout
	switch v := v.(type) {
	case *client.Tenant:
		usage := fmt.Sprintf("%d users, %s GB, %d API calls/month", v.Usage.Users, strconv.FormatFloat(v.Usage.StorageGB, 'f', -1, 64), v.Usage.APICallsPerMonth)
		limits := fmt.Sprintf("%s users, %s GB, %s API calls/month", limit(v.Limits.Users), limit(v.Limits.StorageGB), limit(v.Limits.APICallsPerMonth))
		pending := "-"
		if p := v.PendingChange; p != nil {
			pending = fmt.Sprintf("%s at %s (%s)", p.Plan, ts(p.EffectiveAt), p.OperationID)
		}
		suspended := "-"
		if v.SuspendCause != nil {
			suspended = *v.SuspendCause
			if v.SuspendReason != nil {
				suspended += ": " + *v.SuspendReason
			}
		}
		overrides := "-"
		if o := v.Overrides; o != nil {
			var parts []string
			if l := o.Limits; l != nil {
				for _, x := range []struct {
					n string
					v *client.LimitOverride
				}{{"users", l.Users}, {"storage_gb", l.StorageGB}, {"api_calls_per_month", l.APICallsPerMonth}} {
					if x.v != nil {
						parts = append(parts, x.n+"="+x.v.String())
					}
				}
			}
			for _, n := range sortedKeys(o.Features) {
				parts = append(parts, fmt.Sprintf("%s=%t", n, o.Features[n]))
			}
			overrides = fmt.Sprintf("%s (%s, by %s at %s)", strings.Join(parts, " "), o.Reason, o.By, ts(o.At))
		}
		kv(w, "id", v.ID, "name", v.Name, "email", sp(v.Email), "plan", v.Plan, "state", string(v.State),
			"usage", usage, "limits", limits, "version", strconv.FormatInt(v.Version, 10),
			"created", ts(v.CreatedAt), "updated", ts(v.UpdatedAt), "pending change", pending,
			"operation", sp(v.OperationID), "needs attention", sp(v.AttentionOperationID),
			"deleted", tsp(v.DeletedAt), "purge after", tsp(v.PurgeAfter), "suspended", suspended, "overrides", overrides)
	case *client.TenantList:
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPLAN\tSTATE\tUPDATED")
		for _, t := range v.Tenants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Plan, t.State, ts(t.UpdatedAt))
		}
		tw.Flush()
		if v.NextCursor != nil {
			fmt.Fprintf(w, "more: --cursor %s (or --all)\n", *v.NextCursor)
		}
	case *client.Accepted:
		line := fmt.Sprintf("%s %s", v.OperationID, v.Status)
		if v.EffectiveAt != nil {
			line += " effective " + ts(*v.EffectiveAt)
		}
		fmt.Fprintln(w, line+" (tenantctl operations wait "+v.OperationID+")")
	case *client.Deletion:
		fmt.Fprintf(w, "%s %s retention %d days, purge after %s (tenantctl operations wait %s)\n", v.OperationID, v.Status, v.RetentionDays, ts(v.PurgeAfter), v.OperationID)
	case *client.Operation:
		var extra struct {
			Incomplete []string `json:"compensation_incomplete"`
			Resolution string   `json:"resolution"`
			Attempt    int      `json:"attempt"`
		}
		_ = json.Unmarshal(v.Raw, &extra)
		plans := ""
		switch {
		case v.FromPlan != "" && v.ToPlan != "" && v.FromPlan != v.ToPlan:
			plans = v.FromPlan + " → " + v.ToPlan
		case v.ToPlan != "":
			plans = v.ToPlan
		default:
			plans = v.FromPlan
		}
		kv(w, "operation", v.OperationID, "tenant", v.TenantID, "kind", v.Kind, "status", string(v.Status),
			"plan", plans, "at period end", boolStr(v.AtPeriodEnd), "effective", tsp(v.EffectiveAt),
			"created", ts(v.CreatedAt), "updated", ts(v.UpdatedAt), "error", v.ErrorText(), "message", v.Message,
			"requested by", v.RequestedBy, "cause", v.Cause, "needs attention", boolStr(v.NeedsAttention),
			"incomplete", strings.Join(extra.Incomplete, ", "), "resolution", extra.Resolution)
	case *client.OperationList:
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "OPERATION\tTENANT\tKIND\tSTATUS\tUPDATED")
		for _, o := range v.Operations {
			st := string(o.Status)
			if o.NeedsAttention {
				st += " (needs attention)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.OperationID, o.TenantID, o.Kind, st, ts(o.UpdatedAt))
		}
		tw.Flush()
		if v.NextCursor != nil {
			fmt.Fprintf(w, "more: --cursor %s\n", *v.NextCursor)
		}
	case *client.Steps:
		fmt.Fprintf(w, "%s: execution %s\n", v.OperationID, v.ExecutionStatus)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tMS\tERROR\tEXECUTION")
		for _, s := range v.Steps {
			ms := "-"
			if s.DurationMS != nil {
				ms = strconv.FormatInt(*s.DurationMS, 10)
			}
			name := s.Name
			if s.Compensation {
				name += " (undo)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", name, s.Status, s.Attempts, ms, sp(s.Error), s.Execution)
		}
		tw.Flush()
	case *client.Audit:
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tFROM\tTO\tVERSION\tOPERATION\tWHO\tREASON")
		for _, e := range v.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", ts(e.At), orDash(e.From), e.To, e.Version, orDash(e.OperationID), orDash(e.Who), orDash(e.Reason))
		}
		tw.Flush()
	case *client.Export:
		progress := ""
		if p := v.Progress; p != nil {
			progress = fmt.Sprintf("%.0f%% (%d items, %s)", p.Percent, p.Items, humanBytes(p.Bytes))
		}
		size := ""
		if v.SizeBytes > 0 {
			size = fmt.Sprintf("%s (%d bytes)", humanBytes(v.SizeBytes), v.SizeBytes)
		}
		kv(w, "export", v.ExportID, "tenant", v.TenantID, "status", v.Status, "progress", progress,
			"created", ts(v.CreatedAt), "completed", tsp(v.CompletedAt), "size", size, "sha256", v.SHA256,
			"url expires", tsp(v.URLExpiresAt), "error", v.Error)
	case *client.ExportList:
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "EXPORT\tSTATUS\tCREATED\tSIZE\tSHA256")
		for _, e := range v.Exports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ExportID, e.Status, ts(e.CreatedAt), humanBytes(e.SizeBytes), orDash(e.SHA256))
		}
		tw.Flush()
	case *client.DeletionCertificate:
		kv(w, "tenant", v.TenantID, "operation", v.OperationID, "inventory taken", ts(v.InventoryTakenAt),
			"generated", ts(v.GeneratedAt), "backups expire", ts(v.BackupsExpireAt), "sha256", v.SHA256)
		names := make([]string, 0, len(v.Sources))
		for n := range v.Sources {
			names = append(names, n)
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "\nSOURCE\tITEMS DELETED\tVERIFIED EMPTY\tNOTE")
		for _, n := range names {
			s := v.Sources[n]
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", n, s.ItemsDeleted, ts(s.VerifiedEmptyAt), orDash(s.Note))
		}
		tw.Flush()
		if len(v.Remains) > 0 {
			fmt.Fprintln(w, "\nremains:")
			for _, r := range v.Remains {
				fmt.Fprintf(w, "  %s until %s: %s\n", r.What, r.Until, r.Why)
			}
		}
	case *client.Entitlements:
		features := make([]string, 0, len(v.Features))
		for n, on := range v.Features {
			if on {
				features = append(features, n)
			}
		}
		sort.Strings(features)
		kv(w, "tenant", v.TenantID, "state", string(v.State), "plan", v.Plan,
			"users", limit(v.Limits.Users), "storage GB", limit(v.Limits.StorageGB), "API calls/month", limit(v.Limits.APICallsPerMonth),
			"features", strings.Join(features, ", "), "catalog", v.CatalogVersion)
	case *client.Stats:
		states := make([]string, 0, len(v.TenantsByState))
		for s, n := range v.TenantsByState {
			states = append(states, fmt.Sprintf("%s %d", s, n))
		}
		sort.Strings(states)
		kv(w, "tenants", strings.Join(states, ", "),
			"operations", fmt.Sprintf("%d running, %d need attention, %d scheduled", v.Operations.Running, v.Operations.NeedsAttention, v.Operations.Scheduled))
		for _, u := range v.Upcoming {
			fmt.Fprintf(w, "due %s  %s %s %s %s\n", ts(u.DueAt), u.Kind, u.TenantID, u.ToPlan, u.OperationID)
		}
	default:
		return x.printJSON(v)
	}
	return nil
}

func boolStr(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progress shows what a wait sees on stderr: on a terminal one line rewritten in
// place with the time waited, elsewhere (CI logs) a line per change.
type progress struct {
	w        io.Writer
	inPlace  bool
	off      bool
	begin    time.Time
	last     string
	drawn    bool
	finished bool
}

func (x *cli) newProgress() *progress {
	p := &progress{w: x.stderr, begin: time.Now(), off: x.g.progress == "none"}
	if x.g.progress == "auto" {
		if fl, ok := x.stderr.(*os.File); ok {
			if fi, err := fl.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				p.inPlace = true
			}
		}
	}
	return p
}

func (p *progress) show(line string) {
	if p.off || p.finished {
		return
	}
	if p.inPlace {
		fmt.Fprintf(p.w, "\r\033[K%s (%s)", line, time.Since(p.begin).Round(100*time.Millisecond))
		p.drawn = true
		return
	}
	if line != p.last {
		fmt.Fprintf(p.w, "%s (%s)\n", line, time.Since(p.begin).Round(100*time.Millisecond))
	}
	p.last = line
}

// done ends the display (the in-place line gets its newline); safe to call twice.
func (p *progress) done() {
	if p.drawn && !p.finished {
		fmt.Fprintln(p.w)
	}
	p.finished = true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
