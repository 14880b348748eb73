package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// usageRequest is the body of PUT /tenants/{id}/usage; every figure is required. The
// ranges are tenant.Usage.Validate's; the field types only make sure that every JSON
// number reaches it, so that an absurd figure is a 422 naming the rule rather than a
// 400 about Go types.
type usageRequest struct {
	Users            *countField  `json:"users"`
	StorageGB        *amountField `json:"storage_gb"`
	APICallsPerMonth *countField  `json:"api_calls_per_month"`
}

// putUsage records the usage the metering service measured. Only UsageScope and admin
// tokens may call it (the policy's usage_report rule; see UsageScope); the figures are
// range-checked before the write.
func (h *Handler) putUsage(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	// The policy's usage_report rule: the metering service or an operator, never
	// the tenant's own token (see UsageScope). The state (anything but PURGED) is the
	// store's conditional write.
	if _, err := r.who.permit(r.tenantID, tenant.ActUsageReport); err != nil {
		return response{}, err
	}
	var in usageRequest
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	switch {
	case in.Users == nil:
		return response{}, &tenant.ValidationError{Field: "users", Reason: "required (an integer >= 0)"}
	case in.StorageGB == nil:
		return response{}, &tenant.ValidationError{Field: "storage_gb", Reason: "required (a number >= 0)"}
	case in.APICallsPerMonth == nil:
		return response{}, &tenant.ValidationError{Field: "api_calls_per_month", Reason: "required (an integer >= 0)"}
	}
	u := tenant.Usage{Users: int64(*in.Users), StorageGB: float64(*in.StorageGB), APICallsPerMonth: int64(*in.APICallsPerMonth)}
	if err := u.Validate(); err != nil {
		return response{}, err
	}
	t, err := h.store.UpdateUsage(ctx, r.tenantID, u)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: h.tenantView(t)}, nil
}

var (
	int64Type   = reflect.TypeFor[int64]()
	float64Type = reflect.TypeFor[float64]()
)

// countField is an integer figure of a usage report. It decodes like an int64, except
// that an integer literal too large for int64 (99999999999999999999) saturates to
// ±MaxInt64 instead of failing, so that Validate refuses it with the 422 that names the
// bounds, like 1000000000000001. Fractions and exponents (2.5, 1e3) stay a 400
// "expected an integer", as for any int64 field.
type countField int64

// UnmarshalJSON implements json.Unmarshaler. encoding/json has already checked that b
// is one well-formed JSON value, and adds the field name to the error it returns.
func (c *countField) UnmarshalJSON(b []byte) error {
	if !isNumber(b) {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: int64Type}
	}
	s := string(b)
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err == nil:
		*c = countField(n)
	case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-"):
		*c = math.MinInt64
	case errors.Is(err, strconv.ErrRange):
		*c = math.MaxInt64
	default:
		return &json.UnmarshalTypeError{Value: "number " + s, Type: int64Type}
	}
	return nil
}

// amountField is a non-integer figure of a usage report (storage_gb). It decodes like a
// float64, except that a number beyond float64 (1e400) becomes ±Inf and a non-zero
// number below it (1e-400, which ParseFloat rounds to 0) becomes the smallest float64,
// so that Validate refuses both instead of the first being a 400 and the second being
// stored as 0. -0 is stored as 0.
type amountField float64

// UnmarshalJSON implements json.Unmarshaler; see countField.UnmarshalJSON.
func (a *amountField) UnmarshalJSON(b []byte) error {
	if !isNumber(b) {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: float64Type}
	}
	s := string(b)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // ErrRange leaves f = ±Inf
		return &json.UnmarshalTypeError{Value: "number " + s, Type: float64Type}
	}
	if f == 0 && nonZeroMantissa(s) {
		f = math.Copysign(math.SmallestNonzeroFloat64, f)
	}
	if f == 0 {
		f = 0 // drop the sign of -0
	}
	*a = amountField(f)
	return nil
}

// isNumber reports whether the JSON value b is a number.
func isNumber(b []byte) bool { return len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) }

// nonZeroMantissa reports whether the JSON number s has a non-zero digit before its
// exponent, i.e. whether it is not 0 however it rounds.
func nonZeroMantissa(s string) bool {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	return strings.ContainsAny(s, "123456789")
}

// jsonKind names a non-number JSON value the way encoding/json's UnmarshalTypeError
// does, so that jsonError words it like every other type error.
func jsonKind(b []byte) string {
	switch b[0] {
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	}
	return "value"
}
