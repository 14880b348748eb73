package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/samtemplate"
)

// APIConfig is what the gateway needs from template.yaml: the routes of every
// function's HttpApi events and the API's JWT authorizer settings.
type APIConfig struct {
	Routes   []gateway.Route
	Stage    string
	Issuer   string
	Audience []string
	// Warnings are template features the local gateway does not emulate.
	Warnings []string
}

// LoadAPIConfig reads the HTTP API of a resolved template. Routes come from every
// function's HttpApi events; a route is guarded by the JWT authorizer when its API has
// a DefaultAuthorizer and the event does not say Auth.Authorizer: NONE (or when the
// event names an authorizer itself). Issuer and audience are the authorizer's
// JwtConfiguration as the template resolves it (the JwtIssuer/JwtAudience parameters),
// falling back to those parameters when no HttpApi declares one.
func LoadAPIConfig(t *samtemplate.Template) (*APIConfig, error) {
	cfg := &APIConfig{}
	fns, err := t.Functions()
	if err != nil {
		return nil, err
	}
	apis := t.ResourcesOfType("AWS::Serverless::HttpApi")
	byRef := map[string]samtemplate.Resource{}
	for _, api := range apis {
		byRef[api.LogicalID] = api
		if ref, err := t.Ref(api.LogicalID); err == nil {
			if s, ok := ref.(string); ok {
				byRef[s] = api
			}
		}
	}
	for _, f := range fns {
		for _, ev := range f.Events {
			if ev.Type == "Api" {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s event %s is a REST API (Api) event: not served locally (only HttpApi)", f.LogicalID, ev.Name))
				continue
			}
			method, path, ok := ev.HttpRoute()
			if !ok || ev.Type != "HttpApi" {
				continue
			}
			var api *samtemplate.Resource
			if id, ok := ev.Properties["ApiId"].(string); ok {
				a, found := byRef[id]
				if !found {
					return nil, fmt.Errorf("%s event %s: ApiId %q names no AWS::Serverless::HttpApi", f.LogicalID, ev.Name, id)
				}
				api = &a
			}
			auth := apiHasDefaultAuthorizer(api)
			authProps, _ := ev.Properties["Auth"].(map[string]any)
			if name, ok := authProps["Authorizer"].(string); ok && name != "" {
				auth = name != "NONE"
			}
			r := gateway.Route{Method: method, Path: path, Function: f.LogicalID, Auth: auth}
			if scopes, ok := authProps["AuthorizationScopes"].([]any); ok {
				for _, s := range scopes {
					if s, ok := s.(string); ok {
						r.Scopes = append(r.Scopes, s)
					}
				}
			}
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	if len(cfg.Routes) == 0 {
		return nil, fmt.Errorf("%s: no function has an HttpApi event: nothing to serve", t.Path)
	}
	sort.SliceStable(cfg.Routes, func(i, j int) bool {
		if cfg.Routes[i].Path != cfg.Routes[j].Path {
			return cfg.Routes[i].Path < cfg.Routes[j].Path
		}
		return cfg.Routes[i].Method < cfg.Routes[j].Method
	})

	for _, api := range apis {
		if st, ok := api.Properties["StageName"].(string); ok && cfg.Stage == "" {
			cfg.Stage = st
		}
		auth, _ := api.Properties["Auth"].(map[string]any)
		authorizers, _ := auth["Authorizers"].(map[string]any)
		for name, a := range authorizers {
			am, _ := a.(map[string]any)
			jc, ok := am["JwtConfiguration"].(map[string]any)
			if !ok {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("%s authorizer %s is not a JWT authorizer: routes using it are checked as JWT locally", api.LogicalID, name))
				continue
			}
			if cfg.Issuer != "" {
				continue
			}
			cfg.Issuer, _ = jc["issuer"].(string)
			switch aud := jc["audience"].(type) {
			case string:
				cfg.Audience = []string{aud}
			case []any:
				for _, a := range aud {
					if s, ok := a.(string); ok {
						cfg.Audience = append(cfg.Audience, s)
					}
				}
			}
		}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = t.Parameters["JwtIssuer"].Value
	}
	if len(cfg.Audience) == 0 && t.Parameters["JwtAudience"].Value != "" {
		cfg.Audience = []string{t.Parameters["JwtAudience"].Value}
	}
	if cfg.Issuer == "" || len(cfg.Audience) == 0 {
		return nil, fmt.Errorf("%s: cannot tell the JWT issuer and audience (no HttpApi JwtConfiguration, no JwtIssuer/JwtAudience parameter)", t.Path)
	}
	return cfg, nil
}

func apiHasDefaultAuthorizer(api *samtemplate.Resource) bool {
	if api == nil { // SAM's implicit API has no authorizer unless configured
		return false
	}
	auth, _ := api.Properties["Auth"].(map[string]any)
	def, _ := auth["DefaultAuthorizer"].(string)
	return def != "" && def != "NONE"
}

// newAuthority returns the JWT authority of the API, its key kept in stateDir so that
// tokens survive restarts.
// ttl is the lifetime of minted tokens (zero: jwtauth.DefaultTTL).
func newAuthority(api *APIConfig, stateDir string, ttl time.Duration) (*jwtauth.Authority, error) {
	return jwtauth.New(jwtauth.Config{Issuer: api.Issuer, Audience: api.Audience, KeyDir: stateDir, TTL: ttl})
}

// describeRoutes renders the route table for the startup log.
func describeRoutes(routes []gateway.Route) string {
	var b strings.Builder
	for _, r := range routes {
		auth := "jwt"
		if !r.Auth {
			auth = "public"
		}
		fmt.Fprintf(&b, "  %-6s %-28s -> %s (%s)\n", r.Method, r.Path, r.Function, auth)
	}
	return b.String()
}
