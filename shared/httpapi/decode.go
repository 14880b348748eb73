package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// MaxBodyBytes is the largest request body accepted. Every body of this API is a small
// object; refusing more early keeps a bad client from costing memory.
const MaxBodyBytes = 64 << 10

// readBody returns the raw request body, decoding base64 when API Gateway encoded it.
func readBody(req *events.APIGatewayV2HTTPRequest) ([]byte, error) {
	tooLarge := &bodyError{status: http.StatusRequestEntityTooLarge, detail: fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)}
	if !req.IsBase64Encoded {
		if len(req.Body) > MaxBodyBytes {
			return nil, tooLarge
		}
		return []byte(req.Body), nil
	}
	// Check the encoded size first so an oversized body is never decoded.
	if len(req.Body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		return nil, tooLarge
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, badRequest("request body is marked base64 but is not valid base64")
	}
	if len(b) > MaxBodyBytes {
		return nil, tooLarge
	}
	return b, nil
}

// decodeBody reads the request body as exactly one JSON object into dst, refusing
// unknown fields, wrong types and trailing data with a 400 that names the problem.
// Semantic checks (required, ranges) are left to the caller and answer 422.
func decodeBody(req *events.APIGatewayV2HTTPRequest, dst any) error {
	b, err := readBody(req)
	if err != nil {
		return err
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return badRequest("request body is required: a JSON object")
	}
	// encoding/json reads null into a struct as "no fields", which would make a
	// null body mean {} (a deletion with the default retention); the schemas say object.
	if string(trimmed) == "null" {
		return badRequest("expected a JSON object, got null")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	// A second value (or garbage) after the object means the client sent something
	// other than what it thinks; refuse rather than silently ignore it.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return badRequest("malformed JSON: unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 with a precise detail.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return badRequest("malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of input")
	case errors.As(err, &ute):
		if ute.Field == "" {
			return badRequest("expected a JSON object, got %s", ute.Value)
		}
		return badRequest("field %s: expected %s, got %s", ute.Field, expected(ute), got(ute.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// expected names the JSON type a Go field accepts. A number that does not fit an integer
// field says "an integer" so that 2.5 and 1e30 get a useful message.
func expected(ute *json.UnmarshalTypeError) string {
	t := ute.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if strings.HasPrefix(ute.Value, "number") {
			return "an integer"
		}
		return "a number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// got renders UnmarshalTypeError.Value ("string", "number 2.5", "bool", "array", ...).
func got(v string) string {
	switch {
	case strings.HasPrefix(v, "number "):
		return strings.TrimPrefix(v, "number ")
	case v == "bool":
		return "boolean"
	}
	return v
}
