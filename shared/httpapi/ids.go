package httpapi

import (
	"regexp"
	"sync"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// Path ids are checked before anything reads them: an id DynamoDB or Step Functions
// would refuse (a key over 2 KB, an execution name over 80 characters) would otherwise
// come back as a 500, and a malformed id cannot name anything, so it is a 404 like a
// missing resource. The rules are public, so the 404 tells nothing about what exists.

// Rules of path ids, as stated in the 404 of a malformed one.
const (
	tenantIDRule    = "tenant ids are 3-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
	operationIDRule = `operation ids are "op_" followed by 1-77 characters of a-z, 0-9 or '_'`
	exportIDRule    = `export ids are "exp_" followed by 1-76 characters of a-z, 0-9 or '_'`
)

// operationIDPattern is the shape of every operation id. flow.NewOperationID makes
// "op_" + hexadecimal milliseconds + "_" + 16 hexadecimal digits (30 characters today);
// the id is also the name of the operation's first Step Functions execution, and
// execution names are at most 80 characters, so no longer id can exist.
// It is compiled on first use: compiling its counted repetition takes a fraction of a
// millisecond that a cold start serving no operation route need not pay.
var operationIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^op_[a-z0-9_]{1,77}$`) })

// exportIDPattern is the shape of every export id: export.NewExportID makes "exp_" +
// hexadecimal milliseconds + "_" + 16 hexadecimal digits, and the id is also the name
// of the export's execution (at most 80 characters). A longer id would reach DynamoDB
// as a sort key it refuses (over 1 KB) and come back a 500.
var exportIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^exp_[a-z0-9_]{1,76}$`) })

// malformedIDError is a path id that breaks the rule of its kind: 404. The id itself is
// not repeated (it may be 2,000 characters of anything); the rule is.
type malformedIDError struct {
	kind string
	rule string
}

func (e *malformedIDError) Error() string { return e.kind + " not found: " + e.rule }

// targetTenant checks the {id} of a /tenants/{id} route and records it in r.tenantID
// (and so in the log line) once it is a valid tenant id. Authentication is checked
// first so that a request without a token is a 401 whatever its path; authorization
// comes after, in the route, so a malformed id is the same 404 for every caller.
func (r *request) targetTenant() error {
	if !r.who.authenticated {
		return errUnauthenticated
	}
	id := r.pathID()
	if tenant.ValidateID(id) != nil {
		return &malformedIDError{kind: "tenant", rule: tenantIDRule}
	}
	r.tenantID = id
	return nil
}

// validOperationID reports whether id has the shape of an operation id.
func validOperationID(id string) bool { return operationIDPattern().MatchString(id) }

// validExportID reports whether id has the shape of an export id.
func validExportID(id string) bool { return exportIDPattern().MatchString(id) }

// unknownIDError is a well-formed path id that names nothing the caller can see: 404.
// Like malformedIDError it does not repeat the id (the client sent it; a page that
// echoes input is one more place to inject into).
type unknownIDError struct{ kind string }

func (e *unknownIDError) Error() string { return e.kind + " not found" }
