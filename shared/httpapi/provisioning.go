package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/tenant"
)

// ProvisioningScope is the scope of the app plane's provisioning service: a token with
// it may answer the provisioning hook's requests (POST
// /tenants/{id}/provisioning/{request_id}) for any tenant, and nothing else.
const ProvisioningScope = "tenants/provisioning"

// ProvisioningAnswers records the app plane's answers and hands them to the waiting
// flow (apphook.Answerer).
type ProvisioningAnswers interface {
	Answer(ctx context.Context, tenantID, requestID string, a apphook.Answer) (*apphook.Request, error)
}

var _ ProvisioningAnswers = (*apphook.Answerer)(nil)

// Bounds of an answer.
const (
	maxAnswerErrorRunes = 256
	maxAnswerCauseRunes = 4096
	maxAnswerOutput     = 8 << 10
)

const requestIDRule = `provisioning request ids are "prq_" followed by 32 characters of 0-9 or a-f`

type provisioningAnswer struct {
	Status *string         `json:"status"`
	Error  *string         `json:"error"`
	Cause  *string         `json:"cause"`
	Output json.RawMessage `json:"output"`
}

// answerProvisioning is POST /tenants/{id}/provisioning/{request_id}: the app plane's
// answer to a provisioning request (succeeded, failed) or a heartbeat (in_progress).
func (h *Handler) answerProvisioning(ctx context.Context, r *request) (response, error) {
	if err := r.targetTenant(); err != nil {
		return response{}, err
	}
	if !r.who.admin && !r.who.provisioning {
		return response{}, &authError{status: http.StatusForbidden,
			detail: "answering provisioning requests needs a token with scope " + ProvisioningScope + " or " + AdminScope}
	}
	reqID := r.ev.PathParameters["request_id"]
	if !apphook.ValidRequestID(reqID) {
		return response{}, &malformedIDError{kind: "provisioning request", rule: requestIDRule}
	}
	if h.hook == nil {
		return response{}, &tenant.NotFoundError{Kind: "provisioning request", ID: reqID}
	}
	var in provisioningAnswer
	if err := decodeBody(r.ev, &in); err != nil {
		return response{}, err
	}
	a, err := in.answer()
	if err != nil {
		return response{}, err
	}
	req, err := h.hook.Answer(ctx, r.tenantID, reqID, a)
	if err != nil {
		return response{}, err
	}
	r.operationID = req.OperationID
	return response{status: http.StatusOK, body: req}, nil
}

func (in provisioningAnswer) answer() (apphook.Answer, error) {
	if in.Status == nil {
		return apphook.Answer{}, &tenant.ValidationError{Field: "status", Reason: "required: succeeded, failed or in_progress"}
	}
	a := apphook.Answer{Status: *in.Status}
	switch a.Status {
	case apphook.StatusSucceeded, apphook.StatusInProgress:
		if in.Error != nil || in.Cause != nil {
			return a, &tenant.ValidationError{Field: "error", Reason: "error and cause go with status failed only"}
		}
	case apphook.StatusFailed:
		a.Error = apphook.ErrorFailed
		if in.Error != nil {
			if n := utf8.RuneCountInString(*in.Error); n == 0 || n > maxAnswerErrorRunes {
				return a, &tenant.ValidationError{Field: "error", Reason: "1-256 characters"}
			}
			a.Error = *in.Error
		}
		if in.Cause != nil {
			if utf8.RuneCountInString(*in.Cause) > maxAnswerCauseRunes {
				return a, &tenant.ValidationError{Field: "cause", Reason: "at most 4096 characters"}
			}
			a.Cause = *in.Cause
		}
	default:
		return a, &tenant.ValidationError{Field: "status", Reason: "must be succeeded, failed or in_progress"}
	}
	if out := bytes.TrimSpace(in.Output); len(out) > 0 && !bytes.Equal(out, []byte("null")) {
		if a.Status != apphook.StatusSucceeded {
			return a, &tenant.ValidationError{Field: "output", Reason: "goes with status succeeded only"}
		}
		if out[0] != '{' || len(out) > maxAnswerOutput {
			return a, &tenant.ValidationError{Field: "output", Reason: "a JSON object of at most 8 KiB"}
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, out); err != nil {
			return a, &tenant.ValidationError{Field: "output", Reason: "a JSON object of at most 8 KiB"}
		}
		a.Output = compact.Bytes()
	}
	return a, nil
}

// provisioningProblem maps the hook's refusals: an answer the flow no longer waits for
// is 410, a different answer after the first one 409.
func provisioningProblem(err error) (Problem, bool) {
	var ee *apphook.ExpiredError
	var ae *apphook.AnsweredError
	switch {
	case errors.As(err, &ee):
		p := newProblem(http.StatusGone, "provisioning-expired", ee.Error()+"; nothing was changed")
		p.Title = "Provisioning request expired"
		return p, true
	case errors.As(err, &ae):
		p := newProblem(http.StatusConflict, "provisioning-answered", ae.Error()+"; only the same answer may be repeated")
		p.Title = "Provisioning request answered already"
		return p, true
	}
	return Problem{}, false
}
