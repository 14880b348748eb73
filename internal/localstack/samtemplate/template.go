// Package samtemplate reads a SAM/CloudFormation template.yaml for the local stack.
//
// goformation was measured lossy (Ref and GetAtt became "", Globals were not merged),
// so this package parses gopkg.in/yaml.v3 nodes itself, understands the CloudFormation
// short tags (!Ref, !Sub, ...) and their long forms (Ref, Fn::Sub, ...), merges SAM
// Globals the way the SAM translator does, and resolves the intrinsic functions to plain
// Go values using local physical names (see Resolver).
//
// Resolution is strict on purpose: an intrinsic that cannot be evaluated locally
// (Fn::ImportValue, Fn::Cidr, Fn::Transform, any unknown tag) is an *Error naming the
// function and its line, so a template change that devstack cannot honour fails a test
// instead of silently producing a wrong value.
package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Options tune how a template is resolved. The zero value is usable.
type Options struct {
	// Params overrides parameter values (by parameter name); a parameter not given here
	// uses its Default. Naming a parameter the template does not declare is an error,
	// because that is almost always a typo.
	Params map[string]string
	// Region is AWS::Region (default us-east-1).
	Region string
	// AccountID is AWS::AccountId (default 123456789012).
	AccountID string
	// StackName is AWS::StackName (default "devstack").
	StackName string
	// Resolver names resources for Ref and Fn::GetAtt (default DefaultResolver).
	Resolver Resolver
}

// Defaults used when Options leaves a field empty.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	DefaultStackName = "devstack"
)

// Env holds the values of the pseudo parameters (AWS::Region, ...).
type Env struct {
	Region    string
	AccountID string
	StackName string
	Partition string
	URLSuffix string
}

// ARN builds arn:<partition>:<service>:<region>:<account>:<resource>.
func (e Env) ARN(service, resource string) string {
	return "arn:" + e.Partition + ":" + service + ":" + e.Region + ":" + e.AccountID + ":" + resource
}

// Parameter is a declared template parameter and the value it resolves to.
type Parameter struct {
	Name          string
	Type          string
	Description   string
	Default       string
	HasDefault    bool
	AllowedValues []string
	// Value is the override from Options.Params, else Default; HasValue reports
	// whether there is one (a parameter without either only fails when referenced).
	Value    string
	HasValue bool
}

// IsList reports whether Ref of the parameter yields a list (CommaDelimitedList, List<...>).
func (p Parameter) IsList() bool {
	return p.Type == "CommaDelimitedList" || strings.HasPrefix(p.Type, "List<") ||
		strings.HasPrefix(p.Type, "AWS::SSM::Parameter::Value<List<")
}

// Resource is one declared resource with its properties resolved to plain values
// (map[string]any, []any, string, int, float64, bool, nil). For types with SAM
// Globals the Globals are already merged in.
type Resource struct {
	LogicalID string
	Type      string
	// Condition is the resource's Condition attribute (the name, not its value).
	Condition  string
	DependsOn  []string
	Properties map[string]any
	Metadata   map[string]any
	// Line is where the resource is declared, for messages.
	Line int
}

// Output is one entry of the Outputs section, resolved.
type Output struct {
	Description string
	Value       any
	ExportName  string
}

// Template is a loaded and resolved template.
type Template struct {
	// Path is the file the template was read from and Dir its directory (relative
	// CodeUri/DefinitionUri values are relative to Dir).
	Path        string
	Dir         string
	Description string
	Transform   []string
	Env         Env
	Parameters  map[string]Parameter
	// Conditions holds the value of every declared condition.
	Conditions map[string]bool
	// Resources holds the resources that exist: those without a Condition or whose
	// Condition is true.
	Resources map[string]Resource
	// Excluded lists the logical IDs of resources whose Condition is false.
	Excluded []string

	mu sync.Mutex // guards r: resolution memoises
	r  *resolver
}

// Error is a template error with its position. Intrinsic is set when the error is an
// intrinsic function that cannot be resolved locally.
type Error struct {
	File      string
	Line      int
	Column    int
	Path      string // e.g. Resources.Api.Properties.Environment
	Intrinsic string // e.g. Fn::ImportValue
	Msg       string
}

// Error renders file:line:column (path): message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and resolves the template at path.
func Load(path string, opts Options) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, opts)
}

// Parse resolves a template held in memory; name is used for Path, Dir and messages.
func Parse(name string, data []byte, opts Options) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || deref(doc.Content[0]).Kind != yaml.MappingNode {
		return nil, &Error{File: name, Msg: "template is not a YAML mapping"}
	}
	root := deref(doc.Content[0])

	env := Env{Region: opts.Region, AccountID: opts.AccountID, StackName: opts.StackName}
	if env.Region == "" {
		env.Region = DefaultRegion
	}
	if env.AccountID == "" {
		env.AccountID = DefaultAccountID
	}
	if env.StackName == "" {
		env.StackName = DefaultStackName
	}
	env.Partition, env.URLSuffix = partitionOf(env.Region)

	names := opts.Resolver
	if names == nil {
		names = DefaultResolver{}
	}
	r := &resolver{
		file:       name,
		env:        env,
		names:      names,
		params:     map[string]*Parameter{},
		mappings:   map[string]*yaml.Node{},
		condNodes:  map[string]*yaml.Node{},
		condMemo:   map[string]bool{},
		resources:  map[string]*rawResource{},
		inProgress: map[string]bool{},
	}
	t := &Template{
		Path:       name,
		Dir:        filepath.Dir(name),
		Env:        env,
		Parameters: map[string]Parameter{},
		Conditions: map[string]bool{},
		Resources:  map[string]Resource{},
		r:          r,
	}

	sections := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		sections[root.Content[i].Value] = deref(root.Content[i+1])
	}
	if n := sections["Description"]; n != nil {
		t.Description = n.Value
	}
	if n := sections["Transform"]; n != nil {
		switch n.Kind {
		case yaml.ScalarNode:
			t.Transform = []string{n.Value}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				t.Transform = append(t.Transform, deref(c).Value)
			}
		}
	}
	if err := r.loadParameters(sections["Parameters"], opts.Params); err != nil {
		return nil, err
	}
	for name, p := range r.params {
		t.Parameters[name] = *p
	}
	if n := sections["Mappings"]; n != nil {
		if err := eachPair(r, n, "Mappings", func(k string, v *yaml.Node) error {
			r.mappings[k] = deref(v)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if n := sections["Conditions"]; n != nil {
		if err := eachPair(r, n, "Conditions", func(k string, v *yaml.Node) error {
			r.condNodes[k] = v
			return nil
		}); err != nil {
			return nil, err
		}
	}
	globals, err := r.loadGlobals(sections["Globals"])
	if err != nil {
		return nil, err
	}
	resNode := sections["Resources"]
	if resNode == nil {
		return nil, &Error{File: name, Msg: "template has no Resources section"}
	}
	if err := r.loadResources(resNode, globals); err != nil {
		return nil, err
	}
	r.outputs = sections["Outputs"]

	// Evaluate every condition so a broken one fails Load even if nothing uses it.
	for _, name := range sortedKeys(r.condNodes) {
		v, err := r.condition(name, r.condNodes[name], "Conditions."+name)
		if err != nil {
			return nil, err
		}
		t.Conditions[name] = v
	}

	for _, id := range sortedKeys(r.resources) {
		raw := r.resources[id]
		if raw.implicit {
			continue
		}
		res := Resource{LogicalID: id, Type: raw.typ, Condition: raw.condition, DependsOn: raw.dependsOn, Line: raw.line}
		if raw.condition != "" {
			ok, err := r.condition(raw.condition, raw.condAt, "Resources."+id+".Condition")
			if err != nil {
				return nil, err
			}
			if !ok {
				t.Excluded = append(t.Excluded, id)
				continue
			}
		}
		props, err := r.mapValue(raw.props, "Resources."+id+".Properties")
		if err != nil {
			return nil, err
		}
		meta, err := r.mapValue(raw.metadata, "Resources."+id+".Metadata")
		if err != nil {
			return nil, err
		}
		res.Properties, res.Metadata = props, meta
		t.Resources[id] = res
	}
	return t, nil
}

// ResourcesOfType returns the existing resources of type typ, sorted by logical ID.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, id := range sortedKeys(t.Resources) {
		if r := t.Resources[id]; r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Ref resolves Ref of a parameter, pseudo parameter or resource, as the template
// would (useful to print local names, e.g. the table name of a logical ID).
func (t *Template) Ref(name string) (any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.r.ref(name, nil, "Ref "+name)
}

// GetAtt resolves Fn::GetAtt of a resource attribute.
func (t *Template) GetAtt(logicalID, attr string) (any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.r.getAtt(logicalID, attr, nil, "GetAtt "+logicalID+"."+attr)
}

// Outputs resolves the Outputs section. It is resolved on demand (not by Load)
// because outputs matter only to whoever prints them.
func (t *Template) Outputs() (map[string]Output, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	out := map[string]Output{}
	if r.outputs == nil {
		return out, nil
	}
	err := eachPair(r, r.outputs, "Outputs", func(name string, n *yaml.Node) error {
		path := "Outputs." + name
		n = deref(n)
		if n.Kind != yaml.MappingNode {
			return r.errf(n, path, "output must be a mapping")
		}
		var o Output
		var valueNode *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch k {
			case "Condition":
				ok, err := r.condition(deref(v).Value, v, path+".Condition")
				if err != nil {
					return err
				}
				if !ok {
					return nil
				}
			case "Description":
				s, err := r.stringValue(v, path+".Description")
				if err != nil {
					return err
				}
				o.Description = s
			case "Value":
				valueNode = v
			case "Export":
				m, err := r.mapValue(v, path+".Export")
				if err != nil {
					return err
				}
				o.ExportName, _ = scalarString(m["Name"])
			}
		}
		if valueNode == nil {
			return r.errf(n, path, "output has no Value")
		}
		v, err := r.value(valueNode, path+".Value")
		if err != nil {
			return err
		}
		if _, ok := v.(noValueType); ok {
			v = nil
		}
		o.Value = v
		out[name] = o
		return nil
	})
	return out, err
}

func (r *resolver) loadParameters(n *yaml.Node, overrides map[string]string) error {
	if n != nil {
		err := eachPair(r, n, "Parameters", func(name string, v *yaml.Node) error {
			v = deref(v)
			path := "Parameters." + name
			if v.Kind != yaml.MappingNode {
				return r.errf(v, path, "parameter must be a mapping")
			}
			p := &Parameter{Name: name, Type: "String"}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, c := v.Content[i].Value, deref(v.Content[i+1])
				switch k {
				case "Type":
					p.Type = c.Value
				case "Description":
					p.Description = c.Value
				case "Default":
					if c.Kind == yaml.SequenceNode { // lenient: a YAML list default for a list type
						var parts []string
						for _, e := range c.Content {
							parts = append(parts, deref(e).Value)
						}
						p.Default = strings.Join(parts, ",")
					} else if c.Kind == yaml.ScalarNode {
						p.Default = c.Value
					} else {
						return r.errf(c, path+".Default", "Default must be a scalar")
					}
					p.HasDefault = true
				case "AllowedValues":
					for _, e := range c.Content {
						p.AllowedValues = append(p.AllowedValues, deref(e).Value)
					}
				}
			}
			p.Value, p.HasValue = p.Default, p.HasDefault
			r.params[name] = p
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(overrides) {
		p, ok := r.params[name]
		if !ok {
			return &Error{File: r.file, Path: "Parameters", Msg: fmt.Sprintf("Options.Params names %q, which the template does not declare", name)}
		}
		p.Value, p.HasValue = overrides[name], true
	}
	for _, name := range sortedKeys(r.params) {
		p := r.params[name]
		if p.HasValue && len(p.AllowedValues) > 0 && !contains(p.AllowedValues, p.Value) {
			return &Error{File: r.file, Path: "Parameters." + name, Msg: fmt.Sprintf("value %q is not one of AllowedValues %v", p.Value, p.AllowedValues)}
		}
	}
	return nil
}

func (r *resolver) loadResources(n *yaml.Node, globals map[string]*yaml.Node) error {
	err := eachPair(r, n, "Resources", func(id string, v *yaml.Node) error {
		v = deref(v)
		path := "Resources." + id
		if v.Kind != yaml.MappingNode {
			return r.errf(v, path, "resource must be a mapping")
		}
		raw := &rawResource{id: id, line: v.Line}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, c := v.Content[i].Value, deref(v.Content[i+1])
			switch k {
			case "Type":
				if c.Kind != yaml.ScalarNode {
					return r.errf(c, path+".Type", "Type must be a string")
				}
				raw.typ = c.Value
			case "Properties":
				raw.props = c
			case "Metadata":
				raw.metadata = c
			case "Condition":
				raw.condition, raw.condAt = c.Value, c
			case "DependsOn":
				if c.Kind == yaml.SequenceNode {
					for _, e := range c.Content {
						raw.dependsOn = append(raw.dependsOn, deref(e).Value)
					}
				} else {
					raw.dependsOn = []string{c.Value}
				}
			}
		}
		if raw.typ == "" {
			return r.errf(v, path, "resource has no Type")
		}
		if raw.props != nil && raw.props.Kind != yaml.MappingNode {
			return r.errf(raw.props, path+".Properties", "Properties must be a mapping")
		}
		if g := globals[raw.typ]; g != nil {
			if raw.props == nil {
				raw.props = g
			} else {
				raw.props = mergeGlobals(g, raw.props)
			}
		}
		r.resources[id] = raw
		return nil
	})
	return err
}

func eachPair(r *resolver, n *yaml.Node, path string, f func(string, *yaml.Node) error) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return r.errf(n, path, "section must be a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if err := f(deref(n.Content[i]).Value, n.Content[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// partitionOf derives AWS::Partition and AWS::URLSuffix from the region name.
func partitionOf(region string) (partition, suffix string) {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn", "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov", "amazonaws.com"
	default:
		return "aws", "amazonaws.com"
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// IsUnsupportedIntrinsic reports whether err is (or wraps) an *Error about an
// intrinsic function that cannot be resolved locally, and returns its name.
func IsUnsupportedIntrinsic(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) && e.Intrinsic != "" {
		return e.Intrinsic, true
	}
	return "", false
}
