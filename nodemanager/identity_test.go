package nodemanager

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nodePair is a node certificate of r and its key, as PEM.
func nodePair(t *testing.T, r *root) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "web-1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, &key.PublicKey, r.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// A node manager that dies at any step of a renewal starts again with a
// key and certificate that belong together: the old pair or the new one.
func TestRenewalSurvivesAStopAtEveryStep(t *testing.T) {
	r := newRoot(t)
	oldCert, oldKey := nodePair(t, r)
	newCert, newKey := nodePair(t, r)
	n := len(renewalSteps(t.TempDir(), oldKey, newKey, newCert))
	for done := 0; done <= n; done++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, CertFile), oldCert, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, KeyFile), oldKey, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, step := range renewalSteps(dir, oldKey, newKey, newCert)[:done] {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		c, err := loadCerts(dir)
		if err != nil {
			t.Fatalf("stopped after %d of %d steps: %v", done, n, err)
		}
		wantCert, wantKey := oldCert, oldKey
		if done >= 3 {
			wantCert, wantKey = newCert, newKey
		}
		if got := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cur.Certificate[0]}); !bytes.Equal(got, wantCert) {
			t.Errorf("stopped after %d steps: loaded the other certificate", done)
		}
		// The files agree again, and nothing is left aside.
		if key, _ := os.ReadFile(filepath.Join(dir, KeyFile)); !bytes.Equal(key, wantKey) {
			t.Errorf("stopped after %d steps: %s is not the certificate's key", done, KeyFile)
		}
		if _, err := os.Stat(filepath.Join(dir, prevKeyFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stopped after %d steps: %s left: %v", done, prevKeyFile, err)
		}
	}

	// A key that is not the certificate's, and none kept aside: refused.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CertFile), oldCert, 0o644)
	os.WriteFile(filepath.Join(dir, KeyFile), newKey, 0o600)
	if _, err := loadCerts(dir); err == nil || !strings.Contains(err.Error(), "load node certificate") {
		t.Errorf("mismatched pair: %v", err)
	}
}
