package core_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/app/core"
)

// The S3 half of the IAM wiring: what each function's code can call on S3, found by
// reading the code, must be exactly the S3 grants of its Needs (and the IAM wiring test
// in internal/localstack/iamcheck holds template.yaml to those grants). A new S3 call
// without its grant, or a grant no code uses, fails here.

const (
	s3Pkg        = "github.com/aws/aws-sdk-go-v2/service/s3"
	s3TypesPkg   = "github.com/aws/aws-sdk-go-v2/service/s3/types"
	bucketARN    = "${ExportsBucket.Arn}"
	objectsARN   = "${ExportsBucket.Arn}/exports/*"
	exportPrefix = "exports/*"
)

// s3Level says whether IAM authorises an S3 operation on the bucket (limited to the
// exports/ prefix by an s3:prefix condition where IAM has that key for the action) or
// on an object.
type s3Level int

const (
	onBucket      s3Level = iota // with s3:prefix
	onBucketWhole                // IAM has no s3:prefix key for the action
	onObject
)

// s3Ops maps each S3 client operation the functions may call to the IAM action that
// authorises it (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
// An operation missing here fails the test until it is mapped.
var s3Ops = map[string]struct {
	action string
	level  s3Level
}{
	"ListObjectsV2":           {"s3:ListBucket", onBucket},
	"ListObjects":             {"s3:ListBucket", onBucket},
	"ListObjectVersions":      {"s3:ListBucketVersions", onBucket},
	"ListMultipartUploads":    {"s3:ListBucketMultipartUploads", onBucketWhole},
	"ListParts":               {"s3:ListMultipartUploadParts", onObject},
	"PutObject":               {"s3:PutObject", onObject},
	"CreateMultipartUpload":   {"s3:PutObject", onObject},
	"UploadPart":              {"s3:PutObject", onObject},
	"CompleteMultipartUpload": {"s3:PutObject", onObject},
	"AbortMultipartUpload":    {"s3:AbortMultipartUpload", onObject},
	"DeleteObject":            {"s3:DeleteObject", onObject},
	// DeleteObjects is authorised per key: see the ObjectIdentifier literals below.
	"DeleteObjects":    {"", onObject},
	"GetObject":        {"s3:GetObject", onObject},
	"HeadObject":       {"s3:GetObject", onObject},
	"PresignGetObject": {"s3:GetObject", onObject},
}

// TestS3GrantsMatchCode reads every function's code (its main package and every
// package of this module it links, type-checked from source against the compiled
// export data of everything else), follows the calls from main, resolving a call
// through an interface to every type of the module or S3 client that implements it,
// and collects the S3 operations it can reach. The keys of a DeleteObjects are
// authorised one by one: s3:DeleteObjectVersion for a key given with a VersionId,
// s3:DeleteObject otherwise. Then, per function:
//   - every S3 action the code can call is granted by its Needs, on the bucket (list
//     actions, with an s3:prefix condition of exports/* where IAM has that key for the
//     action) or on exports/* (objects);
//   - every S3 grant of its Needs is reached by its code.
func TestS3GrantsMatchCode(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	dirs := functionDirs(t, root)
	prog := loadProgram(t, root)
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range dirs {
			if !yield(id) {
				return
			}
		}
	}) {
		main := module + "/" + filepath.ToSlash(dirs[id])
		used, err := prog.s3Use(main)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		t.Logf("%s calls on S3: %v", id, used)
		want := map[string]core.Grant{} // action on resource → how the code needs it
		for _, u := range used {
			g := core.Grant{Action: u.action, Resource: objectsARN}
			switch u.level {
			case onBucket:
				g = core.Grant{Action: u.action, Resource: bucketARN, Prefix: exportPrefix}
			case onBucketWhole:
				g = core.Grant{Action: u.action, Resource: bucketARN}
			}
			want[g.Action+" "+g.Resource] = g
		}
		have := map[string]core.Grant{}
		for _, g := range core.Wirings[id].Grants() {
			if !strings.HasPrefix(g.Action, "s3:") {
				continue
			}
			have[g.Action+" "+g.Resource] = g
		}
		for _, k := range slices.Sorted(mapKeys(want)) {
			if g, ok := have[k]; ok && g.Prefix != want[k].Prefix {
				switch want[k].Prefix {
				case "":
					t.Errorf("%s: %s on the bucket has an s3:prefix condition %q, which IAM does not evaluate for it (every request would be denied)", id, g.Action, g.Prefix)
				default:
					t.Errorf("%s: %s on the bucket has s3:prefix condition %q, want %q: a list grant without it lets the function list the whole bucket", id, g.Action, g.Prefix, want[k].Prefix)
				}
			}
			if _, ok := have[k]; !ok {
				t.Errorf("%s's code calls S3 needing %s on %s (%s) but its Needs do not grant it", id, want[k].Action, want[k].Resource, strings.Join(used.callers(want[k].Action), ", "))
			}
		}
		for _, k := range slices.Sorted(mapKeys(have)) {
			if _, ok := want[k]; !ok {
				t.Errorf("%s's Needs grant %s on %s, which its code never calls", id, have[k].Action, have[k].Resource)
			}
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// s3Call is one S3 action a function's code can reach, and from where.
type s3Call struct {
	action string
	level  s3Level
	from   string // the function holding the call
	op     string // the S3 operation
}

type s3Calls []s3Call

func (c s3Calls) callers(action string) []string {
	var out []string
	for _, x := range c {
		if x.action == action {
			out = append(out, x.op+" in "+x.from)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// listedPackage is what `go list -json` says of one package.
type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	Export     string
	GoFiles    []string
	Deps       []string
	Standard   bool
	Module     *struct{ Path string }
}

// program is every package the functions link: this module's type-checked from
// source with their syntax, the others from export data.
type program struct {
	fset   *token.FileSet
	listed map[string]*listedPackage
	pkgs   map[string]*types.Package // this module's, by path
	info   *types.Info
	files  map[string][]*ast.File         // this module's, by package path
	decls  map[*types.Func]*ast.FuncDecl  // every function and method of this module
	owner  map[*types.Func]*types.Package // where each decl lives
	named  []types.Type                   // this module's concrete named types, and *T
	s3     []types.Type                   // *s3.Client and *s3.PresignClient
	roots  map[string][]ast.Node          // per package: init funcs and package-level var values
	memo   map[string]s3Calls
}

func loadProgram(t *testing.T, root string) *program {
	t.Helper()
	// The host's default build (no Lambda tags): it shares its compiled export data
	// with go vet and go test, so a warm run compiles nothing.
	cmd := exec.Command("go", "list", "-deps", "-export", "-json=ImportPath,Name,Dir,Export,GoFiles,Deps,Standard,Module", "./functions/...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	p := &program{fset: token.NewFileSet(), listed: map[string]*listedPackage{}, pkgs: map[string]*types.Package{},
		files: map[string][]*ast.File{}, decls: map[*types.Func]*ast.FuncDecl{}, owner: map[*types.Func]*types.Package{},
		roots: map[string][]ast.Node{}, memo: map[string]s3Calls{},
		info: &types.Info{Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}, Types: map[ast.Expr]types.TypeAndValue{},
			Selections: map[*ast.SelectorExpr]*types.Selection{}}}
	var order []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var lp listedPackage
		if err := dec.Decode(&lp); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.listed[lp.ImportPath] = &lp
		order = append(order, lp.ImportPath) // -deps lists dependencies first
	}
	gc := importer.ForCompiler(p.fset, "gc", func(path string) (io.ReadCloser, error) {
		lp, ok := p.listed[path]
		if !ok || lp.Export == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(lp.Export)
	})
	imp := importerFunc(func(path string) (*types.Package, error) {
		if pkg, ok := p.pkgs[path]; ok {
			return pkg, nil
		}
		return gc.Import(path)
	})
	for _, path := range order {
		lp := p.listed[path]
		if lp.Module == nil || lp.Module.Path != module {
			continue
		}
		var files []*ast.File
		for _, name := range lp.GoFiles {
			f, err := parser.ParseFile(p.fset, filepath.Join(lp.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		conf := types.Config{Importer: imp, Sizes: types.SizesFor("gc", runtime.GOARCH)}
		pkg, err := conf.Check(path, p.fset, files, p.info)
		if err != nil {
			t.Fatalf("type-check %s: %v", path, err)
		}
		p.pkgs[path], p.files[path] = pkg, files
		for _, f := range files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					fn, _ := p.info.Defs[d.Name].(*types.Func)
					if fn == nil {
						continue
					}
					p.decls[fn], p.owner[fn] = d, pkg
					if d.Recv == nil && d.Name.Name == "init" {
						p.roots[path] = append(p.roots[path], d)
					}
				case *ast.GenDecl:
					for _, spec := range d.Specs {
						if vs, ok := spec.(*ast.ValueSpec); ok {
							for _, v := range vs.Values {
								p.roots[path] = append(p.roots[path], v)
							}
						}
					}
				}
			}
		}
		for _, name := range pkg.Scope().Names() {
			tn, ok := pkg.Scope().Lookup(name).(*types.TypeName)
			if !ok || types.IsInterface(tn.Type()) {
				continue
			}
			if n, ok := tn.Type().(*types.Named); ok && n.TypeParams().Len() > 0 {
				continue
			}
			p.named = append(p.named, tn.Type(), types.NewPointer(tn.Type()))
		}
	}
	if s3, err := gc.Import(s3Pkg); err == nil {
		for _, name := range []string{"Client", "PresignClient"} {
			if tn, ok := s3.Scope().Lookup(name).(*types.TypeName); ok {
				p.s3 = append(p.s3, types.NewPointer(tn.Type()))
			}
		}
	}
	return p
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// s3Use walks the code reachable from a function's main package and lists the S3
// actions it can call.
func (p *program) s3Use(mainPkg string) (s3Calls, error) {
	lp, ok := p.listed[mainPkg]
	if !ok || p.pkgs[mainPkg] == nil {
		return nil, fmt.Errorf("%s was not loaded", mainPkg)
	}
	var calls s3Calls
	seen := map[*types.Func]bool{}
	var work []*types.Func
	var problems []string
	reach := func(fn *types.Func) {
		fn = fn.Origin()
		if _, ok := p.decls[fn]; ok && !seen[fn] {
			seen[fn] = true
			work = append(work, fn)
		}
	}
	s3op := func(fn *types.Func, from string) {
		op := fn.Name()
		if strings.HasPrefix(op, "New") && strings.HasSuffix(op, "Paginator") {
			op = strings.TrimSuffix(strings.TrimPrefix(op, "New"), "Paginator")
		}
		m, ok := s3Ops[op]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s calls s3.%s, which s3Ops (shared/app/core/s3_test.go) does not map to an IAM action", from, op))
			return
		}
		if m.action != "" {
			calls = append(calls, s3Call{action: m.action, level: m.level, from: from, op: op})
		}
	}
	visit := func(node ast.Node, from string) {
		ast.Inspect(node, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				fn, ok := p.info.Uses[n].(*types.Func)
				if !ok {
					return true
				}
				sig, _ := fn.Type().(*types.Signature)
				switch pkg := fn.Pkg(); {
				case pkg == nil:
				case strings.HasPrefix(pkg.Path(), "github.com/aws/aws-sdk-go-v2/feature/s3"):
					problems = append(problems, fmt.Sprintf("%s uses %s.%s, whose S3 calls this test cannot see", from, pkg.Path(), fn.Name()))
				case pkg.Path() == s3Pkg && (sig.Recv() != nil || strings.HasSuffix(fn.Name(), "Paginator")):
					s3op(fn, from)
				case sig.Recv() != nil && types.IsInterface(sig.Recv().Type()):
					iface, _ := sig.Recv().Type().Underlying().(*types.Interface)
					for _, typ := range p.named {
						if m := implementation(typ, iface, fn.Name()); m != nil {
							reach(m)
						}
					}
					for _, typ := range p.s3 {
						if m := implementation(typ, iface, fn.Name()); m != nil {
							s3op(m, from)
						}
					}
				default:
					reach(fn)
				}
			case *ast.CompositeLit:
				// The keys of a DeleteObjects (and a DeleteObject): IAM authorises a key
				// with a version id as s3:DeleteObjectVersion, one without as
				// s3:DeleteObject.
				named, _ := types.Unalias(deref(p.info.TypeOf(n))).(*types.Named)
				if named == nil || named.Obj().Pkg() == nil {
					return true
				}
				if path, name := named.Obj().Pkg().Path(), named.Obj().Name(); path == s3TypesPkg && name == "ObjectIdentifier" || path == s3Pkg && name == "DeleteObjectInput" {
					action := "s3:DeleteObject"
					for _, e := range n.Elts {
						if kv, ok := e.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "VersionId" {
								action = "s3:DeleteObjectVersion"
							}
						}
					}
					calls = append(calls, s3Call{action: action, level: onObject, from: from, op: name})
				}
			}
			return true
		})
	}
	for _, dep := range append([]string{mainPkg}, lp.Deps...) {
		for _, node := range p.roots[dep] {
			visit(node, dep)
		}
	}
	if fn, ok := p.pkgs[mainPkg].Scope().Lookup("main").(*types.Func); ok {
		reach(fn)
	} else {
		return nil, fmt.Errorf("%s has no main", mainPkg)
	}
	for len(work) > 0 {
		fn := work[len(work)-1]
		work = work[:len(work)-1]
		if d := p.decls[fn]; d.Body != nil {
			visit(d.Body, funcName(fn))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("%s", strings.Join(slices.Compact(problems), "; "))
	}
	return calls, nil
}

// implementation returns typ's method name when typ implements iface, else nil.
func implementation(typ types.Type, iface *types.Interface, name string) *types.Func {
	if iface == nil || !types.Implements(typ, iface) {
		return nil
	}
	obj, _, _ := types.LookupFieldOrMethod(typ, true, nil, name)
	fn, _ := obj.(*types.Func)
	return fn
}

func deref(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

func funcName(fn *types.Func) string {
	if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil {
		return types.TypeString(sig.Recv().Type(), func(p *types.Package) string { return p.Name() }) + "." + fn.Name()
	}
	return fn.Pkg().Name() + "." + fn.Name()
}
