package obo

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// CertificateFiles locate the gateway's certificate on disk.
type CertificateFiles struct {
	Path, KeyPath, Password string
}

// certWatcher notices when the certificate files change: their resolved
// path (a Kubernetes Secret update swaps the ..data symlink), size or
// modification time. It is safe for concurrent use.
type certWatcher struct {
	files    CertificateFiles
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	lastCheck time.Time
	stamp     string
}

func newCertWatcher(f CertificateFiles, interval time.Duration, now func() time.Time) *certWatcher {
	w := &certWatcher{files: f, interval: interval, now: now}
	w.stamp = w.currentStamp()
	w.lastCheck = now()
	return w
}

// check returns the certificate when the files changed since the last load.
// Without force it looks at most once per interval.
func (w *certWatcher) check(force bool) (*Certificate, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if !force && now.Sub(w.lastCheck) < w.interval {
		return nil, false, nil
	}
	w.lastCheck = now
	stamp := w.currentStamp()
	if stamp == w.stamp {
		return nil, false, nil
	}
	cert, err := LoadCertificate(w.files.Path, w.files.KeyPath, w.files.Password)
	if err != nil {
		// Perhaps caught mid-write: try again at the next check.
		return nil, false, err
	}
	w.stamp = stamp
	return cert, true, nil
}

func (w *certWatcher) currentStamp() string {
	var s string
	for _, p := range []string{w.files.Path, w.files.KeyPath} {
		if p == "" {
			continue
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			s += "|missing:" + p
			continue
		}
		st, err := os.Stat(resolved)
		if err != nil {
			s += "|missing:" + resolved
			continue
		}
		s += "|" + resolved + "|" + st.ModTime().UTC().Format(time.RFC3339Nano) + "|" + strconv.FormatInt(st.Size(), 10)
	}
	return s
}

// Thumbprint256Hex is the certificate's SHA-256 thumbprint in hex: safe to log.
func Thumbprint256Hex(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}
