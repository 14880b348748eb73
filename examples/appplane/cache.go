// Package appplane is an example of the application side of tenantflow: a service of
// the SaaS application (the app plane) that checks, on every request of a tenant's
// users, what the tenant may do. It keeps each tenant's entitlements document in
// memory, read from GET /tenants/{id}/entitlements with a token of the
// tenants/entitlements scope and revalidated with If-None-Match when its max-age has
// passed, and it applies the TenantEntitlementsChanged events of the lifecycle bus as
// they arrive, so a change reaches it within one event delivery rather than one
// max-age.
//
// It is a consumer, written as one would be outside this repository: it speaks HTTP
// and JSON only and imports nothing of the control plane.
package appplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Document is the entitlements document (docs/api.md, "Entitlements").
type Document struct {
	TenantID       string          `json:"tenant_id"`
	Version        int64           `json:"version"`
	State          string          `json:"state"`
	Plan           string          `json:"plan"`
	CatalogVersion string          `json:"catalog_version"`
	Limits         Limits          `json:"limits"`
	Features       map[string]bool `json:"features"`
	Overrides      json.RawMessage `json:"overrides"`
}

// Limits are the effective limits; nil is unlimited.
type Limits struct {
	Users            *int64   `json:"users"`
	StorageGB        *float64 `json:"storage_gb"`
	APICallsPerMonth *int64   `json:"api_calls_per_month"`
}

// Allows reports whether the tenant may use feature name now: it is ACTIVE and the
// feature is on.
func (d Document) Allows(name string) bool { return d.State == "ACTIVE" && d.Features[name] }

// UnderUsers reports whether n users fit the users limit.
func (d Document) UnderUsers(n int64) bool { return d.Limits.Users == nil || n <= *d.Limits.Users }

// EventType is the detail-type of the events the cache applies.
const EventType = "TenantEntitlementsChanged"

// defaultMaxAge is used when an answer carries no max-age.
const defaultMaxAge = 60 * time.Second

// Config configures a Cache.
type Config struct {
	// BaseURL is the control plane's API, e.g. http://127.0.0.1:3000.
	BaseURL string
	// Token returns the bearer token (a tenants/entitlements scope token).
	Token func(ctx context.Context) (string, error)
	// HTTP is the client (nil: a client with a 10 s timeout).
	HTTP *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Stats count what the cache did, for tests and metrics.
type Stats struct {
	Hits, Fetches, NotModified, EventsApplied, EventsIgnored int
}

// Cache holds entitlements documents by tenant. It is safe for concurrent use.
type Cache struct {
	cfg Config

	mu      sync.Mutex
	entries map[string]*entry
	stats   Stats
}

type entry struct {
	doc     Document
	etag    string // "" when the document came from an event
	expires time.Time
	maxAge  time.Duration
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: map[string]*entry{}}
}

// Stats returns the counters so far.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Get returns tenantID's document: from memory while its max-age runs, else from the
// API, conditionally when the cache holds the document's ETag (a 304 renews it).
func (c *Cache) Get(ctx context.Context, tenantID string) (Document, error) {
	c.mu.Lock()
	e := c.entries[tenantID]
	if e != nil && c.cfg.Now().Before(e.expires) {
		c.stats.Hits++
		doc := e.doc
		c.mu.Unlock()
		return doc, nil
	}
	etag := ""
	if e != nil {
		etag = e.etag
	}
	c.mu.Unlock()
	return c.fetch(ctx, tenantID, etag)
}

// ErrStatus is an answer of the API other than 200 or 304.
type ErrStatus struct {
	Status int
	Body   string
}

func (e *ErrStatus) Error() string { return fmt.Sprintf("entitlements: HTTP %d: %s", e.Status, e.Body) }

func (c *Cache) fetch(ctx context.Context, tenantID, etag string) (Document, error) {
	token, err := c.cfg.Token(ctx)
	if err != nil {
		return Document{}, fmt.Errorf("entitlements of %s: token: %w", tenantID, err)
	}
	u := strings.TrimRight(c.cfg.BaseURL, "/") + "/tenants/" + url.PathEscape(tenantID) + "/entitlements"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Document{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return Document{}, fmt.Errorf("entitlements of %s: %w", tenantID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Document{}, fmt.Errorf("entitlements of %s: %w", tenantID, err)
	}
	maxAge := parseMaxAge(resp.Header.Get("Cache-Control"))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusNotModified:
		e := c.entries[tenantID]
		if e == nil || e.etag != etag {
			// Replaced meanwhile (an event): keep what is newer, read again later.
			if e == nil {
				return Document{}, errors.New("entitlements: 304 for a document the cache no longer holds")
			}
			return e.doc, nil
		}
		c.stats.NotModified++
		e.expires, e.maxAge = c.cfg.Now().Add(maxAge), maxAge
		return e.doc, nil
	case http.StatusOK:
		var doc Document
		if err := json.Unmarshal(body, &doc); err != nil {
			return Document{}, fmt.Errorf("entitlements of %s: %w", tenantID, err)
		}
		c.stats.Fetches++
		// The API's answer is current when it was read; an event applied while it
		// was in flight may be newer still.
		if e := c.entries[tenantID]; e != nil && e.doc.Version > doc.Version {
			return e.doc, nil
		}
		c.entries[tenantID] = &entry{doc: doc, etag: resp.Header.Get("ETag"), expires: c.cfg.Now().Add(maxAge), maxAge: maxAge}
		return doc, nil
	}
	return Document{}, &ErrStatus{Status: resp.StatusCode, Body: string(body)}
}

// parseMaxAge reads max-age from Cache-Control (defaultMaxAge without one).
func parseMaxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(d), "=")
		if ok && strings.EqualFold(k, "max-age") {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return defaultMaxAge
}

// envelope is the part of an EventBridge event the cache reads (as an SQS queue or a
// Lambda target of the lifecycle bus receives it).
type envelope struct {
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// ApplyEvent applies one lifecycle event (the EventBridge JSON). Events of other
// types are ignored; it reports whether the cache changed.
func (c *Cache) ApplyEvent(raw []byte) (bool, error) {
	var ev envelope
	if err := json.Unmarshal(raw, &ev); err != nil {
		return false, fmt.Errorf("lifecycle event: %w", err)
	}
	if ev.DetailType != EventType {
		return false, nil
	}
	var doc Document
	if err := json.Unmarshal(ev.Detail, &doc); err != nil {
		return false, fmt.Errorf("%s: %w", EventType, err)
	}
	return c.Apply(doc), nil
}

// Apply keeps doc when it is newer than the cached document of its tenant (events
// come at least once and in any order: a repeat or an older one changes nothing). A
// tenant the cache does not hold yet is cached too: its next request needs no read.
func (c *Cache) Apply(doc Document) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[doc.TenantID]
	if e != nil && doc.Version <= e.doc.Version {
		c.stats.EventsIgnored++
		return false
	}
	maxAge := defaultMaxAge
	if e != nil {
		maxAge = e.maxAge
	}
	c.entries[doc.TenantID] = &entry{doc: doc, expires: c.cfg.Now().Add(maxAge), maxAge: maxAge}
	c.stats.EventsApplied++
	return true
}
