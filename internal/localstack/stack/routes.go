package stack

import (
	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// HTTPRoutes reads the HttpApi events of every function of t as the local gateway's
// routes: a route is behind the JWT authorizer (the API's default) unless its event
// says Authorizer: NONE. Tests that put a gateway in front of a stack use it, so they
// serve exactly the template's routes.
func HTTPRoutes(t *samtemplate.Template) ([]gateway.Route, error) {
	fns, err := t.Functions()
	if err != nil {
		return nil, err
	}
	var out []gateway.Route
	for _, f := range fns {
		for _, ev := range f.Events {
			method, path, ok := ev.HttpRoute()
			if !ok || ev.Type != "HttpApi" {
				continue
			}
			auth := true
			if p, _ := ev.Properties["Auth"].(map[string]any); p != nil {
				if name, _ := p["Authorizer"].(string); name == "NONE" {
					auth = false
				}
			}
			out = append(out, gateway.Route{Method: method, Path: path, Function: f.LogicalID, Auth: auth})
		}
	}
	return out, nil
}
