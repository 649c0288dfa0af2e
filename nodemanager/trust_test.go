package nodemanager

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/pki"
)

func newRoot(t *testing.T) *ca.CA {
	t.Helper()
	r, err := ca.New("prod", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func nodeLeaf(t *testing.T, r *ca.CA) *x509.Certificate {
	t.Helper()
	csr, _, err := pki.NewCSR("web-1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := r.SignCSR(csr, "web-1", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// The trust bundle follows the admin node's: written to ca.crt before it
// is trusted, and a certificate of a root other than the issuer is to be
// renewed.
func TestTrustFollowsRotation(t *testing.T) {
	dir := t.TempDir()
	old, fresh := newRoot(t), newRoot(t)
	if err := os.WriteFile(filepath.Join(dir, CAFile), old.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := loadTrust(dir)
	if err != nil {
		t.Fatal(err)
	}
	oldLeaf, freshLeaf := nodeLeaf(t, old), nodeLeaf(t, fresh)
	if !tr.fromIssuer(oldLeaf) {
		t.Error("with no issuer named, a certificate is to be renewed")
	}
	tr.setIssuer(fresh.Fingerprint())
	if !tr.fromIssuer(oldLeaf) {
		t.Error("an issuer not yet trusted here asks for a renewal it cannot verify")
	}
	both, _ := ca.NewAuthority(fresh, old)
	changed, err := tr.update(both.BundlePEM())
	if err != nil || !changed || tr.ID() != both.TrustID() {
		t.Fatalf("update to both roots = %v, %v (id %s, want %s)", changed, err, tr.ID(), both.TrustID())
	}
	if again, err := tr.update(both.BundlePEM()); again || err != nil {
		t.Errorf("the same bundle again: changed %v, %v", again, err)
	}
	if written, _ := os.ReadFile(filepath.Join(dir, CAFile)); pki.BundleID(written) != both.TrustID() {
		t.Error("ca.crt is not the new bundle")
	}
	if tr.fromIssuer(oldLeaf) || !tr.fromIssuer(freshLeaf) {
		t.Error("fromIssuer: the old root's certificate is not to be renewed, or the new root's is")
	}
	for _, r := range []*ca.CA{old, fresh} {
		if _, err := nodeLeaf(t, r).Verify(x509.VerifyOptions{Roots: tr.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("a certificate of a trusted root does not verify: %v", err)
		}
	}
	if _, err := tr.update([]byte("not a bundle")); err == nil {
		t.Error("a bundle without a CA accepted")
	}
	if written, _ := os.ReadFile(filepath.Join(dir, CAFile)); pki.BundleID(written) != both.TrustID() {
		t.Error("a refused bundle replaced ca.crt")
	}
}

func TestCheckEvery(t *testing.T) {
	for _, tt := range []struct {
		life, want time.Duration
	}{
		{30 * 24 * time.Hour, time.Hour},
		{2 * time.Minute, 10 * time.Second},
		{6 * time.Second, time.Second},
	} {
		now := time.Now()
		c := &certs{cur: newCertWithLife(now, tt.life)}
		if got := c.checkEvery(); got != tt.want {
			t.Errorf("life %s: check every %s, want %s", tt.life, got, tt.want)
		}
	}
}

func newCertWithLife(now time.Time, life time.Duration) *tls.Certificate {
	return &tls.Certificate{Leaf: &x509.Certificate{NotBefore: now, NotAfter: now.Add(life)}}
}
