package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
)

// TokenOptions say which token to mint.
type TokenOptions struct {
	// Root is the repository root (default: found from the working directory);
	// StateDir holds the signing key (default Root/.devstack).
	Root, StateDir string
	// Tenant binds the token to one tenant (claim tenant_id).
	Tenant string
	// Scope is the token's scope claim; empty means tenants/admin when Tenant is empty
	// (an operator token) and no scope otherwise.
	Scope string
	// Subject overrides sub.
	Subject string
	// TTL is the token lifetime (zero: jwtauth.DefaultTTL).
	TTL time.Duration
}

// MintToken mints a token the devstack gateway accepts. It needs no running stack:
// only the signing key in the state directory, created if missing. Issuer and audience
// are the template's, resolved with the local parameters.
func MintToken(opts TokenOptions) (string, error) {
	root, stateDir, err := resolveDirs(opts.Root, opts.StateDir)
	if err != nil {
		return "", err
	}
	t, err := stack.LoadTemplate(root, nil)
	if err != nil {
		return "", err
	}
	api, err := LoadAPIConfig(t)
	if err != nil {
		return "", err
	}
	auth, err := newAuthority(api, stateDir, opts.TTL)
	if err != nil {
		return "", err
	}
	var c jwtauth.Claims
	if opts.Tenant != "" {
		c = jwtauth.TenantClaims(opts.Tenant)
		if opts.Scope != "" {
			c["scope"] = opts.Scope
		}
	} else {
		c = jwtauth.OperatorClaims()
		if opts.Scope != "" {
			c["scope"] = opts.Scope
		}
	}
	if opts.Subject != "" {
		c["sub"] = opts.Subject
	}
	return auth.Mint(c)
}

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o TokenOptions
	fs.StringVar(&o.Scope, "scope", "", "scope claim (default tenants/admin for an operator token)")
	fs.StringVar(&o.Tenant, "tenant", "", "bind the token to this tenant id (claim tenant_id)")
	fs.StringVar(&o.Subject, "sub", "", "subject (default operator, or user@<tenant>)")
	fs.DurationVar(&o.TTL, "ttl", 0, "token lifetime (default 12h)")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory with the signing key (default .devstack at the repository root)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: devstack token [--scope tenants/admin | --tenant tenant_acme] [--sub S] [--ttl 12h]\n\n"+
			"Prints a JWT the local HTTP API accepts, e.g.\n"+
			"  curl -H \"Authorization: Bearer $(go run ./cmd/devstack token --tenant tenant_acme)\" http://127.0.0.1:3000/tenants/tenant_acme\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "devstack token: unexpected argument %q\n", pos[0])
		return 2
	}
	tok, err := MintToken(o)
	if err != nil {
		fmt.Fprintf(stderr, "devstack token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
