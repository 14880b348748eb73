package gateway

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type segKind int

// Ordered from most to least specific: route selection prefers the lower kind at the
// first segment where two matching routes differ.
const (
	segLiteral segKind = iota
	segParam
	segGreedy
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter name
}

type compiledRoute struct {
	Route
	segs []segment
}

var methods = map[string]bool{
	"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true, "ANY": true,
}

func compile(r Route) (compiledRoute, error) {
	r.Method = strings.ToUpper(r.Method)
	if !methods[r.Method] {
		return compiledRoute{}, fmt.Errorf("gateway: route %q: unsupported method", r.Key())
	}
	if r.Function == "" {
		return compiledRoute{}, fmt.Errorf("gateway: route %q: no function", r.Key())
	}
	if !strings.HasPrefix(r.Path, "/") {
		return compiledRoute{}, fmt.Errorf("gateway: route %q: path must start with /", r.Key())
	}
	r.Scopes = append([]string(nil), r.Scopes...)
	cr := compiledRoute{Route: r}
	raw := splitPath(r.Path)
	names := map[string]bool{}
	for i, s := range raw {
		seg := segment{kind: segLiteral, text: s}
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			seg.text = s[1 : len(s)-1]
			seg.kind = segParam
			if name, ok := strings.CutSuffix(seg.text, "+"); ok {
				seg.text, seg.kind = name, segGreedy
				if i != len(raw)-1 {
					return compiledRoute{}, fmt.Errorf("gateway: route %q: a greedy {%s+} must be the last segment", r.Key(), name)
				}
			}
			if seg.text == "" || strings.ContainsAny(seg.text, "{}+") {
				return compiledRoute{}, fmt.Errorf("gateway: route %q: bad parameter %q", r.Key(), s)
			}
			if names[seg.text] {
				return compiledRoute{}, fmt.Errorf("gateway: route %q: parameter %q repeated", r.Key(), seg.text)
			}
			names[seg.text] = true
		} else if s == "" || strings.ContainsAny(s, "{}") {
			return compiledRoute{}, fmt.Errorf("gateway: route %q: bad segment %q", r.Key(), s)
		}
		cr.segs = append(cr.segs, seg)
	}
	return cr, nil
}

// splitPath splits "/a/b" into ["a", "b"]; "/" is no segments, "/a/" is ["a", ""].
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match returns the most specific route for method and path, with its parameters.
func (g *Gateway) match(method, path string) (*compiledRoute, map[string]string) {
	segs := splitPath(path)
	var best *compiledRoute
	var bestParams map[string]string
	for i := range g.routes {
		cr := &g.routes[i]
		if cr.Method != method && cr.Method != "ANY" {
			continue
		}
		params, ok := cr.matchPath(segs)
		if !ok {
			continue
		}
		if best == nil || moreSpecific(cr, best) {
			best, bestParams = cr, params
		}
	}
	return best, bestParams
}

func (cr *compiledRoute) matchPath(segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, s := range cr.segs {
		switch s.kind {
		case segGreedy:
			rest := strings.Join(segs[min(i, len(segs)):], "/")
			if rest == "" {
				return nil, false
			}
			params[s.text] = rest
			return params, true
		case segParam:
			if i >= len(segs) || segs[i] == "" {
				return nil, false
			}
			params[s.text] = segs[i]
		default:
			if i >= len(segs) || segs[i] != s.text {
				return nil, false
			}
		}
	}
	return params, len(segs) == len(cr.segs)
}

// moreSpecific reports whether a beats b: at the first segment where they differ in
// kind the more specific kind wins, then a longer literal path, then an exact method
// over ANY.
func moreSpecific(a, b *compiledRoute) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) > len(b.segs)
	}
	return a.Method != "ANY" && b.Method == "ANY"
}

// decodePath percent-decodes an escaped path the way HTTP APIs build rawPath: every
// escape is decoded except %25, which stays as is (so the result is never
// ambiguous about a literal '%').
func decodePath(escaped string) string {
	if !strings.Contains(escaped, "%") {
		return escaped
	}
	var b strings.Builder
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) && ishex(escaped[i+1]) && ishex(escaped[i+2]) {
			v := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if v == '%' {
				b.WriteString(escaped[i : i+3])
			} else {
				b.WriteByte(v)
			}
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// headers lower-cases names, joins repeated headers with commas, moves Cookie out (to
// cookies) and adds what API Gateway's front end adds.
func headers(r *http.Request, sourceIP string, now time.Time) map[string]string {
	h := make(map[string]string, len(r.Header)+5)
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			continue
		}
		h[lk] = strings.Join(vs, ",")
	}
	h["host"] = r.Host
	if xff := h["x-forwarded-for"]; xff != "" {
		h["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		h["x-forwarded-for"] = sourceIP
	}
	h["x-forwarded-proto"] = "http"
	if r.TLS != nil {
		h["x-forwarded-proto"] = "https"
	}
	h["x-forwarded-port"] = localPort(r)
	if h["x-amzn-trace-id"] == "" {
		h["x-amzn-trace-id"] = traceID(now)
	}
	return h
}

// localPort is the port the client connected to.
func localPort(r *http.Request) string {
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(addr.String()); err == nil {
			return port
		}
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		return port
	}
	if r.TLS != nil {
		return "443"
	}
	return "80"
}

// cookies splits every Cookie header at ';' into the event's cookies array.
func cookies(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Cookie") {
		for c := range strings.SplitSeq(line, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// queryParameters decodes the query string; repeated keys are joined with commas.
func queryParameters(raw string) map[string]string {
	if raw == "" {
		return nil
	}
	vals, _ := url.ParseQuery(raw) // keeps what parses, as API Gateway does with junk
	if len(vals) == 0 {
		return nil
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// encodeBody applies API Gateway's rule, measured on HTTP APIs: the body is passed as
// text only for text/*, application/json, application/xml and application/javascript;
// everything else, a missing Content-Type and application/x-www-form-urlencoded
// included, arrives base64-encoded with isBase64Encoded true.
func encodeBody(contentType string, body []byte) (string, bool) {
	if isText(contentType) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript":
		return true
	}
	return false
}

// domainPrefix is the first label of the host name (for an IP address or a one-label
// name, the whole name), as requestContext.domainPrefix.
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(host) != nil {
		return host
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}
