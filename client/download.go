package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ChecksumError says the downloaded export is not the file the API described: its
// SHA-256 or size differs.
type ChecksumError struct {
	ExportID              string
	WantSHA256, GotSHA256 string
	WantSize, GotSize     int64
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("export %s: downloaded %d bytes with sha256 %s, the API reports %d bytes with sha256 %s",
		e.ExportID, e.GotSize, e.GotSHA256, e.WantSize, e.WantSHA256)
}

// DownloadExport writes a completed export's file to w and verifies it against the
// SHA-256 (and size) the API reported. The URL is pre-signed, so no token is sent with
// it. On a mismatch w has the bytes and the error is a *ChecksumError: discard them.
// Pass the export of a fresh GetExport or WaitExport: the URL expires after 15 minutes.
func (c *Client) DownloadExport(ctx context.Context, ex *Export, w io.Writer) (sum string, n int64, err error) {
	if ex.Status != ExportCompleted || ex.DownloadURL == "" {
		return "", 0, fmt.Errorf("export %s is %s: no file to download yet", ex.ExportID, ex.Status)
	}
	if ex.SHA256 == "" {
		return "", 0, errors.New("export " + ex.ExportID + " reports no sha256 to verify against")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ex.DownloadURL, nil)
	if err != nil {
		return "", 0, fmt.Errorf("export %s: %w", ex.ExportID, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	// The API client's timeout bounds API calls; a large file may take longer, so the
	// download is bounded by ctx only.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("export %s: download: %w", ex.ExportID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", 0, fmt.Errorf("export %s: download answered %s: %s", ex.ExportID, resp.Status, b)
	}
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("export %s: download: %w", ex.ExportID, err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if sum != ex.SHA256 || ex.SizeBytes > 0 && n != ex.SizeBytes {
		return sum, n, &ChecksumError{ExportID: ex.ExportID, WantSHA256: ex.SHA256, GotSHA256: sum, WantSize: ex.SizeBytes, GotSize: n}
	}
	return sum, n, nil
}
