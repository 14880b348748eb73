// Package randid makes the random identifiers the local services hand out where AWS
// would: API Gateway request ids, EventBridge event ids, JWT ids. One place, so they
// all have the shape AWS uses.
package randid

import (
	"crypto/rand"
	"fmt"
)

// UUID returns a random version 4 UUID in its canonical 36-character form.
// crypto/rand.Read does not fail since Go 1.24 (it aborts the program instead), so
// there is no error to return.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
