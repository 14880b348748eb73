package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

func TestParseRate(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		expr    string
		every   time.Duration
		wantErr string
	}{
		{"rate(1 minute)", time.Minute, ""},
		{"rate(15 minutes)", 15 * time.Minute, ""},
		{"rate(1 hour)", time.Hour, ""},
		{"rate(6 hours)", 6 * time.Hour, ""},
		{"rate(1 day)", 24 * time.Hour, ""},
		{"rate(7 days)", 7 * 24 * time.Hour, ""},
		{" rate( 2  hours ) ", 2 * time.Hour, ""},
		{"rate(1 minutes)", 0, "write rate(1 minute)"},
		{"rate(5 minute)", 0, "write rate(5 minutes)"},
		{"rate(0 minutes)", 0, "positive integer"},
		{"rate(-1 minutes)", 0, "positive integer"},
		{"rate(x minutes)", 0, "positive integer"},
		{"rate(1.5 hours)", 0, "positive integer"},
		{"rate(2 weeks)", 0, "unit must be"},
		{"rate(5)", 0, "want rate(N unit)"},
		{"every 5 minutes", 0, "not a rate(...) or cron(...)"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			spec, err := ParseSchedule(tt.expr, anchor)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// First fire one period after the anchor, then every period; a time between
			// two fires gives the next one.
			if got := spec.Next(anchor); !got.Equal(anchor.Add(tt.every)) {
				t.Errorf("Next(anchor) = %v, want %v", got, anchor.Add(tt.every))
			}
			if got := spec.Next(anchor.Add(tt.every)); !got.Equal(anchor.Add(2 * tt.every)) {
				t.Errorf("Next(first fire) = %v, want %v", got, anchor.Add(2*tt.every))
			}
			if got := spec.Next(anchor.Add(tt.every + time.Second)); !got.Equal(anchor.Add(2 * tt.every)) {
				t.Errorf("Next(just after first fire) = %v, want %v", got, anchor.Add(2*tt.every))
			}
		})
	}
}

func TestParseCron(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, from, want string // want "" = never fires again
	}{
		{"cron(0 12 * * ? *)", "2026-01-01T13:00:00Z", "2026-01-02T12:00:00Z"},
		{"cron(0 12 * * ? *)", "2026-01-01T11:59:59Z", "2026-01-01T12:00:00Z"},
		{"cron(0 12 * * ? *)", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z"}, // strictly after
		{"cron(0/15 * * * ? *)", "2026-01-01T10:07:00Z", "2026-01-01T10:15:00Z"},
		{"cron(5,35 * * * ? *)", "2026-01-01T10:07:00Z", "2026-01-01T10:35:00Z"},
		{"cron(0 18 ? * MON-FRI *)", "2026-01-02T19:00:00Z", "2026-01-05T18:00:00Z"}, // Fri evening -> Mon
		{"cron(0 8 1 * ? *)", "2026-01-15T00:00:00Z", "2026-02-01T08:00:00Z"},
		{"cron(0 0 1 JAN,JUL ? *)", "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z"},
		{"cron(0 0 L * ? *)", "2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z"},
		{"cron(0 0 L-1 * ? *)", "2026-02-01T00:00:00Z", "2026-02-27T00:00:00Z"},
		{"cron(0 9 15W * ? *)", "2026-02-01T00:00:00Z", "2026-02-16T09:00:00Z"}, // the 15th is a Sunday
		{"cron(0 9 LW * ? *)", "2026-02-01T00:00:00Z", "2026-02-27T09:00:00Z"},  // the 28th is a Saturday
		{"cron(0 10 ? * 6L 2026)", "2026-01-01T00:00:00Z", "2026-01-30T10:00:00Z"},
		{"cron(0 10 ? * 2#1 *)", "2026-01-01T00:00:00Z", "2026-01-05T10:00:00Z"},
		{"cron(0 10 ? * SUN *)", "2026-01-01T00:00:00Z", "2026-01-04T10:00:00Z"},
		{"cron(0 0 29 2 ? *)", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"cron(15 10 ? * 6L 2002-2005)", "2026-01-01T00:00:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.expr+" after "+tt.from, func(t *testing.T) {
			spec, err := ParseSchedule(tt.expr, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got := spec.Next(at(tt.from))
			if tt.want == "" {
				if !got.IsZero() {
					t.Fatalf("Next = %v, want never", got)
				}
				return
			}
			if !got.Equal(at(tt.want)) {
				t.Fatalf("Next = %v, want %v", got, tt.want)
			}
		})
	}

	for _, bad := range []string{
		"cron(0 12 * * *)",      // 5 fields
		"cron(0 12 * * * *)",    // neither day field is ?
		"cron(0 12 ? * ? *)",    // both are
		"cron(60 * * * ? *)",    // minute out of range
		"cron(0 24 * * ? *)",    // hour out of range
		"cron(0 0 ? * 8 *)",     // day of week out of range
		"cron(0 0 ? * MON#6 *)", // no sixth Monday
		"cron(0 0 1 FOO ? *)",   // month name
		"cron(*/0 * * * ? *)",   // step 0
		"cron(0 0 1 * ? 1969)",  // year out of range
	} {
		if _, err := ParseSchedule(bad, time.Time{}); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded, want an error", bad)
		}
	}
}

const scheduleTemplate = `
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    CodeUri: .
Resources:
  SweepFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hourly:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Name: nightly-sweep
            Input: '{"mode":"full"}'
  PurgeFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Daily:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 day)
            State: DISABLED
        Off:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
            Enabled: false
        Http:
          Type: HttpApi
          Properties: { Path: /x, Method: GET }
`

func TestLoadSchedulesAndScheduledEvent(t *testing.T) {
	tpl, err := samtemplate.Parse("template.yaml", []byte(scheduleTemplate), samtemplate.Options{StackName: "tf"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadSchedules(tpl)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Schedule{}
	for _, s := range got {
		byKey[s.Function+"/"+s.Event] = s
	}
	if len(got) != 4 {
		t.Fatalf("got %d schedules, want 4: %+v", len(got), got)
	}
	hourly := byKey["SweepFunction/Hourly"]
	if hourly.Expression != "rate(1 hour)" || hourly.Disabled || hourly.Input != nil ||
		hourly.Resource != "arn:aws:events:us-east-1:123456789012:rule/tf-SweepFunctionHourly" {
		t.Errorf("Hourly = %+v", hourly)
	}
	nightly := byKey["SweepFunction/Nightly"]
	if nightly.Resource != "arn:aws:events:us-east-1:123456789012:rule/nightly-sweep" || string(nightly.Input) != `{"mode":"full"}` {
		t.Errorf("Nightly = %+v", nightly)
	}
	if d := byKey["PurgeFunction/Daily"]; !d.Disabled || d.Type != "ScheduleV2" ||
		d.Resource != "arn:aws:scheduler:us-east-1:123456789012:schedule/default/tf-PurgeFunctionDaily" {
		t.Errorf("Daily = %+v", d)
	}
	if !byKey["PurgeFunction/Off"].Disabled {
		t.Error("Enabled: false should disable the schedule")
	}

	// The delivered event is an EventBridge Scheduled Event with the given time.
	when := time.Date(2030, 1, 2, 3, 4, 5, 678, time.UTC)
	raw, err := ScheduledEvent(tpl, hourly, when)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("event has no %q: %s", k, raw)
		}
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Version != "0" || ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.AccountID != "123456789012" ||
		ev.Region != "us-east-1" || !ev.Time.Equal(when.Truncate(time.Second)) || len(ev.Resources) != 1 ||
		ev.Resources[0] != hourly.Resource || string(ev.Detail) != "{}" || len(ev.ID) != 36 {
		t.Errorf("scheduled event = %s", raw)
	}
	// A template Input replaces the event, as EventBridge does.
	if raw, _ := ScheduledEvent(tpl, nightly, when); string(raw) != `{"mode":"full"}` {
		t.Errorf("event with Input = %s", raw)
	}

	// The scheduler plans the enabled ones and says why the others do not fire.
	now := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	for _, p := range plan(got, now) {
		switch p.Function + "/" + p.Event {
		case "SweepFunction/Hourly":
			if !p.Next.Equal(now.Add(time.Hour)) || p.Note != "" {
				t.Errorf("Hourly plan = %+v", p)
			}
		case "SweepFunction/Nightly":
			if !p.Next.Equal(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) || p.Note != "" {
				t.Errorf("Nightly plan = %+v", p)
			}
		default:
			if !p.Next.IsZero() || !strings.Contains(p.Note, "not fired locally") {
				t.Errorf("%s plan = %+v", p.Event, p)
			}
		}
	}
}

func TestFindSchedule(t *testing.T) {
	tpl, err := samtemplate.Parse("template.yaml", []byte(scheduleTemplate), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := findSchedule(tpl, "SweepFunction", ""); err == nil || !strings.Contains(err.Error(), "--event") {
		t.Errorf("two schedules without --event: err = %v", err)
	}
	if s, err := findSchedule(tpl, "sweep", "Nightly"); err != nil || s.Event != "Nightly" {
		t.Errorf("by directory name and event: %+v, %v", s, err)
	}
	if _, err := findSchedule(tpl, "NoSuchFunction", ""); err == nil || !strings.Contains(err.Error(), "functions: PurgeFunction, SweepFunction") {
		t.Errorf("unknown function: err = %v", err)
	}
}

func TestSchedulerFireDeliversTheEvent(t *testing.T) {
	tpl, err := samtemplate.Parse("template.yaml", []byte(scheduleTemplate), samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := LoadSchedules(tpl)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var gotFn string
	var gotEv events.CloudWatchEvent
	s := &scheduler{tpl: tpl, log: &log, invoke: func(_ context.Context, fn string, payload []byte) ([]byte, string, error) {
		gotFn = fn
		if err := json.Unmarshal(payload, &gotEv); err != nil {
			t.Errorf("payload %s: %v", payload, err)
		}
		return []byte(`{"ok":true}`), "", nil
	}}
	when := time.Date(2026, 3, 1, 0, 15, 0, 0, time.UTC)
	var hourly Schedule
	for _, sc := range all {
		if sc.Event == "Hourly" {
			hourly = sc
		}
	}
	s.fire(context.Background(), hourly, when)
	if gotFn != "SweepFunction" || !gotEv.Time.Equal(when) || gotEv.DetailType != "Scheduled Event" {
		t.Errorf("invoked %s with %+v", gotFn, gotEv)
	}
	if !strings.Contains(log.String(), "[scheduler] SweepFunction") || !strings.Contains(log.String(), `{"ok":true}`) {
		t.Errorf("log = %q", log.String())
	}
}
