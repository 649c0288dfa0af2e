package nodemanager

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pki"
)

// root is a CA of the test's own: the node manager meets the domain's CA
// only as certificates, never as the admin node's package.
type root struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newRoot(t *testing.T) *root {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "prod CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &root{cert: cert, key: key}
}

func (r *root) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.cert.Raw})
}

func nodeLeaf(t *testing.T, r *root) *x509.Certificate {
	t.Helper()
	certPEM, _ := nodePair(t, r)
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
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
	if err := os.WriteFile(filepath.Join(dir, CAFile), old.certPEM(), 0o644); err != nil {
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
	tr.setIssuer(pki.Fingerprint(fresh.cert))
	if !tr.fromIssuer(oldLeaf) {
		t.Error("an issuer not yet trusted here asks for a renewal it cannot verify")
	}
	// The admin node's bundle: every root, newest first.
	both := append(fresh.certPEM(), old.certPEM()...)
	bothID := pki.BundleID(both)
	changed, err := tr.update(both)
	if err != nil || !changed || tr.ID() != bothID {
		t.Fatalf("update to both roots = %v, %v (id %s, want %s)", changed, err, tr.ID(), bothID)
	}
	if again, err := tr.update(both); again || err != nil {
		t.Errorf("the same bundle again: changed %v, %v", again, err)
	}
	if written, _ := os.ReadFile(filepath.Join(dir, CAFile)); pki.BundleID(written) != bothID {
		t.Error("ca.crt is not the new bundle")
	}
	if tr.fromIssuer(oldLeaf) || !tr.fromIssuer(freshLeaf) {
		t.Error("fromIssuer: the old root's certificate is not to be renewed, or the new root's is")
	}
	for _, r := range []*root{old, fresh} {
		if _, err := nodeLeaf(t, r).Verify(x509.VerifyOptions{Roots: tr.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("a certificate of a trusted root does not verify: %v", err)
		}
	}
	if _, err := tr.update([]byte("not a bundle")); err == nil {
		t.Error("a bundle without a CA accepted")
	}
	if written, _ := os.ReadFile(filepath.Join(dir, CAFile)); pki.BundleID(written) != bothID {
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
