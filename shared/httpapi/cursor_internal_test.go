package httpapi

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

func TestListCursorIsSigned(t *testing.T) {
	h := &Handler{cursors: newCursorSigner([]byte("test-key"))}
	c := h.encodeListCursor(tenant.Active, "after-me")
	if got, err := h.decodeListCursor(c, tenant.Active); err != nil || got != "after-me" {
		t.Fatalf("round trip %q %v", got, err)
	}
	if _, err := h.decodeListCursor(c, tenant.Suspended); err == nil || !strings.Contains(err.Error(), "belongs to a listing of state ACTIVE") {
		t.Fatalf("other state: %v", err)
	}
	payload, sig, _ := strings.Cut(c, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"s":"ACTIVE","a":"TENANT#zzz"}`)) + "." + sig
	for _, bad := range []string{payload, forged, payload + ".", payload + "." + sig[:len(sig)-2] + "AA", "x.y"} {
		if _, err := h.decodeListCursor(bad, tenant.Active); err == nil || !strings.Contains(err.Error(), "not a cursor returned by this API") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	// Another key (another deployment, or another cold start without a key) refuses it.
	other := &Handler{cursors: newCursorSigner(nil)}
	if _, err := other.decodeListCursor(c, tenant.Active); err == nil {
		t.Error("cursor valid under another key")
	}
	if !other.cursors.random || h.cursors.random {
		t.Error("random flag")
	}
}
