package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/internal/localstack/gateway"
	"github.com/tenantflow/tenantflow/internal/localstack/jwtauth"
	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/shared/app/apiapp"
	"github.com/tenantflow/tenantflow/shared/httpapi"
)

// HandlerOverhead measures what the API handler adds to the one DynamoDB read of
// GET /tenants/{id}: the handler in process (routing, claims, the store's read and
// unmarshal, the view, JSON, the log line) against a bare GetItem of the same item on
// the same moto, and, for reference, the whole local path a client sees.
var HandlerOverhead = Bench{Name: "handler-overhead", Run: runHandlerOverhead}

const (
	// handlerRequests is the number of measured requests per path.
	handlerRequests = 2000
	// handlerBatch is how many requests one path gets before the next takes its turn:
	// alternating batches share out the machine's noisy moments fairly, and a batch
	// keeps each path's connections and caches as warm as in a run of its own.
	handlerBatch = 50
	// handlerWarmup requests per path are not measured (the function's cold start, the
	// first connections).
	handlerWarmup = 50
	// handlerRatio bounds the in-process p50 against the bare read's.
	handlerRatio = 1.3
	// handlerTenant is the example tenant read (seeded by Env.Stack).
	handlerTenant = "tenant_acme"
)

func runHandlerOverhead(ctx context.Context, env *Env) (Section, error) {
	sec := Section{Name: "handler-overhead"}
	s, err := env.Stack(ctx)
	if err != nil {
		return sec, err
	}
	vars, err := functionVars(env, s, "ApiFunction")
	if err != nil {
		return sec, err
	}
	// The function's own wiring reads its environment; it gets the function's, less
	// what only a process of its own needs.
	for _, k := range []string{"PATH", "TZ", "LANG"} {
		delete(vars, k)
	}
	restore := setenv(vars)
	defer restore()
	h, bare, err := buildAPI(ctx)
	if err != nil {
		return sec, err
	}
	viaGateway, stopGateway, err := startGateway(s)
	if err != nil {
		return sec, err
	}
	defer stopGateway()

	ev := apiEvent(handlerTenant)
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "TENANT#" + handlerTenant},
		"sk": &types.AttributeValueMemberS{Value: "TENANT"},
	}
	table := vars["TABLE_NAME"]
	paths := []*path{
		{name: "bare GetItem", call: func(ctx context.Context) error {
			out, err := bare.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
			if err == nil && out.Item == nil {
				err = fmt.Errorf("no item %s in %s", handlerTenant, table)
			}
			return err
		}},
		{name: "in process", call: func(ctx context.Context) error {
			resp, _ := h.Handle(ctx, ev)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("handler answered %d: %s", resp.StatusCode, resp.Body)
			}
			return nil
		}},
		{name: "gateway", call: viaGateway},
	}
	env.Logf("handler overhead: %d requests per path in batches of %d", handlerRequests, handlerBatch)
	if err := alternate(ctx, paths); err != nil {
		return sec, err
	}
	bareP50, bareP99 := Ms(Quantile(paths[0].samples, 0.5)), Ms(Quantile(paths[0].samples, 0.99))
	sec.Rows = []Row{
		NewRow("GET /tenants/{id} in process p50", Ms(Quantile(paths[1].samples, 0.5)), "ms").Vs(bareP50).RatioAtMost(handlerRatio),
		NewRow("GET /tenants/{id} in process p99", Ms(Quantile(paths[1].samples, 0.99)), "ms").Vs(bareP99),
		NewRow("GET /tenants/{id} gateway→Lambda→bootstrap p50", Ms(Quantile(paths[2].samples, 0.5)), "ms").Vs(bareP50),
		NewRow("GET /tenants/{id} gateway→Lambda→bootstrap p99", Ms(Quantile(paths[2].samples, 0.99)), "ms").Vs(bareP99),
	}
	sec.Notes = []string{
		fmt.Sprintf("baseline = a bare SDK GetItem (consistent) of the same tenant item on the same moto: p50 %.2f ms, p99 %.2f ms; %d requests per path, alternating batches of %d",
			bareP50, bareP99, handlerRequests, handlerBatch),
		"in process = httpapi.Handler.Handle built by apiapp.NewAPI as functions/api does, with ApiFunction's environment and credentials; its log line goes to a discarded JSON handler",
		"gateway = HTTP to the local API Gateway (JWT check, payload 2.0 event) → Lambda service → api bootstrap, warm; for reference, no goal",
	}
	return sec, nil
}

// buildAPI builds the API handler with the function's own wiring (as functions/api
// does) and a bare DynamoDB client from the same environment, so both sign with the
// same credentials over the same kind of SDK client. Like a cold start, apiapp.NewAPI
// exits the process on a configuration error; the environment is the one the stack's
// ApiFunction starts with, so that means the template and the stack disagree.
func buildAPI(ctx context.Context) (*httpapi.Handler, *dynamodb.Client, error) {
	a := apiapp.NewAPI("ApiFunction")
	h, err := httpapi.New(httpapi.Config{
		Store: a.Deps.Store(), Provisioner: a.Entitlements, Catalog: a.Deps.Catalog,
		// The function logs one JSON line per request to stdout; here the same line is
		// built and discarded, so the table stays readable.
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)).With("function", "ApiFunction"),
		PlanChanges: a.PlanChanges, Lifecycle: a.Lifecycle, Operations: a.Operations,
		Exports: a.Deps.Exports(), Idempotency: a.Deps.Store(), CursorKey: []byte(os.Getenv("LIST_CURSOR_KEY")),
	})
	if err != nil {
		return nil, nil, err
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	return h, dynamodb.NewFromConfig(cfg), nil
}

// apiEvent is the payload 2.0 event API Gateway sends for GET /tenants/{id} with an
// operator's token.
func apiEvent(id string) events.APIGatewayV2HTTPRequest {
	path := "/tenants/" + id
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "GET /tenants/{id}", RawPath: path, PathParameters: map[string]string{"id": id},
		Headers: map[string]string{"accept": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "GET /tenants/{id}", RequestID: "bench", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: path},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: map[string]string{"sub": "operator", "scope": httpapi.AdminScope},
			}},
		},
	}
}

// startGateway serves GET /tenants/{id} on a local API Gateway in front of the
// stack's Lambda service and returns a call of it with an operator token.
func startGateway(s *stack.Stack) (call func(context.Context) error, stop func(), err error) {
	auth, err := jwtauth.New(jwtauth.Config{Issuer: stack.LocalParams["JwtIssuer"], Audience: []string{stack.LocalParams["JwtAudience"]}})
	if err != nil {
		return nil, nil, err
	}
	token, err := auth.OperatorToken()
	if err != nil {
		return nil, nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Routes:     []gateway.Route{{Method: http.MethodGet, Path: "/tenants/{id}", Function: "ApiFunction", Auth: true}},
		Invoker:    lambdaInvoker{s},
		Authorizer: auth,
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	client := &http.Client{Timeout: 30 * time.Second}
	url := "http://" + ln.Addr().String() + "/tenants/" + handlerTenant
	call = func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("gateway answered %d: %s", resp.StatusCode, body)
		}
		return err
	}
	stop = func() {
		_ = srv.Close()
		client.CloseIdleConnections()
	}
	return call, stop, nil
}

// lambdaInvoker runs the gateway's invocations on the stack's Lambda service.
type lambdaInvoker struct{ s *stack.Stack }

func (l lambdaInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, string, error) {
	res, err := l.s.Lambda.Invoke(ctx, function, payload)
	if err != nil {
		return nil, "", err
	}
	return res.Payload, res.FunctionError, nil
}

// path is one way of serving the request, with its measured latencies.
type path struct {
	name    string
	call    func(context.Context) error
	samples []time.Duration
}

// alternate warms every path up, then gives them batches in turn until each has
// handlerRequests samples.
func alternate(ctx context.Context, paths []*path) error {
	for _, p := range paths {
		for range handlerWarmup {
			if err := p.call(ctx); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	for done := 0; done < handlerRequests; done += handlerBatch {
		for _, p := range paths {
			for range min(handlerBatch, handlerRequests-done) {
				start := time.Now()
				if err := p.call(ctx); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				p.samples = append(p.samples, time.Since(start))
			}
		}
	}
	return nil
}

// functionVars is the environment of one function in the stack (lambdaEnv) as a map.
func functionVars(env *Env, s *stack.Stack, logicalID string) (map[string]string, error) {
	tpl, err := env.Template()
	if err != nil {
		return nil, err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return nil, err
	}
	for i := range fns {
		if fns[i].LogicalID == logicalID {
			vars := map[string]string{}
			for _, kv := range lambdaEnv(s, &fns[i], "") {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			return vars, nil
		}
	}
	return nil, fmt.Errorf("template.yaml has no function %s", logicalID)
}
