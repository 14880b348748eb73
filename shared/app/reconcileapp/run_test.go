package reconcileapp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/flow"
)

type opsPass struct {
	res flow.ReconcileResult
	err error
	ran bool
	at  time.Time
}

func (o *opsPass) Handle(_ context.Context, ev events.CloudWatchEvent) (flow.ReconcileResult, error) {
	o.ran, o.at = true, ev.Time
	return o.res, o.err
}

type exportsPass struct {
	checked, ended int
	err            error
	ran            bool
	now            time.Time
}

func (e *exportsPass) EndDeadJobs(_ context.Context, now time.Time) (int, int, error) {
	e.ran, e.now = true, now
	return e.checked, e.ended, e.err
}

// TestRunEndsOperationsThenExportJobs: one run covers both passes, judged by the
// scheduled event's time; a failure of either is logged and counted and the other
// still runs; only a pass that could not read its index at all fails the run.
func TestRunEndsOperationsThenExportJobs(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 5, 0, 0, time.UTC)
	index := errors.New("query the Open index: throttled")
	jobErrs := errors.Join(errors.New("export exp_1 of t1: abort: access denied"), errors.New("export exp_2 of t2: describe: throttled"))
	for _, tc := range []struct {
		name        string
		opsErr      error
		exportsErr  error
		wantFailed  int
		wantErr     []string // substrings of the run's error; none: no error
		wantLogged  []string
		wantChecked int
	}{
		{name: "both passes succeed", wantChecked: 3},
		{name: "the operations pass fails: the export jobs pass still runs", opsErr: index, wantChecked: 3,
			wantErr: []string{"operations: query the Open index"}, wantLogged: []string{"the operations pass failed"}},
		{name: "two export jobs fail: counted, the run succeeds", exportsErr: jobErrs, wantFailed: 2, wantChecked: 3,
			wantLogged: []string{"exp_1 of t1", "exp_2 of t2"}},
		{name: "the export jobs pass cannot read its index", exportsErr: index, wantFailed: 1,
			wantErr: []string{"export jobs: query the Open index"}, wantLogged: []string{"the export jobs pass failed"}},
		{name: "both passes fail", opsErr: index, exportsErr: index, wantFailed: 1,
			wantErr: []string{"operations:", "export jobs:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ops := &opsPass{res: flow.ReconcileResult{Now: at, Checked: 4, Running: 2, Ended: []string{"op_1"}, Released: []string{"t1"}, Failed: []string{"op_2"}}, err: tc.opsErr}
			exp := &exportsPass{checked: 3, ended: 1, err: tc.exportsErr}
			if tc.exportsErr == index {
				exp.checked, exp.ended = 0, 0
			}
			r := &Run{Operations: ops, Exports: exp, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
			res, err := r.Handle(context.Background(), events.CloudWatchEvent{Time: at})
			if !ops.ran || !exp.ran {
				t.Fatalf("operations pass ran %v, export jobs pass ran %v: want both", ops.ran, exp.ran)
			}
			if !ops.at.Equal(at) || !exp.now.Equal(at) {
				t.Errorf("passes judged by %s and %s, want the event's time %s", ops.at, exp.now, at)
			}
			if res.Checked != 4 || len(res.Ended) != 1 || len(res.Failed) != 1 {
				t.Errorf("operations result lost: %+v", res.ReconcileResult)
			}
			if res.ExportsChecked != tc.wantChecked || res.ExportsFailed != tc.wantFailed {
				t.Errorf("exports checked %d, failed %d, want %d and %d", res.ExportsChecked, res.ExportsFailed, tc.wantChecked, tc.wantFailed)
			}
			switch {
			case len(tc.wantErr) == 0 && err != nil:
				t.Errorf("run failed: %v", err)
			case len(tc.wantErr) > 0 && err == nil:
				t.Errorf("run succeeded, want an error naming %v", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if err != nil && !strings.Contains(err.Error(), w) {
					t.Errorf("run error %q does not name %q", err, w)
				}
			}
			for _, w := range tc.wantLogged {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("logs do not say %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

// TestRunWithoutEventTimeJudgesByTheClock: an event without a time (a manual
// invocation) is judged by the wall clock, by both passes alike.
func TestRunWithoutEventTimeJudgesByTheClock(t *testing.T) {
	ops, exp := &opsPass{}, &exportsPass{}
	r := &Run{Operations: ops, Exports: exp, Log: slog.New(slog.DiscardHandler)}
	before := time.Now()
	if _, err := r.Handle(context.Background(), events.CloudWatchEvent{}); err != nil {
		t.Fatal(err)
	}
	if exp.now.Before(before) || time.Since(exp.now) > time.Minute || !ops.at.Equal(exp.now) {
		t.Errorf("passes judged by %s and %s, want the same wall-clock time", ops.at, exp.now)
	}
}
