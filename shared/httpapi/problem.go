package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tenantflow/tenantflow/shared/export"
	"github.com/tenantflow/tenantflow/shared/store"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// ContentTypeProblem is the media type of every error response (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// problemTypeBase prefixes every problem type; a URN needs no web page to exist.
const problemTypeBase = "urn:tenantflow:problem:"

// Problem is the body of every error response.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	// RequestID lets support find the request's log line.
	RequestID string `json:"request_id,omitempty"`
	// Violations lists every plan limit that usage exceeds (usage-exceeds-limit).
	Violations []tenant.Violation `json:"violations,omitempty"`
	// Allowed lists the states the tenant may move to (invalid-transition); a pointer
	// so that an empty list (PURGED) is still written.
	Allowed *[]tenant.State `json:"allowed,omitempty"`
}

// bodyError is input that cannot be read as the request's JSON: 400, or 413 when too
// large. Its detail names the field and the problem.
type bodyError struct {
	status int
	detail string
}

func (e *bodyError) Error() string { return e.detail }

func badRequest(format string, args ...any) error {
	return &bodyError{status: http.StatusBadRequest, detail: fmt.Sprintf(format, args...)}
}

// unavailableError is a dependency that failed after a tenant was created. The client
// may repeat the same request to resume; the cause is logged, never returned.
type unavailableError struct {
	detail string
	cause  error
}

func (e *unavailableError) Error() string { return e.detail + ": " + e.cause.Error() }
func (e *unavailableError) Unwrap() error { return e.cause }

// toProblem maps an error to its problem with errors.As, so wrapped domain errors keep
// their status. Anything unrecognised is a 500 whose detail says nothing about the
// cause (Handle logs it).
func toProblem(err error) Problem {
	var (
		be  *bodyError
		ae  *authError
		ue  *unavailableError
		mie *malformedIDError
		uie *unknownIDError
		xre *export.RefusedError
		ule *tenant.UsageExceedsLimitError
		ite *tenant.InvalidTransitionError
		ree *tenant.RetentionExpiredError
		ve  *tenant.ValidationError
		nfe *tenant.NotFoundError
		ce  *tenant.ConflictError
		fe  *tenant.ForbiddenError
	)
	switch {
	case errors.As(err, &be):
		slug := "malformed-request"
		if be.status == http.StatusRequestEntityTooLarge {
			slug = "body-too-large"
		}
		return newProblem(be.status, slug, be.detail)
	case errors.As(err, &ae):
		slug := "forbidden"
		switch ae.status {
		case http.StatusUnauthorized:
			slug = "unauthenticated"
		case http.StatusNotFound:
			slug = "not-found"
		}
		return newProblem(ae.status, slug, ae.detail)
	case errors.As(err, &fe):
		// The lifecycle policy refused the caller's class for this tenant as it is
		// (e.g. the tenant's own token lifting its suspension).
		detail := fe.Error()
		if len(fe.Allowed) > 0 {
			detail += " (" + grants(fe.Allowed, "") + ")"
		}
		return newProblem(http.StatusForbidden, "forbidden", detail)
	case errors.As(err, &ue):
		return newProblem(http.StatusServiceUnavailable, "dependency-unavailable", ue.detail)
	case errors.As(err, &mie):
		return newProblem(http.StatusNotFound, "not-found", mie.Error())
	case errors.As(err, &uie):
		return newProblem(http.StatusNotFound, "not-found", uie.Error())
	case errors.As(err, &xre):
		p := newProblem(http.StatusConflict, "export-refused", xre.Error())
		p.Title = "Export refused"
		return p
	case errors.As(err, &ule):
		p := newProblem(http.StatusUnprocessableEntity, "usage-exceeds-limit", ule.Error())
		p.Title = "Usage exceeds the limits of the target plan"
		p.Violations = ule.Violations
		return p
	case errors.As(err, &ite):
		p := newProblem(http.StatusConflict, "invalid-transition", ite.Error())
		p.Title = "Invalid state transition"
		allowed := append([]tenant.State{}, ite.Allowed...)
		p.Allowed = &allowed
		return p
	case errors.As(err, &ree):
		p := newProblem(http.StatusConflict, "retention-expired", ree.Error())
		p.Title = "Retention period expired"
		return p
	case errors.As(err, &ve):
		detail := ve.Reason
		if ve.Field != "" {
			detail = "field " + ve.Field + ": " + ve.Reason
		}
		return newProblem(http.StatusUnprocessableEntity, "validation-failed", detail)
	case errors.As(err, &nfe):
		return newProblem(http.StatusNotFound, "not-found", nfe.Error())
	case errors.As(err, &ce):
		return newProblem(http.StatusConflict, "conflict", ce.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return newProblem(http.StatusServiceUnavailable, "timeout", "the request ran out of time; it is safe to retry")
	case errors.Is(err, store.ErrContended):
		return newProblem(http.StatusServiceUnavailable, "contended", "the record kept changing under this request; it is safe to retry")
	case isTransient(err):
		return newProblem(http.StatusServiceUnavailable, "dependency-unavailable", "a service this request needs (billing, the workflow engine) is unavailable; it is safe to retry")
	}
	return internalProblem()
}

// isTransient recognises an adapter error that says a retry may succeed (the billing
// adapter's TransientError): a 503 tells the client to retry, a 500 would not.
func isTransient(err error) bool {
	var tr interface{ Transient() bool }
	return errors.As(err, &tr) && tr.Transient()
}

// internalProblem never says what went wrong: the log line has the cause.
func internalProblem() Problem {
	return newProblem(http.StatusInternalServerError, "internal", "an unexpected error occurred; it has been logged")
}

func newProblem(status int, slug, detail string) Problem {
	return Problem{Type: problemTypeBase + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}
