package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Problem type URNs a caller may want to branch on (docs/api.md lists every one).
const (
	TypeUsageExceedsLimit     = "urn:tenantflow:problem:usage-exceeds-limit"
	TypeInvalidTransition     = "urn:tenantflow:problem:invalid-transition"
	TypeRetentionExpired      = "urn:tenantflow:problem:retention-expired"
	TypeNotFound              = "urn:tenantflow:problem:not-found"
	TypeConflict              = "urn:tenantflow:problem:conflict"
	TypeForbidden             = "urn:tenantflow:problem:forbidden"
	TypeUnauthenticated       = "urn:tenantflow:problem:unauthenticated"
	TypeValidationFailed      = "urn:tenantflow:problem:validation-failed"
	TypeMalformedRequest      = "urn:tenantflow:problem:malformed-request"
	TypeExportRefused         = "urn:tenantflow:problem:export-refused"
	TypeIdempotencyInProgress = "urn:tenantflow:problem:idempotency-in-progress"
	TypeIdempotencyKeyReused  = "urn:tenantflow:problem:idempotency-key-reused"
	TypeProvisioningAnswered  = "urn:tenantflow:problem:provisioning-answered"
	TypeProvisioningExpired   = "urn:tenantflow:problem:provisioning-expired"
)

// Problem is an error answer (RFC 9457 problem details), returned by every method for
// a status of 400 or more. Answers that are not problem+json (API Gateway's own 401,
// a proxy's 502) become a Problem too, with Type empty and the body as Detail.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Violations are the plan limits usage exceeds (usage-exceeds-limit).
	Violations []Violation `json:"violations,omitempty"`
	// Allowed are the states the tenant may move to (invalid-transition).
	Allowed []State `json:"allowed,omitempty"`

	// Method and Path are the request that got the answer (not part of the body).
	Method string `json:"-"`
	Path   string `json:"-"`
}

// Violation is one limit the usage exceeds.
type Violation struct {
	Limit string  `json:"limit"`
	Usage float64 `json:"usage"`
	Max   float64 `json:"max"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", p.Method, p.Path, p.Status)
	if p.Title != "" {
		b.WriteString(" " + p.Title)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, v := range p.Violations {
		if line := fmt.Sprintf("%s %g > %g", v.Limit, v.Usage, v.Max); !strings.Contains(p.Detail, line) {
			b.WriteString("; " + line)
		}
	}
	if len(p.Allowed) > 0 {
		fmt.Fprintf(&b, " (allowed: %v)", p.Allowed)
	}
	return b.String()
}

// Is makes errors.Is(err, &client.Problem{Type: client.TypeNotFound}) or
// errors.Is(err, &client.Problem{Status: 409}) match on the fields set in target.
func (p *Problem) Is(target error) bool {
	t, ok := target.(*Problem)
	if !ok {
		return false
	}
	return (t.Type == "" || t.Type == p.Type) && (t.Status == 0 || t.Status == p.Status)
}

// problemOf reads an error answer.
func problemOf(method, path string, resp *response) *Problem {
	p := &Problem{}
	if json.Unmarshal(resp.body, p) != nil || p.Status == 0 {
		// Not a problem document: API Gateway's authorizer answers {"message": ...}.
		var gw struct {
			Message string `json:"message"`
		}
		detail := strings.TrimSpace(string(resp.body))
		if json.Unmarshal(resp.body, &gw) == nil && gw.Message != "" {
			detail = gw.Message
		}
		if len(detail) > 500 {
			detail = detail[:500] + "..."
		}
		p = &Problem{Title: http.StatusText(resp.status), Detail: detail}
	}
	p.Status = resp.status
	p.Method, p.Path = method, path
	return p
}

// problemType is the type of a problem body, or "".
func problemType(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Type
}
