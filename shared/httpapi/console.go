package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tenantflow/tenantflow/shared/console"
)

// consoleRoutes are the operator console's routes. They have no JWT authorizer in
// template.yaml: the console's files are public, and every datum the console shows
// comes from the API's other routes with the signed-in user's own token.
var consoleRoutes = []string{"GET /console", "GET /console/{proxy+}"}

// Console serves the console's files (*console.Server).
type Console interface {
	Serve(path, base, query string, header http.Header) console.Response
}

// serveConsole answers a console route: no claims are read and no idempotency
// applies, since nothing changes.
func (h *Handler) serveConsole(r *request) (events.APIGatewayV2HTTPResponse, error) {
	if h.console == nil {
		p := newProblem(http.StatusNotFound, "no-route", "the console is not configured (CONSOLE_ISSUER, CONSOLE_CLIENT_ID)")
		return h.problemResponse(r, p), errors.New(p.Detail)
	}
	base := basePath(r.ev)
	hdr := http.Header{}
	for k, v := range r.ev.Headers {
		hdr.Set(k, v)
	}
	res := h.console.Serve(strings.TrimPrefix(r.ev.RawPath, base), base, r.ev.RawQueryString, hdr)
	headers := make(map[string]string, len(res.Header))
	for k := range res.Header {
		headers[k] = res.Header.Get(k)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: res.Status, Headers: headers, Body: string(res.Body)}, nil
}
