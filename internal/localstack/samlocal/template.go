package samlocal

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"gopkg.in/yaml.v3"
)

// LambdaArch is the Lambda architecture name of the host (x86_64 or arm64): the
// functions run in containers on this machine, so they must be built for it.
func LambdaArch() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// WriteTemplate writes a copy of the template at src to dst that `sam local invoke`
// runs on this machine: every function's Architectures is the host's, and its CodeUri
// is buildDir/<LogicalId>, the directory holding its prebuilt bootstrap, without the
// makefile build Metadata (sam would otherwise want `sam build` first). Everything
// else (environment, timeouts, memory, handler, parameters) stays as written, so SAM
// reads the real template's functions. The template itself stays arm64 for AWS.
//
// It edits yaml.v3 nodes, which keep the CloudFormation short tags (!Ref, !Sub, ...)
// SAM resolves itself.
func WriteTemplate(src, dst, buildDir string) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: not a template", src)
	}
	top := doc.Content[0]
	arch := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: LambdaArch()}}}
	if g := child(child(top, "Globals"), "Function"); g != nil {
		set(g, "Architectures", arch)
	}
	resources := child(top, "Resources")
	if resources == nil {
		return fmt.Errorf("%s: no Resources", src)
	}
	n := 0
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if typ := child(res, "Type"); typ == nil || typ.Value != "AWS::Serverless::Function" {
			continue
		}
		props := child(res, "Properties")
		if props == nil {
			props = &yaml.Node{Kind: yaml.MappingNode}
			set(res, "Properties", props)
		}
		set(props, "CodeUri", &yaml.Node{Kind: yaml.ScalarNode, Value: filepath.Join(buildDir, id)})
		if child(props, "Architectures") != nil {
			set(props, "Architectures", arch)
		}
		remove(res, "Metadata")
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s declares no AWS::Serverless::Function", src)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o644)
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func set(n *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = v
			return
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

func remove(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}
