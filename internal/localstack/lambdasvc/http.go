package lambdasvc

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// Payload limits of the Invoke API (synchronous and Event invocations).
const (
	maxSyncPayload  = 6 << 20
	maxAsyncPayload = 1 << 20
)

// Handler serves the Lambda Invoke API and the devstack control endpoints:
//
//	POST   /2015-03-31/functions/{FunctionName}/invocations   Invoke
//	GET    /2015-03-31/functions/                    ListFunctions (control.go)
//	GET    /2015-03-31/functions/{FunctionName}      GetFunction
//	GET    /2015-03-31/functions/{FunctionName}/configuration   GetFunctionConfiguration
//	POST   /_devstack/faults    {"function","count","errorType","errorMessage","after","skip"}
//	GET    /_devstack/faults    active faults (with "remaining", "skip", "after")
//	DELETE /_devstack/faults    clear all faults
//	POST   /_devstack/chaos     Chaos: {"rate","afterShare","seed","functions","except",...}
//	GET    /_devstack/chaos     {"functions": [...], "total": ChaosStats, "byFunction": {...}}
//	DELETE /_devstack/chaos     turn Chaos off
//	GET    /_devstack/invocations   counters per function (Stats)
//	DELETE /_devstack/invocations   reset counters
//	GET    /_devstack/functions     served functions (name, ARN)
//
// A POSTed fault is Inject's FaultSpec: "after" true lets the function run and
// then replaces its answer with the error; "skip" lets that many invocations
// through first; "count" is N > 0 or -1 (always). It replaces the function's
// earlier fault.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.serveInvoke)
	mux.HandleFunc("GET /2015-03-31/functions/{$}", s.serveListFunctions)
	mux.HandleFunc("GET /2015-03-31/functions", s.serveListFunctions)
	mux.HandleFunc("GET /2015-03-31/functions/{name}", s.serveGetFunction)
	mux.HandleFunc("GET /2015-03-31/functions/{name}/configuration", s.serveGetFunctionConfiguration)
	mux.HandleFunc("POST /_devstack/faults", s.servePostFault)
	mux.HandleFunc("GET /_devstack/faults", func(w http.ResponseWriter, r *http.Request) {
		faults := s.Faults()
		if faults == nil {
			faults = []Fault{}
		}
		writeJSON(w, http.StatusOK, faults)
	})
	mux.HandleFunc("DELETE /_devstack/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_devstack/chaos", s.servePostChaos)
	mux.HandleFunc("GET /_devstack/chaos", func(w http.ResponseWriter, r *http.Request) {
		total, by := s.ChaosStats()
		fns := s.ChaosFunctions()
		if fns == nil {
			fns = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"functions": fns, "total": total, "byFunction": by})
	})
	mux.HandleFunc("DELETE /_devstack/chaos", func(w http.ResponseWriter, r *http.Request) {
		s.ClearChaos()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_devstack/invocations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("DELETE /_devstack/invocations", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_devstack/functions", func(w http.ResponseWriter, r *http.Request) {
		type fn struct {
			LogicalID string `json:"logicalId"`
			Name      string `json:"name"`
			ARN       string `json:"arn"`
		}
		out := []fn{}
		for _, f := range s.ordered {
			out = append(out, fn{f.cfg.LogicalID, f.name, f.arn})
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

func (s *Service) serveInvoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, err := s.lookup(name)
	if err != nil {
		// The AWS SDKs read the error code from this header and the text from "message".
		awsError(w, http.StatusNotFound, "ResourceNotFoundException",
			"Function not found: arn:aws:lambda:"+s.cfg.Region+":"+s.cfg.AccountID+":function:"+FunctionNameFromARN(name))
		return
	}
	typ := r.Header.Get("X-Amz-Invocation-Type")
	limit := int64(maxSyncPayload)
	if typ == "Event" {
		limit = maxAsyncPayload
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		awsError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
		return
	}
	if int64(len(payload)) > limit {
		awsError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			"Request must be smaller than "+strconv.FormatInt(limit, 10)+" bytes for the "+typ+" invocation type")
		return
	}
	if len(payload) > 0 && !json.Valid(payload) {
		awsError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}

	switch typ {
	case "", "RequestResponse":
	case "Event":
		if err := s.InvokeAsync(f.cfg.LogicalID, payload); err != nil {
			awsError(w, http.StatusServiceUnavailable, "ServiceException", err.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		awsError(w, http.StatusBadRequest, "InvalidParameterValueException", "unsupported X-Amz-Invocation-Type "+typ)
		return
	}

	// The invocation runs to its end even if the client goes away, as in Lambda.
	res, err := s.Invoke(r.Context(), f.cfg.LogicalID, payload)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			awsError(w, http.StatusServiceUnavailable, "ServiceException", err.Error())
		} else {
			awsError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Requestid", res.RequestID)
	h.Set("X-Amz-Executed-Version", "$LATEST")
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

func (s *Service) servePostFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Function     string `json:"function"`
		Count        int    `json:"count"`
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
		After        bool   `json:"after"`
		Skip         int    `json:"skip"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		awsError(w, http.StatusBadRequest, "InvalidRequestContentException", "fault body: "+err.Error())
		return
	}
	spec := FaultSpec{Function: req.Function, After: req.After, Skip: req.Skip, Count: req.Count, ErrorType: req.ErrorType, Message: req.ErrorMessage}
	if err := s.Inject(spec); err != nil {
		if errors.Is(err, ErrUnknownFunction) {
			awsError(w, http.StatusNotFound, "ResourceNotFoundException", err.Error())
		} else {
			awsError(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) servePostChaos(w http.ResponseWriter, r *http.Request) {
	var c Chaos
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		awsError(w, http.StatusBadRequest, "InvalidRequestContentException", "chaos body: "+err.Error())
		return
	}
	if err := s.SetChaos(c); err != nil {
		if errors.Is(err, ErrUnknownFunction) {
			awsError(w, http.StatusNotFound, "ResourceNotFoundException", err.Error())
		} else {
			awsError(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-amzn-ErrorType", code)
	fault := "User"
	if status >= 500 {
		fault = "Service"
	}
	writeJSON(w, status, map[string]string{"Type": fault, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
