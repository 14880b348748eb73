package core

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/store"
)

// TestGrantsForm pins what Grants returns for each Needs field, in the Fn::Sub form
// the IAM wiring test resolves against template.yaml.
func TestGrantsForm(t *testing.T) {
	n := Needs{Tenants: true, Queries: []string{QueryTable, store.DueIndex}, Events: true, Stripe: true,
		Start: []string{"AMachine"}, Describe: []string{"BMachine"}}
	want := []Grant{
		{Action: "dynamodb:GetItem", Resource: "${TenantsTable.Arn}"},
		{Action: "dynamodb:PutItem", Resource: "${TenantsTable.Arn}"},
		{Action: "dynamodb:UpdateItem", Resource: "${TenantsTable.Arn}"},
		{Action: "dynamodb:Query", Resource: "${TenantsTable.Arn}"},
		{Action: "dynamodb:Query", Resource: "${TenantsTable.Arn}/index/Due"},
		{Action: "events:PutEvents", Resource: "${LifecycleEventBus.Arn}"},
		{Action: "secretsmanager:GetSecretValue", Resource: "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${StripeSecretName}-*", Condition: HasStripeSecret},
		{Action: "states:StartExecution", Resource: "${AMachine}"},
		{Action: "states:DescribeExecution", Resource: "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${BMachine.Name}:*"},
	}
	if got := n.Grants(); !reflect.DeepEqual(got, want) {
		t.Errorf("Grants:\n got %+v\nwant %+v", got, want)
	}
	if got := (Needs{}).Grants(); len(got) != 0 {
		t.Errorf("zero Needs grant %+v, want nothing", got)
	}
}

// TestGrantsMapEveryNeedsField fails when a Needs field, set on its own, yields no
// grant: someone added a field (a data table, a bucket, ...) and Deps may build its
// client, but Grants does not map it, so the template test could never ask for it.
// Each field is tried with a sample value and with every value Wirings gives it.
func TestGrantsMapEveryNeedsField(t *testing.T) {
	typ := reflect.TypeFor[Needs]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		values := []reflect.Value{sample(t, f)}
		for _, id := range sortedWirings() {
			if v := reflect.ValueOf(Wirings[id]).Field(i); !v.IsZero() {
				values = append(values, v)
			}
		}
		for _, v := range values {
			var n Needs
			reflect.ValueOf(&n).Elem().Field(i).Set(v)
			if len(n.Grants()) == 0 {
				t.Errorf("Needs.%s = %v yields no grant: map it in Needs.Grants (shared/app/core/grants.go)", f.Name, v)
				break
			}
		}
	}
}

// sample is a non-zero value for a Needs field.
func sample(t *testing.T, f reflect.StructField) reflect.Value {
	v := reflect.New(f.Type).Elem()
	switch {
	case f.Type.Kind() == reflect.Bool:
		v.SetBool(true)
	case f.Type.Kind() == reflect.String:
		v.SetString("Sample")
	case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf([]string{"Sample"}).Convert(f.Type))
	default:
		t.Fatalf("Needs.%s is a %s: teach sample (grants_test.go) to set it", f.Name, f.Type)
	}
	return v
}

func sortedWirings() []string {
	ids := make([]string, 0, len(Wirings))
	for id := range Wirings {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestStorePortIsMapped ties Grants to the code: every method of the store's DynamoDB
// port must have an IAM mapping in storePort, so adding Scan or DeleteItem to the
// port fails here until it is mapped (and then fails the template test until
// template.yaml grants it).
func TestStorePortIsMapped(t *testing.T) {
	port := reflect.TypeFor[store.DynamoDB]()
	methods := map[string]bool{}
	for i := range port.NumMethod() {
		name := port.Method(i).Name
		methods[name] = true
		m, ok := storePort[name]
		if !ok {
			t.Errorf("store.DynamoDB has %s but storePort (shared/app/core/grants.go) does not say which IAM actions authorise it", name)
			continue
		}
		if len(m.actions) == 0 {
			t.Errorf("storePort maps %s to no IAM action", name)
		}
		if _, ok := reflect.TypeFor[Needs]().FieldByName(m.needs); !ok {
			t.Errorf("storePort grants %s through Needs.%s, which does not exist", name, m.needs)
		}
	}
	for name := range storePort {
		if !methods[name] {
			t.Errorf("storePort maps %s, which store.DynamoDB no longer has: remove it", name)
		}
	}
}

// TestStoreTransactionsHoldOnlyPutAndUpdate backs the TransactWriteItems mapping:
// IAM authorises each element of a transaction as its own action, and storePort
// assumes only Put and Update elements. A Delete or ConditionCheck element in
// shared/store would be denied in AWS (DeleteItem/ConditionCheckItem are not
// granted), so it fails here.
func TestStoreTransactionsHoldOnlyPutAndUpdate(t *testing.T) {
	found, err := deleteOrConditionCheck(filepath.Join("..", "..", "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range found {
		t.Errorf("%s in a transaction needs an IAM action storePort does not grant for TransactWriteItems (shared/app/core/grants.go)", at)
	}
}

// deleteOrConditionCheck lists where the non-test Go files of dir use a Delete or
// ConditionCheck transaction element.
func deleteOrConditionCheck(dir string) ([]string, error) {
	const typesPath = "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no Go sources in %s (%v)", dir, err)
	}
	var found []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			return nil, err
		}
		alias := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == typesPath {
				alias = "types"
				if imp.Name != nil {
					alias = imp.Name.Name
				}
			}
		}
		if alias == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var what string
			switch n := n.(type) {
			case *ast.SelectorExpr: // types.Delete{...}, new(types.ConditionCheck)
				if x, ok := n.X.(*ast.Ident); ok && x.Name == alias && (n.Sel.Name == "Delete" || n.Sel.Name == "ConditionCheck") {
					what = alias + "." + n.Sel.Name
				}
			case *ast.KeyValueExpr: // {Delete: ...} with the element type elided
				if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "Delete" || k.Name == "ConditionCheck") {
					what = k.Name + ":"
				}
			}
			if what != "" {
				found = append(found, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), what))
			}
			return true
		})
	}
	return found, nil
}
