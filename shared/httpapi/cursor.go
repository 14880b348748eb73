package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// List cursors are tamper-proof: the JSON of listCursor, base64url, then "." and the
// first 16 bytes of its HMAC-SHA256, base64url. A cursor whose MAC does not verify is
// the same 422 as garbage, so a client cannot walk the ByState index from a key of
// its choosing.
//
// The key comes from Config.CursorKey: functions/api reads LIST_CURSOR_KEY (template
// parameter ListCursorKey, NoEcho). Without one, each cold start draws a random key and
// logs that it did: cursors are then only valid within the container that made them
// (another container answers 422 and the client restarts the listing).

const cursorMACBytes = 16

type cursorSigner struct {
	key []byte
	// random is true when no key was configured.
	random bool
}

func newCursorSigner(key []byte) cursorSigner {
	if len(key) > 0 {
		return cursorSigner{key: append([]byte(nil), key...)}
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return cursorSigner{key: k, random: true}
}

func (c cursorSigner) mac(payload string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(payload))
	return m.Sum(nil)[:cursorMACBytes]
}

// sign returns payload (already base64url) with its MAC.
func (c cursorSigner) sign(payload string) string {
	return payload + "." + base64.RawURLEncoding.EncodeToString(c.mac(payload))
}

// verify returns the payload of a signed cursor, or false.
func (c cursorSigner) verify(s string) (string, bool) {
	payload, sig, ok := strings.Cut(s, ".")
	if !ok {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac(payload)) {
		return "", false
	}
	return payload, true
}

// RandomCursorKey reports whether the handler signs cursors with a random per-cold-start
// key (no CursorKey configured).
func (h *Handler) RandomCursorKey() bool { return h.cursors.random }
