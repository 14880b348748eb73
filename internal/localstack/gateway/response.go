package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type response struct {
	status            int
	header            http.Header
	body              []byte
	ignoredMultiValue bool
}

// v2Response is the payload 2.0 response document. MultiValueHeaders is read only to
// warn about it: it belongs to format 1.0 and HTTP APIs drop it from 2.0 responses.
type v2Response struct {
	StatusCode        *int                `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              *string             `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// hopHeaders are not taken from a function's headers: they describe the connection,
// which the gateway owns.
var hopHeaders = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Keep-Alive": true, "Upgrade": true,
}

// mapResponse turns a function's result into the HTTP answer, by the payload 2.0
// rules: a JSON object with statusCode is a structured response (headers, cookies as
// Set-Cookie, body, base64-decoded if isBase64Encoded; no content-type means
// text/plain); any other valid JSON is a 200 application/json whose body is the result
// (a JSON string's contents, unquoted). Invalid JSON or a malformed structured
// response is an error (API Gateway answers 500).
func mapResponse(result []byte) (response, error) {
	trimmed := bytes.TrimSpace(result)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return response{}, errors.New("the function's result is not JSON")
	}
	if trimmed[0] == '{' {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return response{}, err
		}
		if _, ok := probe["statusCode"]; ok {
			return structured(trimmed)
		}
	}
	body := trimmed
	if trimmed[0] == '"' {
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return response{}, err
		}
		body = []byte(s)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return response{status: http.StatusOK, header: h, body: body}, nil
}

func structured(doc []byte) (response, error) {
	var v v2Response
	if err := json.Unmarshal(doc, &v); err != nil {
		return response{}, fmt.Errorf("malformed response: %w", err)
	}
	if v.StatusCode == nil || *v.StatusCode < 100 || *v.StatusCode > 599 {
		return response{}, errors.New("malformed response: statusCode out of range")
	}
	out := response{status: *v.StatusCode, header: http.Header{}, ignoredMultiValue: len(v.MultiValueHeaders) > 0}
	for k, val := range v.Headers {
		ck := http.CanonicalHeaderKey(k)
		if hopHeaders[ck] || strings.ContainsAny(k, " \t\r\n:") {
			continue
		}
		out.header.Set(ck, val)
	}
	for _, c := range v.Cookies {
		out.header.Add("Set-Cookie", c)
	}
	if out.header.Get("Content-Type") == "" {
		out.header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if v.Body != nil {
		out.body = []byte(*v.Body)
		if v.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*v.Body)
			if err != nil {
				return response{}, fmt.Errorf("malformed response: isBase64Encoded body: %w", err)
			}
			out.body = b
		}
	}
	return out, nil
}
