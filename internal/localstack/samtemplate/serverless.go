package samtemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SAM defaults for properties a function may leave out.
const (
	DefaultTimeout    = 3   // seconds
	DefaultMemorySize = 128 // MB
)

// Function is an AWS::Serverless::Function with Globals.Function merged in.
type Function struct {
	LogicalID string
	// Name is the function's local name (Ref of it through the Resolver; the logical
	// ID by default) and ARN its Fn::GetAtt Arn.
	Name          string
	ARN           string
	CodeURI       string // as written (relative to Template.Dir); "" if not a path
	Handler       string
	Runtime       string
	Architectures []string // default [x86_64]
	Timeout       int      // seconds, default 3
	MemorySize    int      // MB, default 128
	Environment   map[string]string
	// BuildMethod is Metadata.BuildMethod (makefile, go1.x, ...).
	BuildMethod string
	Events      []Event // sorted by name
	Policies    any
	// Properties are all resolved properties, for anything not lifted above.
	Properties map[string]any
}

// Event is one entry of a function's or state machine's Events.
type Event struct {
	Name       string
	Type       string // HttpApi, Api, Schedule, ScheduleV2, EventBridgeRule, SQS, ...
	Properties map[string]any
}

// HttpRoute returns the route of an HttpApi or Api event. The method is upper case
// ("ANY" for any). An HttpApi event without Path and Method is SAM's catch-all route,
// returned as ("ANY", "$default").
func (e Event) HttpRoute() (method, path string, ok bool) {
	if e.Type != "HttpApi" && e.Type != "Api" {
		return "", "", false
	}
	method, _ = scalarString(e.Properties["Method"])
	path, _ = scalarString(e.Properties["Path"])
	if e.Type == "HttpApi" && method == "" && path == "" {
		return "ANY", "$default", true
	}
	method = strings.ToUpper(method)
	if method == "" {
		method = "ANY"
	}
	return method, path, path != ""
}

// Schedule returns the schedule expression (rate(...) or cron(...)) of a Schedule
// or ScheduleV2 event.
func (e Event) Schedule() (expr string, ok bool) {
	var key string
	switch e.Type {
	case "Schedule":
		key = "Schedule"
	case "ScheduleV2":
		key = "ScheduleExpression"
	default:
		return "", false
	}
	expr, ok = scalarString(e.Properties[key])
	return expr, ok && expr != ""
}

// StateMachine is an AWS::Serverless::StateMachine.
type StateMachine struct {
	LogicalID string
	// Name is the local name (Fn::GetAtt Name) and ARN what Ref returns.
	Name string
	ARN  string
	Type string // STANDARD (default) or EXPRESS
	// DefinitionURI is the DefinitionUri as written; DefinitionPath is it joined to
	// the template directory. Definition is the inline Definition, if any.
	DefinitionURI           string
	DefinitionPath          string
	Definition              map[string]any
	DefinitionSubstitutions map[string]string
	Events                  []Event
	Policies                any
	Properties              map[string]any
}

// placeholder matches the ${Name} placeholders of a state machine definition.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// Render returns the definition as JSON with DefinitionSubstitutions applied. A
// placeholder without a substitution is an error: Step Functions would keep it
// literally and fail only when the state runs.
func (sm StateMachine) Render() ([]byte, error) {
	var text string
	switch {
	case sm.Definition != nil:
		b, err := json.Marshal(sm.Definition)
		if err != nil {
			return nil, err
		}
		text = string(b)
	case sm.DefinitionPath != "":
		b, err := os.ReadFile(sm.DefinitionPath)
		if err != nil {
			return nil, fmt.Errorf("state machine %s: %w", sm.LogicalID, err)
		}
		text = string(b)
	default:
		return nil, fmt.Errorf("state machine %s has neither Definition nor a DefinitionUri path", sm.LogicalID)
	}
	var missing []string
	text = placeholder.ReplaceAllStringFunc(text, func(m string) string {
		key := m[2 : len(m)-1]
		if v, ok := sm.DefinitionSubstitutions[key]; ok {
			return v
		}
		missing = append(missing, key)
		return m
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("state machine %s: no DefinitionSubstitutions for %s", sm.LogicalID, strings.Join(missing, ", "))
	}
	if ext := strings.ToLower(filepath.Ext(sm.DefinitionPath)); sm.Definition == nil && (ext == ".yaml" || ext == ".yml") {
		var v any
		if err := yaml.Unmarshal([]byte(text), &v); err != nil {
			return nil, fmt.Errorf("state machine %s: %w", sm.LogicalID, err)
		}
		return json.Marshal(v)
	}
	if !json.Valid([]byte(text)) {
		return nil, fmt.Errorf("state machine %s: definition is not valid JSON after substitution", sm.LogicalID)
	}
	return []byte(text), nil
}

// Functions returns the AWS::Serverless::Function resources, sorted by logical ID.
func (t *Template) Functions() ([]Function, error) {
	var out []Function
	for _, res := range t.ResourcesOfType("AWS::Serverless::Function") {
		f, err := t.function(res)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Function returns one function by logical ID.
func (t *Template) Function(logicalID string) (Function, error) {
	res, ok := t.Resources[logicalID]
	if !ok || res.Type != "AWS::Serverless::Function" {
		return Function{}, fmt.Errorf("%s: no AWS::Serverless::Function %q", t.Path, logicalID)
	}
	return t.function(res)
}

func (t *Template) function(res Resource) (Function, error) {
	p := res.Properties
	at := func(prop string) string { return "Resources." + res.LogicalID + ".Properties." + prop }
	fail := func(prop, format string, args ...any) error {
		return &Error{File: t.Path, Line: res.Line, Path: at(prop), Msg: fmt.Sprintf(format, args...)}
	}
	f := Function{LogicalID: res.LogicalID, Properties: p, Policies: p["Policies"]}
	var err error
	if f.Name, f.ARN, err = t.names(res.LogicalID, "Arn"); err != nil {
		return f, err
	}
	f.CodeURI, _ = scalarString(p["CodeUri"])
	f.Handler, _ = scalarString(p["Handler"])
	f.Runtime, _ = scalarString(p["Runtime"])
	if f.Timeout, err = intProp(p, "Timeout", DefaultTimeout); err != nil {
		return f, fail("Timeout", "%v", err)
	}
	if f.MemorySize, err = intProp(p, "MemorySize", DefaultMemorySize); err != nil {
		return f, fail("MemorySize", "%v", err)
	}
	f.Architectures = []string{"x86_64"}
	if v, ok := p["Architectures"]; ok {
		list, ok := v.([]any)
		if !ok {
			return f, fail("Architectures", "must be a list")
		}
		f.Architectures = f.Architectures[:0]
		for _, a := range list {
			s, _ := scalarString(a)
			f.Architectures = append(f.Architectures, s)
		}
	}
	f.Environment = map[string]string{}
	if env, ok := p["Environment"].(map[string]any); ok {
		if vars, ok := env["Variables"].(map[string]any); ok {
			for k, v := range vars {
				s, ok := scalarString(v)
				if !ok && v != nil {
					return f, fail("Environment.Variables."+k, "value is %s, not a string", describe(v))
				}
				f.Environment[k] = s
			}
		}
	}
	f.BuildMethod, _ = scalarString(res.Metadata["BuildMethod"])
	if f.Events, err = events(p["Events"]); err != nil {
		return f, fail("Events", "%v", err)
	}
	return f, nil
}

// StateMachines returns the AWS::Serverless::StateMachine resources, sorted by logical ID.
func (t *Template) StateMachines() ([]StateMachine, error) {
	var out []StateMachine
	for _, res := range t.ResourcesOfType("AWS::Serverless::StateMachine") {
		p := res.Properties
		sm := StateMachine{LogicalID: res.LogicalID, Type: "STANDARD", Properties: p, Policies: p["Policies"]}
		fail := func(prop, format string, args ...any) error {
			return &Error{File: t.Path, Line: res.Line, Path: "Resources." + res.LogicalID + ".Properties." + prop, Msg: fmt.Sprintf(format, args...)}
		}
		var err error
		if sm.ARN, sm.Name, err = t.names(res.LogicalID, "Name"); err != nil {
			return nil, err
		}
		if s, ok := scalarString(p["Type"]); ok && s != "" {
			sm.Type = strings.ToUpper(s)
		}
		if s, ok := scalarString(p["DefinitionUri"]); ok && s != "" {
			sm.DefinitionURI = s
			sm.DefinitionPath = s
			if !filepath.IsAbs(s) {
				sm.DefinitionPath = filepath.Join(t.Dir, s)
			}
		}
		if d, ok := p["Definition"].(map[string]any); ok {
			sm.Definition = d
		}
		sm.DefinitionSubstitutions = map[string]string{}
		if subs, ok := p["DefinitionSubstitutions"].(map[string]any); ok {
			for k, v := range subs {
				s, ok := scalarString(v)
				if !ok {
					return nil, fail("DefinitionSubstitutions."+k, "value is %s, not a string", describe(v))
				}
				sm.DefinitionSubstitutions[k] = s
			}
		}
		if sm.Events, err = events(p["Events"]); err != nil {
			return nil, fail("Events", "%v", err)
		}
		out = append(out, sm)
	}
	return out, nil
}

// names returns Ref and Fn::GetAtt attr of a resource, both as strings.
func (t *Template) names(id, attr string) (ref, att string, err error) {
	v, err := t.Ref(id)
	if err != nil {
		return "", "", err
	}
	ref, _ = scalarString(v)
	v, err = t.GetAtt(id, attr)
	if err != nil {
		return "", "", err
	}
	att, _ = scalarString(v)
	return ref, att, nil
}

func events(v any) ([]Event, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a mapping of events")
	}
	out := make([]Event, 0, len(m))
	for name, ev := range m {
		em, ok := ev.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("event %s must be a mapping", name)
		}
		e := Event{Name: name}
		e.Type, _ = scalarString(em["Type"])
		e.Properties, _ = em["Properties"].(map[string]any)
		if e.Properties == nil {
			e.Properties = map[string]any{}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func intProp(p map[string]any, key string, def int) (int, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := scalarString(v)
	if !ok {
		return 0, fmt.Errorf("%s is %s, not a number", key, describe(v))
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer", key, s)
	}
	return n, nil
}
