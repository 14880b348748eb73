package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/internal/localstack/stack"
	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

// api sends API Gateway (payload 2.0) events with an operator's claims through the
// stack's real api bootstrap, as API Gateway would after its JWT authorizer.
type api struct {
	s   *stack.Stack
	seq atomic.Int64
}

// call sends one request and returns the status and body of the answer. A function
// error (the API crashed, or timed out) is an error, not a status.
func (a *api) call(ctx context.Context, method, path, route string, params map[string]string, body any) (int, []byte, error) {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + route, RawPath: path, PathParameters: params,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + route, RequestID: fmt.Sprintf("loadgen-%d", a.seq.Add(1)), Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: map[string]string{"sub": "operator_loadgen", "scope": "tenants/admin"},
			}},
		},
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		ev.Body = string(b)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return 0, nil, err
	}
	res, err := a.s.Lambda.Invoke(ctx, "ApiFunction", raw)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if err := res.Err(); err != nil {
		return 0, nil, fmt.Errorf("%s %s: api function error: %w", method, path, err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		return 0, nil, fmt.Errorf("%s %s: answer %s: %w", method, path, res.Payload, err)
	}
	return resp.StatusCode, []byte(resp.Body), nil
}

// start sends req for tenant id and returns the answer's status and, for a 202, the
// id of the operation (or export) it started.
func (a *api) start(ctx context.Context, id string, req Request) (status int, opID string, body []byte, err error) {
	p := map[string]string{"id": id}
	base := "/tenants/" + id
	switch req.Kind {
	case Upgrade, Downgrade:
		status, body, err = a.call(ctx, http.MethodPost, base+"/"+string(req.Kind), "/tenants/{id}/"+string(req.Kind), p, map[string]any{"plan": req.Plan})
	case Suspend:
		status, body, err = a.call(ctx, http.MethodPost, base+"/suspend", "/tenants/{id}/suspend", p, map[string]any{"reason": "load test"})
	case Reactivate:
		status, body, err = a.call(ctx, http.MethodPost, base+"/reactivate", "/tenants/{id}/reactivate", p, map[string]any{"plan": req.Plan})
	case Delete:
		status, body, err = a.call(ctx, http.MethodDelete, base, "/tenants/{id}", p, nil)
	case Export:
		status, body, err = a.call(ctx, http.MethodPost, base+"/exports", "/tenants/{id}/exports", p, nil)
	default:
		return 0, "", nil, fmt.Errorf("unknown request kind %q", req.Kind)
	}
	if err != nil || status != http.StatusAccepted {
		return status, "", body, err
	}
	var v struct {
		OperationID string `json:"operation_id"`
		ExportID    string `json:"export_id"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return status, "", body, fmt.Errorf("%s of %s: 202 %s: %w", req, id, body, err)
	}
	if opID = v.OperationID; req.Kind == Export {
		opID = v.ExportID
	}
	if opID == "" {
		return status, "", body, fmt.Errorf("%s of %s: 202 without an id: %s", req, id, body)
	}
	return status, opID, body, nil
}

// opView is what GET /operations/{id} (admin view) or GET /tenants/{id}/exports/{eid}
// says of an operation or export.
type opView struct {
	Status         string `json:"status"`
	Error          string `json:"error"`
	NeedsAttention bool   `json:"needs_attention"`
	PreviousState  string `json:"previous_state"`
	Attempt        int    `json:"attempt"`
}

// terminal reports whether the view is an end: SUCCEEDED/FAILED, completed/failed.
func (v opView) terminal() bool {
	switch v.Status {
	case "SUCCEEDED", "FAILED", "completed", "failed":
		return true
	}
	return false
}

// succeeded reports whether the view is a successful end.
func (v opView) succeeded() bool { return v.Status == "SUCCEEDED" || v.Status == "completed" }

// get reads the operation (or the export of tenant id) through the API.
func (a *api) get(ctx context.Context, id string, req Request, opID string) (opView, error) {
	var status int
	var body []byte
	var err error
	if req.Kind == Export {
		status, body, err = a.call(ctx, http.MethodGet, "/tenants/"+id+"/exports/"+opID, "/tenants/{id}/exports/{export_id}",
			map[string]string{"id": id, "export_id": opID}, nil)
	} else {
		status, body, err = a.call(ctx, http.MethodGet, "/operations/"+opID, "/operations/{id}", map[string]string{"id": opID}, nil)
	}
	var v opView
	if err != nil {
		return v, err
	}
	if status != http.StatusOK {
		return v, fmt.Errorf("GET %s: %d %s", opID, status, body)
	}
	return v, json.Unmarshal(body, &v)
}

// retry asks for the operator retry of an operation that needs attention.
func (a *api) retry(ctx context.Context, opID string) error {
	status, body, err := a.call(ctx, http.MethodPost, "/operations/"+opID+"/retry", "/operations/{id}/retry", map[string]string{"id": opID}, nil)
	if err == nil && status != http.StatusAccepted {
		err = fmt.Errorf("POST /operations/%s/retry: %d %s", opID, status, body)
	}
	return err
}

// reconcileResult is what ReconcileFunction answers.
type reconcileResult struct {
	Checked  int      `json:"checked"`
	Running  int      `json:"running"`
	Ended    []string `json:"ended"`
	Released []string `json:"released"`
	Failed   []string `json:"failed"`
	// The export jobs pass of the same run.
	ExportsChecked int `json:"exports_checked"`
	ExportsEnded   int `json:"exports_ended"`
	ExportsFailed  int `json:"exports_failed"`
}

// reconcile runs one scheduled ReconcileFunction now, as its EventBridge schedule
// would.
func (a *api) reconcile(ctx context.Context) (reconcileResult, error) {
	return a.reconcileAt(ctx, time.Now().UTC())
}

// reconcileAt runs one scheduled ReconcileFunction with the event time at.
func (a *api) reconcileAt(ctx context.Context, at time.Time) (reconcileResult, error) {
	raw, _ := json.Marshal(events.CloudWatchEvent{Version: "0", ID: fmt.Sprintf("loadgen-reconcile-%d", a.seq.Add(1)), DetailType: "Scheduled Event",
		Source: "aws.events", AccountID: testenv.AccountID, Time: at.UTC(), Region: testenv.Region, Detail: json.RawMessage("{}")})
	var out reconcileResult
	res, err := a.s.Lambda.Invoke(ctx, "ReconcileFunction", raw)
	if err != nil {
		return out, err
	}
	if err := res.Err(); err != nil {
		return out, fmt.Errorf("ReconcileFunction: %w", err)
	}
	return out, json.Unmarshal(res.Payload, &out)
}
