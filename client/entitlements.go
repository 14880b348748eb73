package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entitlements is what a tenant may do now: its state, plan, effective limits (nil:
// unlimited) and features, from the plan catalogue and the tenant's overrides. Version
// orders a tenant's documents (a later change is higher). Raw keeps the document as
// sent.
type Entitlements struct {
	TenantID       string           `json:"tenant_id"`
	Version        int64            `json:"version"`
	State          State            `json:"state"`
	Plan           string           `json:"plan"`
	CatalogVersion string           `json:"catalog_version"`
	Limits         Limits           `json:"limits"`
	Features       map[string]bool  `json:"features"`
	Overrides      AppliedOverrides `json:"overrides"`

	Raw json.RawMessage `json:"-"`
}

// AppliedOverrides are the operator's overrides in effect.
type AppliedOverrides struct {
	Limits   LimitOverrides  `json:"limits"`
	Features map[string]bool `json:"features"`
}

func (e *Entitlements) setRaw(b []byte) { e.Raw = append(json.RawMessage(nil), b...) }

// Feature reports whether the tenant has the feature (an unknown feature is off).
func (e *Entitlements) Feature(name string) bool { return e.Features[name] }

// EntitlementsAnswer is the caching information of a GetEntitlements answer.
type EntitlementsAnswer struct {
	// ETag identifies the document; send it back to revalidate.
	ETag string
	// MaxAge is how long the document may be used without asking again
	// (Cache-Control max-age).
	MaxAge time.Duration
	// NotModified: the ETag sent is still current (304) and the document is nil.
	NotModified bool
}

// GetEntitlements reads a tenant's entitlements (getEntitlements; the tenant's own
// token, an app-plane service's tenants/entitlements scope, or admin). With etag, an
// unchanged document answers 304: NotModified and a nil document.
func (c *Client) GetEntitlements(ctx context.Context, id, etag string) (*Entitlements, EntitlementsAnswer, error) {
	r := &request{method: http.MethodGet, path: "/tenants/" + p(id) + "/entitlements", accept: []int{http.StatusOK, http.StatusNotModified}}
	if etag != "" {
		r.header = http.Header{"If-None-Match": {etag}}
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, EntitlementsAnswer{}, err
	}
	ans := EntitlementsAnswer{ETag: resp.header.Get("ETag"), MaxAge: maxAge(resp.header.Get("Cache-Control"))}
	if resp.status == http.StatusNotModified {
		ans.NotModified = true
		if ans.ETag == "" {
			ans.ETag = etag
		}
		return nil, ans, nil
	}
	doc, err := decode[Entitlements](resp, nil)
	return doc, ans, err
}

// maxAge reads max-age from a Cache-Control header (0 when absent).
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(d), "=")
		if ok && strings.EqualFold(k, "max-age") {
			if s, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && s > 0 {
				return time.Duration(s) * time.Second
			}
		}
	}
	return 0
}

// EntitlementsCache keeps tenants' entitlements for a service's hot path ("may this
// tenant do X, is it under its limit"). A document is used for the max-age the API
// gives it, then revalidated with its ETag (a 304 costs no body); concurrent lookups
// of one tenant share one request. Apply takes the document of a
// TenantEntitlementsChanged event, so a change reaches the cache with the event rather
// than at the next revalidation. Events may repeat and arrive out of order, and an
// answer may cross an event: the cache keeps the highest Version it has seen.
type EntitlementsCache struct {
	c *Client
	// Now is the clock (tests); default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	doc     *Entitlements
	etag    string
	expires time.Time
	// fetching is closed when the request in flight for this tenant ends.
	fetching chan struct{}
	err      error
}

// NewEntitlementsCache returns an empty cache reading through c.
func NewEntitlementsCache(c *Client) *EntitlementsCache {
	return &EntitlementsCache{c: c, Now: time.Now, entries: map[string]*cacheEntry{}}
}

// Get returns the tenant's entitlements, from the cache while fresh, else from the API
// (revalidating with the ETag when it has one).
func (ec *EntitlementsCache) Get(ctx context.Context, tenantID string) (*Entitlements, error) {
	for {
		ec.mu.Lock()
		e := ec.entries[tenantID]
		if e == nil {
			e = &cacheEntry{}
			ec.entries[tenantID] = e
		}
		if e.doc != nil && ec.Now().Before(e.expires) {
			doc := e.doc
			ec.mu.Unlock()
			return doc, nil
		}
		if wait := e.fetching; wait != nil {
			ec.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			ec.mu.Lock()
			doc, err := e.doc, e.err
			fresh := doc != nil && ec.Now().Before(e.expires)
			ec.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if fresh {
				return doc, nil
			}
			continue
		}
		done := make(chan struct{})
		e.fetching = done
		etag := e.etag
		ec.mu.Unlock()

		doc, ans, err := ec.c.GetEntitlements(ctx, tenantID, etag)
		ec.mu.Lock()
		e.fetching, e.err = nil, err
		if err == nil {
			if !ans.NotModified && (e.doc == nil || doc.Version >= e.doc.Version) {
				e.doc, e.etag = doc, ans.ETag
			}
			e.expires = ec.Now().Add(ans.MaxAge)
			if e.doc == nil { // 304 to an ETag whose document was dropped
				e.etag = ""
			}
		}
		doc = e.doc
		ec.mu.Unlock()
		close(done)
		if err != nil {
			return nil, fmt.Errorf("entitlements of %s: %w", tenantID, err)
		}
		if doc != nil {
			return doc, nil
		}
	}
}

// Apply puts the document of a TenantEntitlementsChanged event (its detail) in the
// cache, unless the cache has a later version (a repeated or late event is ignored;
// the cached document is returned). The event carries no ETag, so the next
// revalidation after maxAge fetches the document again.
func (ec *EntitlementsCache) Apply(detail []byte, maxAge time.Duration) (*Entitlements, error) {
	var doc Entitlements
	if err := json.Unmarshal(detail, &doc); err != nil {
		return nil, fmt.Errorf("entitlements event: %w", err)
	}
	if doc.TenantID == "" {
		return nil, fmt.Errorf("entitlements event: no tenant_id")
	}
	doc.setRaw(detail)
	ec.mu.Lock()
	defer ec.mu.Unlock()
	e := ec.entries[doc.TenantID]
	if e == nil {
		e = &cacheEntry{}
		ec.entries[doc.TenantID] = e
	}
	if e.doc != nil && e.doc.Version > doc.Version {
		return e.doc, nil
	}
	e.doc, e.etag, e.expires = &doc, "", ec.Now().Add(maxAge)
	return &doc, nil
}

// Invalidate drops a tenant's document: the next Get asks the API.
func (ec *EntitlementsCache) Invalidate(tenantID string) {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if e := ec.entries[tenantID]; e != nil {
		e.doc, e.etag, e.expires = nil, "", time.Time{}
	}
}
