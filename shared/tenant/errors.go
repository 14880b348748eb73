package tenant

import (
	"fmt"
	"strconv"
	"strings"
)

// InvalidTransitionError is returned when a state change is not in the transition table.
type InvalidTransitionError struct {
	From    State
	To      State
	Allowed []State
}

func (e *InvalidTransitionError) Error() string {
	allowed := "none"
	if len(e.Allowed) > 0 {
		allowed = joinStates(e.Allowed)
	}
	return fmt.Sprintf("invalid transition %s -> %s; allowed from %s: %s", e.From, e.To, e.From, allowed)
}

// UsageExceedsLimitError lists every limit of the target plan that usage exceeds.
type UsageExceedsLimitError struct {
	Plan       Plan
	Violations []Violation
}

func (e *UsageExceedsLimitError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return fmt.Sprintf("usage exceeds the limits of plan %s: %s", e.Plan, strings.Join(parts, ", "))
}

// RetentionExpiredError is returned when a deleted tenant is reactivated after its
// retention window closed.
type RetentionExpiredError struct {
	TenantID   string
	PurgeAfter string
}

func (e *RetentionExpiredError) Error() string {
	return fmt.Sprintf("retention period expired for tenant %s (ended %s)", e.TenantID, e.PurgeAfter)
}

// ConflictError means the tenant changed under us: the expected state or version no
// longer holds, or the item already exists.
type ConflictError struct {
	TenantID string
	Reason   string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict on tenant %s: %s", e.TenantID, e.Reason)
}

// NotFoundError means the named resource does not exist.
type NotFoundError struct {
	Kind string
	ID   string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %s not found", e.Kind, e.ID) }

// ValidationError is bad input, named by field.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func joinStates(s []State) string {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = string(st)
	}
	return strings.Join(parts, ", ")
}

func quote(s string) string { return strconv.Quote(s) }
