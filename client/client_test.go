package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The failures below come from outside the client: a test server that answers 503,
// 429, drops the connection, or serves a file that is not the one described.

var fast = WithRetry(Retry{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond})

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) add(r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.Clone(context.Background()))
	return len(s.reqs)
}

func (s *seen) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reqs {
		out = append(out, r.Header.Get("Idempotency-Key"))
	}
	return out
}

func newClient(t *testing.T, h http.HandlerFunc, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, append([]Option{WithToken("tok"), fast}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const accepted = `{"operation_id":"op_1","status":"RUNNING"}`

func TestWriteRetriesReuseTheIdempotencyKey(t *testing.T) {
	tests := []struct {
		name  string
		first func(w http.ResponseWriter)
	}{
		{"503", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(503)
			fmt.Fprint(w, `{"type":"urn:tenantflow:problem:dependency-unavailable","title":"x","status":503,"detail":"retry"}`)
		}},
		{"429 Retry-After 0", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		}},
		{"409 idempotency-in-progress", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(409)
			fmt.Fprint(w, `{"type":"urn:tenantflow:problem:idempotency-in-progress","title":"x","status":409,"detail":"running"}`)
		}},
		{"connection dropped", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seen
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if s.add(r) == 1 {
					tt.first(w)
					return
				}
				w.WriteHeader(202)
				fmt.Fprint(w, accepted)
			})
			acc, err := c.Upgrade(context.Background(), "tenant_a", PlanRequest{Plan: "starter"})
			if err != nil || acc.OperationID != "op_1" {
				t.Fatalf("Upgrade = %+v, %v", acc, err)
			}
			keys := s.keys()
			if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
				t.Errorf("Idempotency-Keys of the two tries = %q, want one key twice", keys)
			}
		})
	}
}

func TestIdempotencyKeyPerCallAndOverridable(t *testing.T) {
	var s seen
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.WriteHeader(202)
		fmt.Fprint(w, accepted)
	})
	ctx := context.Background()
	c.Upgrade(ctx, "tenant_a", PlanRequest{Plan: "starter"})
	c.Upgrade(ctx, "tenant_a", PlanRequest{Plan: "starter"})
	c.Upgrade(ctx, "tenant_a", PlanRequest{Plan: "starter"}, WithIdempotencyKey("ci-run-42"))
	c.GetTenant(ctx, "tenant_a")
	k := s.keys()
	if len(k) != 4 || k[0] == "" || k[0] == k[1] || k[2] != "ci-run-42" || k[3] != "" {
		t.Errorf("keys = %q: want two distinct generated keys, the given one, none on a GET", k)
	}
}

func TestProblemsAreTypedAndNotRetried(t *testing.T) {
	var n atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(422)
		fmt.Fprint(w, `{"type":"urn:tenantflow:problem:usage-exceeds-limit","title":"Usage exceeds","status":422,"detail":"2 limits",
			"violations":[{"limit":"users","usage":45,"max":10},{"limit":"storage_gb","usage":80,"max":10}]}`)
	})
	_, err := c.Downgrade(context.Background(), "tenant_enterprise", DowngradeRequest{Plan: "starter"})
	var p *Problem
	if !errors.As(err, &p) || p.Status != 422 || p.Type != TypeUsageExceedsLimit || len(p.Violations) != 2 || p.Violations[0].Max != 10 {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, &Problem{Type: TypeUsageExceedsLimit}) || errors.Is(err, &Problem{Status: 409}) {
		t.Error("errors.Is on the problem's type/status does not match as it should")
	}
	if n.Load() != 1 {
		t.Errorf("a 422 was sent %d times, want once", n.Load())
	}
	if !strings.Contains(err.Error(), "users 45 > 10") {
		t.Errorf("message %q does not name the violations", err)
	}
}

func TestGatewayAnswersBecomeProblems(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"message":"Unauthorized"}`)
	})
	_, err := c.GetTenant(context.Background(), "tenant_a")
	var p *Problem
	if !errors.As(err, &p) || p.Status != 401 || p.Detail != "Unauthorized" || p.Path != "/tenants/tenant_a" {
		t.Fatalf("err = %#v", err)
	}
}

func TestRetriesEnd(t *testing.T) {
	var n atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(500)
	})
	_, err := c.GetTenant(context.Background(), "tenant_a")
	var p *Problem
	if !errors.As(err, &p) || p.Status != 500 || n.Load() != 4 {
		t.Fatalf("err = %v after %d tries, want a 500 problem after 4", err, n.Load())
	}
}

func TestWaitOperation(t *testing.T) {
	statuses := []string{"SCHEDULED", "RUNNING", "RUNNING", "SUCCEEDED"}
	var n atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1))-1, len(statuses)-1)
		fmt.Fprintf(w, `{"operation_id":"op_1","tenant_id":"tenant_a","kind":"downgrade","status":%q,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`, statuses[i])
	}, WithPoll(Poll{Min: time.Millisecond, Max: 2 * time.Millisecond}))
	var seen []OperationStatus
	op, err := c.WaitOperation(context.Background(), "op_1", func(o *Operation) { seen = append(seen, o.Status) })
	if err != nil || op.Status != Succeeded {
		t.Fatalf("WaitOperation = %+v, %v", op, err)
	}
	if fmt.Sprint(seen) != "[SCHEDULED RUNNING RUNNING SUCCEEDED]" {
		t.Errorf("progress saw %v", seen)
	}
}

func TestWaitOperationFailedAndCancelled(t *testing.T) {
	status := "FAILED"
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"operation_id":"op_1","tenant_id":"tenant_a","kind":"upgrade","status":%q,"error":"PaymentFailed","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`, status)
	}, WithPoll(Poll{Min: time.Millisecond, Max: 2 * time.Millisecond}))
	_, err := c.WaitOperation(context.Background(), "op_1", nil)
	var fe *OperationFailedError
	if !errors.As(err, &fe) || fe.Operation.ErrorText() != "PaymentFailed" {
		t.Fatalf("err = %v, want OperationFailedError with PaymentFailed", err)
	}
	status = "RUNNING"
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = c.WaitOperation(ctx, "op_1", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 2*time.Second {
		t.Fatalf("err = %v after %v, want the deadline promptly", err, time.Since(begin))
	}
}

func TestWaitExportAndDownload(t *testing.T) {
	file := []byte("{\"source\":\"tenants\"}\n")
	sum := sha256.Sum256(file)
	good := hex.EncodeToString(sum[:])
	var polls atomic.Int32
	var fileAuth atomic.Value
	mux := http.NewServeMux()
	var srvURL string
	mux.HandleFunc("GET /tenants/tenant_a/exports/exp_1", func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) < 3 {
			fmt.Fprint(w, `{"export_id":"exp_1","tenant_id":"tenant_a","status":"running","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","progress":{"items":1,"bytes":1,"estimated_items":2,"estimate_complete":true,"percent":50,"parts":0}}`)
			return
		}
		fmt.Fprintf(w, `{"export_id":"exp_1","tenant_id":"tenant_a","status":"completed","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","size_bytes":%d,"sha256":%q,"download_url":"%s/file?sig=1"}`, len(file), good, srvURL)
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		fileAuth.Store(r.Header.Get("Authorization"))
		w.Write(file)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	srvURL = srv.URL
	c, _ := New(srv.URL, WithToken("secret-token"), fast, WithPoll(Poll{Min: time.Millisecond, Max: time.Millisecond}))
	var pct []float64
	ex, err := c.WaitExport(context.Background(), "tenant_a", "exp_1", func(e *Export) {
		if e.Progress != nil {
			pct = append(pct, e.Progress.Percent)
		}
	})
	if err != nil || ex.Status != ExportCompleted || len(pct) != 2 {
		t.Fatalf("WaitExport = %+v, %v (progress %v)", ex, err, pct)
	}
	var buf bytes.Buffer
	got, n, err := c.DownloadExport(context.Background(), ex, &buf)
	if err != nil || got != good || n != int64(len(file)) || !bytes.Equal(buf.Bytes(), file) {
		t.Fatalf("DownloadExport = %s %d %v", got, n, err)
	}
	if a := fileAuth.Load(); a != "" {
		t.Errorf("the pre-signed download got Authorization %q; the token must not leave for the storage URL", a)
	}

	// The API describes another file than the one served: a ChecksumError.
	bad := *ex
	bad.SHA256 = strings.Repeat("0", 64)
	_, _, err = c.DownloadExport(context.Background(), &bad, &bytes.Buffer{})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.GotSHA256 != good {
		t.Fatalf("tampered sha256: err = %v, want ChecksumError", err)
	}
	short := *ex
	short.SizeBytes++
	if _, _, err = c.DownloadExport(context.Background(), &short, &bytes.Buffer{}); !errors.As(err, &ce) {
		t.Fatalf("wrong size: err = %v, want ChecksumError", err)
	}
}

func TestEntitlementsCacheRevalidates(t *testing.T) {
	var mu sync.Mutex
	plan, etag := "starter", `"v1"`
	var gets, notModified atomic.Int32
	var lastINM atomic.Value
	lastINM.Store("")
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		time.Sleep(5 * time.Millisecond) // lets concurrent Gets pile up on one request
		mu.Lock()
		defer mu.Unlock()
		lastINM.Store(r.Header.Get("If-None-Match"))
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			notModified.Add(1)
			w.WriteHeader(304)
			return
		}
		fmt.Fprintf(w, `{"tenant_id":"tenant_a","version":1,"state":"ACTIVE","plan":%q,"limits":{"users":10,"storage_gb":null,"api_calls_per_month":1000},"features":{"sso":false},"catalog_version":"1"}`, plan)
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	ec := NewEntitlementsCache(c)
	ec.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	ctx := context.Background()

	// Ten concurrent first lookups: one request.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if e, err := ec.Get(ctx, "tenant_a"); err != nil || e.Plan != "starter" || *e.Limits.Users != 10 || e.Limits.StorageGB != nil {
				t.Errorf("Get = %+v, %v", e, err)
			}
		})
	}
	wg.Wait()
	if gets.Load() != 1 {
		t.Fatalf("10 concurrent Gets sent %d requests, want 1", gets.Load())
	}
	// Fresh within max-age: no request.
	advance(59 * time.Second)
	ec.Get(ctx, "tenant_a")
	if gets.Load() != 1 {
		t.Fatalf("a Get within max-age sent a request")
	}
	// Stale: revalidated with the ETag, 304, same document.
	advance(2 * time.Second)
	if e, err := ec.Get(ctx, "tenant_a"); err != nil || e.Plan != "starter" || notModified.Load() != 1 || lastINM.Load() != `"v1"` {
		t.Fatalf("revalidation: %+v %v, 304s %d, If-None-Match %v", e, err, notModified.Load(), lastINM.Load())
	}
	// The plan changes: an event brings the new document at once.
	mu.Lock()
	plan, etag = "professional", `"v2"`
	mu.Unlock()
	if _, err := ec.Apply([]byte(`{"tenant_id":"tenant_a","version":2,"state":"ACTIVE","plan":"professional","limits":{"users":50,"storage_gb":100,"api_calls_per_month":null},"features":{"sso":true}}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	n := gets.Load()
	if e, _ := ec.Get(ctx, "tenant_a"); e.Plan != "professional" || !e.Feature("sso") || gets.Load() != n {
		t.Fatalf("after the event: %+v (requests %d → %d)", e, n, gets.Load())
	}
	// A late or repeated event of an older version changes nothing.
	if e, err := ec.Apply([]byte(`{"tenant_id":"tenant_a","version":1,"state":"ACTIVE","plan":"starter"}`), time.Minute); err != nil || e.Plan != "professional" {
		t.Fatalf("a late event of version 1 after version 2: %+v %v", e, err)
	}
	if e, _ := ec.Get(ctx, "tenant_a"); e.Plan != "professional" || e.Version != 2 {
		t.Fatalf("after a late event: %+v", e)
	}
	// Without the event, a stale document is refetched in full when the ETag changed.
	ec.Invalidate("tenant_a")
	advance(time.Hour)
	if e, err := ec.Get(ctx, "tenant_a"); err != nil || e.Plan != "professional" || lastINM.Load() != "" {
		t.Fatalf("after Invalidate: %+v %v (If-None-Match %v)", e, err, lastINM.Load())
	}
}
