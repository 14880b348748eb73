package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/randid"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// Spec is a parsed schedule expression.
type Spec interface {
	// Next returns the first fire time strictly after t, or the zero time if there is
	// none (a cron whose years are over).
	Next(t time.Time) time.Time
	String() string
}

// ParseSchedule parses an EventBridge schedule expression: rate(N unit) with unit
// minute(s), hour(s) or day(s) (singular exactly for 1, as AWS requires), or the
// six-field cron(minutes hours day-of-month month day-of-week year), evaluated in UTC.
// A rate is anchored at anchor (the time the rule was "created"): it fires at
// anchor+N, anchor+2N, ...
func ParseSchedule(expr string, anchor time.Time) (Spec, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return parseRate(expr, anchor)
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return parseCron(expr)
	case strings.HasPrefix(expr, "at(") && strings.HasSuffix(expr, ")"):
		// EventBridge Scheduler one-time schedule: at(yyyy-mm-ddThh:mm:ss).
		at, err := time.Parse("2006-01-02T15:04:05", expr[3:len(expr)-1])
		if err != nil {
			return nil, fmt.Errorf("%s: want at(yyyy-mm-ddThh:mm:ss)", expr)
		}
		return atSpec{at: at.UTC(), expr: expr}, nil
	}
	return nil, fmt.Errorf("%q: not a rate(...) or cron(...) expression", expr)
}

type rateSpec struct {
	every  time.Duration
	anchor time.Time
	expr   string
}

func parseRate(expr string, anchor time.Time) (Spec, error) {
	fields := strings.Fields(expr[len("rate(") : len(expr)-1])
	if len(fields) != 2 {
		return nil, fmt.Errorf("%s: want rate(N unit)", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("%s: the value must be a positive integer", expr)
	}
	var unit time.Duration
	switch strings.TrimSuffix(fields[1], "s") {
	case "minute":
		unit = time.Minute
	case "hour":
		unit = time.Hour
	case "day":
		unit = 24 * time.Hour
	default:
		return nil, fmt.Errorf("%s: unit must be minute(s), hour(s) or day(s)", expr)
	}
	if plural := strings.HasSuffix(fields[1], "s"); plural != (n != 1) {
		want := strings.TrimSuffix(fields[1], "s")
		if n != 1 {
			want += "s"
		}
		return nil, fmt.Errorf("%s: AWS rejects this; write rate(%d %s)", expr, n, want)
	}
	return rateSpec{every: time.Duration(n) * unit, anchor: anchor, expr: expr}, nil
}

func (r rateSpec) Next(t time.Time) time.Time {
	if t.Before(r.anchor) {
		return r.anchor.Add(r.every)
	}
	k := t.Sub(r.anchor)/r.every + 1
	return r.anchor.Add(k * r.every)
}

func (r rateSpec) String() string { return r.expr }

type atSpec struct {
	at   time.Time
	expr string
}

func (a atSpec) Next(t time.Time) time.Time {
	if t.Before(a.at) {
		return a.at
	}
	return time.Time{}
}

func (a atSpec) String() string { return a.expr }

// cronSpec is an AWS six-field cron expression. Fields are sets of allowed values;
// day-of-month and day-of-week also have the special forms L, W, L-n, nL and n#k.
type cronSpec struct {
	expr                  string
	minutes, hours        [60]bool
	months                [13]bool
	years                 map[int]bool // nil: any
	domAny, dowAny        bool         // "?" in that field
	dom                   [32]bool
	domLast               bool    // L: last day of month
	domLastOffset         int     // L-n
	domWeekday            int     // nW: nearest weekday to day n (0: unused)
	domLastWeekday        bool    // LW
	dow                   [8]bool // 1 = SUN ... 7 = SAT
	dowLast               int     // nL: last weekday n of the month (0: unused)
	dowNth, dowNthWeekday int     // n#k: k-th weekday n of the month
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

func parseCron(expr string) (Spec, error) {
	f := strings.Fields(expr[len("cron(") : len(expr)-1])
	if len(f) != 6 {
		return nil, fmt.Errorf("%s: want 6 fields (minutes hours day-of-month month day-of-week year), got %d", expr, len(f))
	}
	c := &cronSpec{expr: expr}
	fail := func(field string, err error) (Spec, error) {
		return nil, fmt.Errorf("%s: %s: %v", expr, field, err)
	}
	if err := parseField(f[0], 0, 59, nil, func(v int) { c.minutes[v] = true }); err != nil {
		return fail("minutes", err)
	}
	if err := parseField(f[1], 0, 23, nil, func(v int) { c.hours[v] = true }); err != nil {
		return fail("hours", err)
	}
	if err := parseField(f[3], 1, 12, monthNames, func(v int) { c.months[v] = true }); err != nil {
		return fail("month", err)
	}
	if f[5] != "*" {
		c.years = map[int]bool{}
		if err := parseField(f[5], 1970, 2199, nil, func(v int) { c.years[v] = true }); err != nil {
			return fail("year", err)
		}
	}
	c.domAny, c.dowAny = f[2] == "?", f[4] == "?"
	if c.domAny == c.dowAny {
		return nil, fmt.Errorf("%s: exactly one of day-of-month and day-of-week must be ?", expr)
	}
	if !c.domAny {
		if err := c.parseDOM(f[2]); err != nil {
			return fail("day-of-month", err)
		}
	}
	if !c.dowAny {
		if err := c.parseDOW(f[4]); err != nil {
			return fail("day-of-week", err)
		}
	}
	return c, nil
}

func (c *cronSpec) parseDOM(s string) error {
	switch {
	case s == "L":
		c.domLast = true
	case strings.HasPrefix(s, "L-"):
		n, err := strconv.Atoi(s[2:])
		if err != nil || n < 1 || n > 30 {
			return fmt.Errorf("bad %q", s)
		}
		c.domLast, c.domLastOffset = true, n
	case s == "LW":
		c.domLastWeekday = true
	case strings.HasSuffix(s, "W"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "W"))
		if err != nil || n < 1 || n > 31 {
			return fmt.Errorf("bad %q", s)
		}
		c.domWeekday = n
	default:
		return parseField(s, 1, 31, nil, func(v int) { c.dom[v] = true })
	}
	return nil
}

func (c *cronSpec) parseDOW(s string) error {
	if day, nth, ok := strings.Cut(s, "#"); ok {
		d, err := fieldValue(day, dayNames)
		k, err2 := strconv.Atoi(nth)
		if err != nil || err2 != nil || d < 1 || d > 7 || k < 1 || k > 5 {
			return fmt.Errorf("bad %q", s)
		}
		c.dowNthWeekday, c.dowNth = d, k
		return nil
	}
	if day, ok := strings.CutSuffix(s, "L"); ok && day != "" {
		d, err := fieldValue(day, dayNames)
		if err != nil || d < 1 || d > 7 {
			return fmt.Errorf("bad %q", s)
		}
		c.dowLast = d
		return nil
	}
	if s == "L" {
		c.dow[7] = true // L alone in day-of-week is the last day of the week: SAT
		return nil
	}
	return parseField(s, 1, 7, dayNames, func(v int) { c.dow[v] = true })
}

// parseField parses a list of *, values, ranges a-b and steps (*/n, a/n, a-b/n).
func parseField(s string, lo, hi int, names map[string]int, set func(int)) error {
	for _, part := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			var err error
			if step, err = strconv.Atoi(stepStr); err != nil || step < 1 {
				return fmt.Errorf("bad step in %q", part)
			}
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if from, err = fieldValue(a, names); err != nil {
				return err
			}
			if to, err = fieldValue(b, names); err != nil {
				return err
			}
		default:
			v, err := fieldValue(rng, names)
			if err != nil {
				return err
			}
			from, to = v, v
			if hasStep {
				to = hi
			}
		}
		if from < lo || to > hi || from > to {
			return fmt.Errorf("%q is outside %d-%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			set(v)
		}
	}
	return nil
}

func fieldValue(s string, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

func (c *cronSpec) String() string { return c.expr }

// Next walks forward from t in the largest steps that cannot skip a match.
func (c *cronSpec) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= 2199 {
		switch {
		case c.years != nil && !c.years[t.Year()]:
			t = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !c.months[int(t.Month())]:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !c.hours[t.Hour()]:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
		case !c.minutes[t.Minute()]:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

func (c *cronSpec) dayMatches(t time.Time) bool {
	day := t.Day()
	last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if !c.domAny {
		switch {
		case c.domLast:
			return day == last-c.domLastOffset
		case c.domLastWeekday:
			return day == nearestWeekday(t, last, last)
		case c.domWeekday > 0:
			return c.domWeekday <= last && day == nearestWeekday(t, c.domWeekday, last)
		default:
			return c.dom[day]
		}
	}
	wd := int(t.Weekday()) + 1 // SUN = 1
	switch {
	case c.dowNth > 0:
		return wd == c.dowNthWeekday && (day-1)/7+1 == c.dowNth
	case c.dowLast > 0:
		return wd == c.dowLast && day+7 > last
	default:
		return c.dow[wd]
	}
}

// nearestWeekday is the day of t's month that W selects for day n: n itself on a
// weekday, else the nearest weekday without leaving the month.
func nearestWeekday(t time.Time, n, last int) int {
	switch time.Date(t.Year(), t.Month(), n, 0, 0, 0, 0, time.UTC).Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// Schedule is one Schedule/ScheduleV2 event of a function in template.yaml.
type Schedule struct {
	Function   string // logical id
	Event      string // event name
	Type       string // Schedule or ScheduleV2
	Expression string
	// Resource is the rule (Schedule) or schedule (ScheduleV2) ARN put in resources.
	Resource string
	// Input replaces the scheduled event when the template sets one.
	Input json.RawMessage
	// Disabled is true for Enabled: false or State: DISABLED.
	Disabled bool
}

// LoadSchedules returns the schedule events of every function, by function logical id
// and event name.
func LoadSchedules(t *samtemplate.Template) ([]Schedule, error) {
	fns, err := t.Functions()
	if err != nil {
		return nil, err
	}
	var out []Schedule
	for _, f := range fns {
		for _, ev := range f.Events {
			expr, ok := ev.Schedule()
			if !ok {
				continue
			}
			s := Schedule{Function: f.LogicalID, Event: ev.Name, Type: ev.Type, Expression: expr}
			name, _ := ev.Properties["Name"].(string)
			if name == "" {
				// CloudFormation would add a random suffix; locally the name is stable.
				name = t.Env.StackName + "-" + f.LogicalID + ev.Name
			}
			if ev.Type == "ScheduleV2" {
				group, _ := ev.Properties["GroupName"].(string)
				if group == "" {
					group = "default"
				}
				s.Resource = t.Env.ARN("scheduler", "schedule/"+group+"/"+name)
			} else {
				s.Resource = t.Env.ARN("events", "rule/"+name)
			}
			if enabled, ok := ev.Properties["Enabled"].(bool); ok && !enabled {
				s.Disabled = true
			}
			if state, _ := ev.Properties["State"].(string); state == "DISABLED" {
				s.Disabled = true
			}
			if in, ok := ev.Properties["Input"].(string); ok && in != "" {
				if !json.Valid([]byte(in)) {
					return nil, fmt.Errorf("%s event %s: Input is not JSON", f.LogicalID, ev.Name)
				}
				s.Input = json.RawMessage(in)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// ScheduledEvent builds the payload EventBridge delivers for s at time at: the
// "Scheduled Event" of the default bus (or the template's Input, if set).
func ScheduledEvent(t *samtemplate.Template, s Schedule, at time.Time) ([]byte, error) {
	if s.Input != nil {
		return s.Input, nil
	}
	return json.Marshal(events.CloudWatchEvent{
		Version:    "0",
		ID:         randid.UUID(),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  t.Env.AccountID,
		Time:       at.UTC().Truncate(time.Second),
		Region:     t.Env.Region,
		Resources:  []string{s.Resource},
		Detail:     json.RawMessage(`{}`),
	})
}

// invokeFunc runs a function synchronously: the result payload (or error document)
// and the X-Amz-Function-Error value.
type invokeFunc func(ctx context.Context, function string, payload []byte) ([]byte, string, error)

// scheduler fires the template's schedules on their own clock until ctx ends.
type scheduler struct {
	tpl    *samtemplate.Template
	invoke invokeFunc
	log    io.Writer
	wg     sync.WaitGroup
}

// planned is one schedule and when it fires next, for the startup summary.
type planned struct {
	Schedule
	Next time.Time
	Note string // why it does not fire, if it does not
	spec Spec
}

// plan parses every schedule and computes its first fire after now.
func plan(schedules []Schedule, now time.Time) []planned {
	var out []planned
	for _, sc := range schedules {
		p := planned{Schedule: sc}
		spec, err := ParseSchedule(sc.Expression, now)
		switch {
		case sc.Disabled:
			p.Note = "disabled in the template: not fired locally"
		case err != nil:
			p.Note = "not fired locally: " + err.Error()
		default:
			p.spec, p.Next = spec, spec.Next(now)
			if p.Next.IsZero() {
				p.Note = "never fires again: not fired locally"
			}
		}
		out = append(out, p)
	}
	return out
}

// start launches one goroutine per schedule that fires and returns the plan.
func (s *scheduler) start(ctx context.Context, schedules []Schedule, now time.Time) []planned {
	p := plan(schedules, now)
	for _, sc := range p {
		if !sc.Next.IsZero() {
			s.wg.Add(1)
			go s.loop(ctx, sc.Schedule, sc.spec, sc.Next)
		}
	}
	return p
}

func (s *scheduler) loop(ctx context.Context, sc Schedule, spec Spec, next time.Time) {
	defer s.wg.Done()
	for !next.IsZero() {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		s.wg.Add(1)
		go func(at time.Time) { // like EventBridge: a slow run does not delay the next
			defer s.wg.Done()
			s.fire(ctx, sc, at)
		}(next)
		next = spec.Next(next)
	}
}

func (s *scheduler) fire(ctx context.Context, sc Schedule, at time.Time) {
	payload, err := ScheduledEvent(s.tpl, sc, at)
	if err != nil {
		fmt.Fprintf(s.log, "[scheduler] %s %s: %v\n", sc.Function, sc.Event, err)
		return
	}
	fmt.Fprintf(s.log, "[scheduler] %s (%s, %s): scheduled event time=%s\n", sc.Function, sc.Event, sc.Expression, at.UTC().Format(time.RFC3339))
	res, fnErr, err := s.invoke(ctx, sc.Function, payload)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			fmt.Fprintf(s.log, "[scheduler] %s: invoke failed: %v\n", sc.Function, err)
		}
	case fnErr != "":
		fmt.Fprintf(s.log, "[scheduler] %s: function error (%s): %s\n", sc.Function, fnErr, oneLine(res, 300))
	default:
		fmt.Fprintf(s.log, "[scheduler] %s: %s\n", sc.Function, oneLine(res, 300))
	}
}

func (s *scheduler) wait() { s.wg.Wait() }

func oneLine(b []byte, max int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
