package tenant

import "fmt"

// Usage is what the application reports a tenant consumes right now.
type Usage struct {
	Users            int64   `json:"users"`
	StorageGB        float64 `json:"storage_gb"`
	APICallsPerMonth int64   `json:"api_calls_per_month"`
}

// Validate rejects negative figures.
func (u Usage) Validate() error {
	switch {
	case u.Users < 0:
		return &ValidationError{Field: "users", Reason: "must be >= 0"}
	case u.StorageGB < 0:
		return &ValidationError{Field: "storage_gb", Reason: "must be >= 0"}
	case u.APICallsPerMonth < 0:
		return &ValidationError{Field: "api_calls_per_month", Reason: "must be >= 0"}
	}
	return nil
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

// FitsPlan returns *UsageExceedsLimitError listing every exceeded limit of plan p.
func (c *Catalog) FitsPlan(u Usage, p Plan) error {
	l, ok := c.Limits(p)
	if !ok {
		_, err := c.Parse(string(p))
		return err
	}
	if v := CheckUsage(u, l); len(v) > 0 {
		return &UsageExceedsLimitError{Plan: p, Violations: v}
	}
	return nil
}

func trimFloat(f float64) string { return fmt.Sprintf("%g", f) }
