package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
)

// echo is a stand-in for the local Lambda service.
type echo struct{}

func (echo) Invoke(_ context.Context, function string, _ []byte) ([]byte, string, error) {
	return []byte(`{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"hello from ` + function + `"}`), "", nil
}

func Example() {
	auth, _ := jwtauth.New(jwtauth.Config{Issuer: "https://auth.example.com/", Audience: []string{"tenantflow"}})
	gw, _ := gateway.New(gateway.Config{
		Routes: []gateway.Route{
			{Method: "GET", Path: "/tenants/{id}", Function: "ApiFunction", Auth: true},
			{Method: "POST", Path: "/webhooks/stripe", Function: "StripeWebhookFunction", Auth: false},
		},
		Invoker:    echo{},
		Authorizer: auth,
	})
	srv := httptest.NewServer(gw) // devstack uses http.Server on 127.0.0.1:0
	defer srv.Close()

	token, _ := auth.TenantToken("tenant_acme")
	req := httptest.NewRequest("GET", "/tenants/tenant_acme", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	rec = httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest("GET", "/tenants/tenant_acme", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String())
	// Output:
	// 200 hello from ApiFunction
	// 401 Bearer {"message":"Unauthorized"}
}
