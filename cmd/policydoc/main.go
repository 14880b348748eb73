// Command policydoc renders the lifecycle policy table (shared/tenant/policy.go) into
// docs/policy.md, between its markers. Run it from the repository root after changing
// the table: go run ./cmd/policydoc. With -check it changes nothing and fails when the
// page is out of date (TestPolicyDocIsRendered in shared/tenant does the same).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

func main() {
	path := flag.String("doc", "docs/policy.md", "the page to render the table into")
	check := flag.Bool("check", false, "only report whether the page is up to date")
	flag.Parse()
	if err := run(*path, *check); err != nil {
		fmt.Fprintln(os.Stderr, "policydoc:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	page, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := tenant.RenderPolicyDoc(string(page))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if out == string(page) {
		fmt.Println(path, "is up to date")
		return nil
	}
	if check {
		return fmt.Errorf("%s differs from the policy table; run: go run ./cmd/policydoc", path)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		return err
	}
	fmt.Println("rendered the policy table into", path)
	return nil
}
