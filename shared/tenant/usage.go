package tenant

import "fmt"

// Usage is what the platform's metering service reports a tenant consumes right now.
//
// Every figure is bounded, because it is stored as a DynamoDB number (magnitude
// 1e-130..1e+125, at most 38 significant digits: anything else is a ValidationException
// on write, which would surface as a 500) and compared with plan limits on every
// downgrade. The bounds are product bounds, far above any real tenant and well inside
// what DynamoDB stores:
//   - Users and APICallsPerMonth are integers in 0..1e15 (MaxUsers, MaxAPICallsPerMonth).
//     1e15 is below 2^53, so the figures stay exact as float64 (Violation) and as
//     JavaScript numbers in clients.
//   - StorageGB is 0 or in [1e-6, 1e9] (MinStorageGB, MaxStorageGB): from about 1 kB
//     to 1 EB. A float64 written in its shortest form has at most 17 significant
//     digits, so every value in this range is a valid DynamoDB number; 1e200 and 1e-200
//     are refused rather than failing at DynamoDB or rounding to a wrong figure.
type Usage struct {
	Users            int64   `json:"users"`
	StorageGB        float64 `json:"storage_gb"`
	APICallsPerMonth int64   `json:"api_calls_per_month"`
}

// Bounds of a usage report; see Usage for why these values.
const (
	MaxUsers            = 1_000_000_000_000_000 // 1e15
	MaxAPICallsPerMonth = 1_000_000_000_000_000 // 1e15
	MinStorageGB        = 1e-6                  // about 1 kB; smaller non-zero figures are noise
	MaxStorageGB        = 1e9                   // 1 EB
)

// The reasons name the bounds so that the 422 tells the client the whole rule.
const (
	usersRule     = "must be an integer between 0 and 1000000000000000 (1e15)"
	callsRule     = "must be an integer between 0 and 1000000000000000 (1e15)"
	storageGBRule = "must be 0 or a number between 0.000001 and 1000000000 (1e-6 to 1e9 GB)"
)

// Validate refuses figures outside the bounds documented on Usage, naming the first
// field that is out of range. NaN and ±Inf are refused too: they cannot come from JSON
// but can from other callers, and DynamoDB cannot store them.
func (u Usage) Validate() error {
	switch {
	case u.Users < 0 || u.Users > MaxUsers:
		return &ValidationError{Field: "users", Reason: usersRule}
	case !validStorageGB(u.StorageGB):
		return &ValidationError{Field: "storage_gb", Reason: storageGBRule}
	case u.APICallsPerMonth < 0 || u.APICallsPerMonth > MaxAPICallsPerMonth:
		return &ValidationError{Field: "api_calls_per_month", Reason: callsRule}
	}
	return nil
}

// validStorageGB is written as a range test, not as a list of refusals, so that NaN
// (for which every comparison is false) and ±Inf fail it.
func validStorageGB(gb float64) bool {
	return gb == 0 || (gb >= MinStorageGB && gb <= MaxStorageGB)
}

// Violation is one limit that usage exceeds.
type Violation struct {
	Limit string  `json:"limit"`
	Usage float64 `json:"usage"`
	Max   float64 `json:"max"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s > %s", v.Limit, trimFloat(v.Usage), trimFloat(v.Max))
}

// CheckUsage returns every limit of plan that u exceeds (in a fixed order: users,
// storage_gb, api_calls_per_month), or nil when u fits.
func CheckUsage(u Usage, l Limits) []Violation {
	var out []Violation
	if l.Users >= 0 && u.Users > l.Users {
		out = append(out, Violation{Limit: "users", Usage: float64(u.Users), Max: float64(l.Users)})
	}
	if l.StorageGB >= 0 && u.StorageGB > l.StorageGB {
		out = append(out, Violation{Limit: "storage_gb", Usage: u.StorageGB, Max: l.StorageGB})
	}
	if l.APICallsPerMonth >= 0 && u.APICallsPerMonth > l.APICallsPerMonth {
		out = append(out, Violation{Limit: "api_calls_per_month", Usage: float64(u.APICallsPerMonth), Max: float64(l.APICallsPerMonth)})
	}
	return out
}

// FitsPlan returns *UsageExceedsLimitError listing every exceeded limit of plan p
// (a tenant without overrides; FitsPlanWith applies them).
func (c *Catalog) FitsPlan(u Usage, p Plan) error { return c.FitsPlanWith(u, p, nil) }

func trimFloat(f float64) string { return fmt.Sprintf("%g", f) }
