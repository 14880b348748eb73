package config

import (
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestLoadDefaultsAndOverrides(t *testing.T) {
	t.Setenv("TABLE_NAME", "Tenants")
	t.Setenv("DEFAULT_RETENTION_DAYS", "45")
	t.Setenv("PLAN_LIMITS", `{"free":{"users":5,"storage_gb":2,"api_calls_per_month":20000}}`)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "Tenants" || c.DefaultRetentionDays != 45 {
		t.Fatalf("config %+v", c)
	}
	if l, _ := c.Catalog.Limits(tenant.Free); l.Users != 5 {
		t.Fatalf("PLAN_LIMITS not applied: %+v", l)
	}
	if l, _ := c.Catalog.Limits(tenant.Starter); l.Users != 10 {
		t.Fatalf("other plans must keep their defaults: %+v", l)
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	for name, env := range map[string][2]string{
		"retention too short": {"DEFAULT_RETENTION_DAYS", "10"},
		"retention not int":   {"DEFAULT_RETENTION_DAYS", "thirty"},
		"limits not json":     {"PLAN_LIMITS", "{"},
		"limits unknown plan": {"PLAN_LIMITS", `{"gold":{"users":1}}`},
		"catalogue not json":  {"PLAN_CATALOG", "{"},
		"catalogue ranks":     {"PLAN_CATALOG", `{"version":"v","plans":[{"name":"a","rank":0,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{}},{"name":"b","rank":0,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":1},"features":{}}]}`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			if _, err := Load(); err == nil || !strings.Contains(err.Error(), env[0]) {
				t.Fatalf("want an error naming %s, got %v", env[0], err)
			}
		})
	}
}

func TestRequireNamesEveryMissingVariable(t *testing.T) {
	t.Setenv("A_SET", "x")
	t.Setenv("B_EMPTY", "")
	err := Require("A_SET", "B_EMPTY", "C_UNSET_FOR_TEST")
	if err == nil || !strings.Contains(err.Error(), "B_EMPTY") || !strings.Contains(err.Error(), "C_UNSET_FOR_TEST") || strings.Contains(err.Error(), "A_SET") {
		t.Fatalf("Require: %v", err)
	}
}

func TestLoadSuppliedCatalogue(t *testing.T) {
	t.Setenv("PLAN_CATALOG", `{"version":"2027-01","plans":[{"name":"solo","rank":0,"limits":{"users":1,"storage_gb":1,"api_calls_per_month":100},"features":{"sso":false}},{"name":"team","rank":1,"limits":{"users":20,"storage_gb":null,"api_calls_per_month":null},"features":{"sso":true}}]}`)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Catalog.Version() != "2027-01" || c.Catalog.Rank("team") != 1 || c.Catalog.Rank(tenant.Free) != -1 {
		t.Fatalf("catalogue %s %v", c.Catalog.Version(), c.Catalog.Plans())
	}
	t.Setenv("PLAN_CATALOG", "")
	if c, _ := Load(); c.Catalog.Version() != tenant.DefaultCatalog().Version() {
		t.Fatalf("empty PLAN_CATALOG: %s", c.Catalog.Version())
	}
}
