package jwtauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is a JWT claim set: the claims to mint, or the decoded payload of a verified
// token. Numbers in a verified token are json.Number, so they keep their written form.
type Claims map[string]any

// The reasons a token is refused, for errors.Is on the error Verify returns (always a
// *TokenError).
var (
	// ErrNoToken: the Authorization header is missing or empty. API Gateway answers
	// 401 with a bare "Bearer" challenge.
	ErrNoToken = errors.New("jwtauth: no token")
	// ErrMalformed: not a compact JWS, undecodable, or a registered claim of the wrong type.
	ErrMalformed = errors.New("jwtauth: malformed token")
	// ErrAlgorithm: the header's alg is not RS256 (none, HS256, ...).
	ErrAlgorithm = errors.New("jwtauth: signing algorithm not accepted")
	// ErrUnknownKey: the header's kid names no key in the JWKS.
	ErrUnknownKey = errors.New("jwtauth: unknown signing key")
	// ErrSignature: the signature does not verify against the key.
	ErrSignature = errors.New("jwtauth: invalid signature")
	// ErrMissingExp: the token has no exp claim (API Gateway requires one).
	ErrMissingExp = errors.New("jwtauth: no exp claim")
	// ErrExpired: exp is in the past (beyond the leeway).
	ErrExpired = errors.New("jwtauth: token expired")
	// ErrNotYetValid: nbf is in the future (beyond the leeway).
	ErrNotYetValid = errors.New("jwtauth: token not valid yet")
	// ErrIssuedInFuture: iat is in the future (beyond the leeway).
	ErrIssuedInFuture = errors.New("jwtauth: token issued in the future")
	// ErrIssuer: iss is not the configured issuer.
	ErrIssuer = errors.New("jwtauth: wrong issuer")
	// ErrAudience: neither aud nor client_id names a configured audience.
	ErrAudience = errors.New("jwtauth: wrong audience")
)

// TokenError is a refused token. Description is the error_description API Gateway
// puts in its www-authenticate header; the wording of "the token has expired", "the
// token does not have a valid audience" and "token contains an invalid number of
// segments" is API Gateway's own, the rest follow their style.
type TokenError struct {
	// Reason is one of the Err* sentinels of this package.
	Reason error
	// Description is the human-readable cause, as sent in error_description.
	Description string
	// Cause is the underlying library error, if any.
	Cause error
}

// Error reports the reason and the description.
func (e *TokenError) Error() string {
	msg := e.Reason.Error()
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Unwrap exposes Reason (and Cause) to errors.Is and errors.As.
func (e *TokenError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Cause}
}

func refuse(reason error, description string, cause error) *TokenError {
	return &TokenError{Reason: reason, Description: description, Cause: cause}
}

// Verify checks a token the way API Gateway's JWT authorizer does and returns its
// claims. authorization is the raw Authorization header: "Bearer <jwt>" or a bare
// token. Checked: alg is RS256 (none and HMAC are refused), kid names the JWKS key,
// the signature, exp (required), nbf and iat with the leeway, iss equal to the issuer,
// and aud (a string or an array) containing a configured audience, or, when the token
// has no aud, client_id equal to one (as Cognito access tokens have). Every error is
// a *TokenError.
func (a *Authority) Verify(authorization string) (Claims, error) {
	tok := strings.TrimSpace(authorization)
	if tok == "" {
		return nil, refuse(ErrNoToken, "", nil)
	}
	if len(tok) >= 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, refuse(ErrMalformed, "token contains an invalid number of segments", nil)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err == nil {
		err = json.Unmarshal(raw, &hdr)
	}
	if err != nil {
		return nil, refuse(ErrMalformed, "the token header is malformed", err)
	}
	// Checked here, before any key is looked up, so "none" and HS256-with-the-public-
	// key never reach a verifier; the parser below enforces the same list again.
	if hdr.Alg != Algorithm {
		return nil, refuse(ErrAlgorithm, fmt.Sprintf("signing method %s is invalid", hdr.Alg), nil)
	}
	if hdr.Kid != a.kid {
		return nil, refuse(ErrUnknownKey, "the token's kid does not match a key of the issuer", nil)
	}
	claims := jwt.MapClaims{}
	_, err = a.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		if m, ok := t.Method.(*jwt.SigningMethodRSA); !ok || m.Alg() != Algorithm {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return &a.key.PublicKey, nil
	})
	if err != nil {
		return nil, mapParseError(err)
	}
	if iss, _ := claims["iss"].(string); iss != a.issuer {
		return nil, refuse(ErrIssuer, "the token does not have a valid issuer", nil)
	}
	if !a.audienceOK(claims) {
		return nil, refuse(ErrAudience, "the token does not have a valid audience", nil)
	}
	return Claims(claims), nil
}

// mapParseError turns golang-jwt's joined errors into one reason, most telling first.
func mapParseError(err error) *TokenError {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(ErrMalformed, "the token is malformed", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return refuse(ErrAlgorithm, "the token cannot be verified", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(ErrSignature, "the token signature is invalid", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refuse(ErrMissingExp, "the token does not have an expiration time", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(ErrExpired, "the token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return refuse(ErrNotYetValid, "the token is not valid yet", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(ErrIssuedInFuture, "the token was issued in the future", err)
	default: // ErrTokenInvalidClaims: e.g. exp is a string
		return refuse(ErrMalformed, "the token has invalid claims", err)
	}
}

func (a *Authority) audienceOK(c jwt.MapClaims) bool {
	var got []string
	switch aud := c["aud"].(type) {
	case string:
		got = []string{aud}
	case []any:
		for _, v := range aud {
			if s, ok := v.(string); ok {
				got = append(got, s)
			}
		}
	case nil:
		if cid, ok := c["client_id"].(string); ok {
			got = []string{cid}
		}
	}
	for _, g := range got {
		for _, want := range a.audience {
			if g == want {
				return true
			}
		}
	}
	return false
}

// Challenge returns the www-authenticate value API Gateway sends with a 401 caused by
// err: "Bearer" alone when there was no token, otherwise
// `Bearer scope="<route scopes>" error="invalid_token" error_description="..."`.
// routeScopes are the route's authorization scopes (usually none).
func Challenge(err error, routeScopes []string) string {
	if errors.Is(err, ErrNoToken) {
		return "Bearer"
	}
	desc := err.Error()
	var te *TokenError
	if errors.As(err, &te) && te.Description != "" {
		desc = te.Description
	}
	return fmt.Sprintf(`Bearer scope=%s error="invalid_token" error_description=%s`,
		quote(strings.Join(routeScopes, " ")), quote(desc))
}

// quote writes an RFC 7230 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Flatten renders the claims the way API Gateway hands them to a payload 2.0
// integration in requestContext.authorizer.jwt.claims: every value a string. Strings
// are as is; numbers keep their JSON text ("1700000000"); booleans are "true" or
// "false"; arrays are their rendered elements space-separated in brackets ("[a b]",
// as API Gateway does for cognito:groups or an aud array); null claims are left out;
// objects, whose rendering AWS does not document, become compact JSON.
func (c Claims) Flatten() map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		if v == nil {
			continue
		}
		out[k] = render(v)
	}
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
		return fmt.Sprint(x)
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

// Scopes returns the token's OAuth scopes: the space-separated "scope" claim, or else
// the "scp" claim (a space-separated string or an array), as API Gateway reads them.
// The result is nil when the token has neither.
func (c Claims) Scopes() []string {
	for _, name := range []string{"scope", "scp"} {
		switch v := c[name].(type) {
		case string:
			if f := strings.Fields(v); len(f) > 0 {
				return f
			}
		case []string:
			if len(v) > 0 {
				return append([]string(nil), v...)
			}
		case []any:
			var out []string
			for _, e := range v {
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
			if len(out) > 0 {
				return out
			}
		}
	}
	return nil
}

// HasAnyScope reports whether the token carries at least one of want, the rule API
// Gateway applies to a route's authorization scopes. An empty want is always met.
func (c Claims) HasAnyScope(want []string) bool {
	if len(want) == 0 {
		return true
	}
	have := c.Scopes()
	sort.Strings(have)
	for _, w := range want {
		if i := sort.SearchStrings(have, w); i < len(have) && have[i] == w {
			return true
		}
	}
	return false
}

// String returns the claim name if it is a string, else "".
func (c Claims) String(name string) string {
	s, _ := c[name].(string)
	return s
}
