package nodemanager

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gatehouse/gatehouse/pki"
)

// trust is the domain CA roots the node manager trusts, as ca.crt holds
// them. Outside a CA rotation it is one root; during one, the new root
// beside the previous (docs/pki.md). The admin node says in every
// heartbeat answer which bundle is current and which root issues node
// certificates; the node manager fetches a bundle it lacks, writes it
// before trusting it, and renews a certificate of another root.
type trust struct {
	dir string

	mu    sync.Mutex
	pool  *x509.CertPool
	roots []*x509.Certificate
	id    string
	// issuer is the fingerprint of the root issuing node certificates as
	// the admin node last said; "" until it did.
	issuer string
}

func loadTrust(dir string) (*trust, error) {
	bundle, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("read the domain CA: %w", err)
	}
	t := &trust{dir: dir}
	if err := t.use(bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAFile), err)
	}
	return t, nil
}

func (t *trust) use(bundle []byte) error {
	roots := pki.ParseBundle(bundle)
	if len(roots) == 0 {
		return errors.New("no CA certificate in the trust bundle")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	t.mu.Lock()
	t.pool, t.roots, t.id = pool, roots, pki.BundleID(bundle)
	t.mu.Unlock()
	return nil
}

// Pool returns the roots trusted now.
func (t *trust) Pool() *x509.CertPool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pool
}

// update writes bundle to ca.crt and trusts it from then on, reporting
// whether it differed from the current one.
func (t *trust) update(bundle []byte) (bool, error) {
	if pki.BundleID(bundle) == t.ID() {
		return false, nil
	}
	if len(pki.ParseBundle(bundle)) == 0 {
		return false, errors.New("the admin node's trust bundle holds no CA certificate")
	}
	if err := writeFile(filepath.Join(t.dir, CAFile), bundle, 0o644); err != nil {
		return false, fmt.Errorf("write the trust bundle: %w", err)
	}
	return true, t.use(bundle)
}

// ID names the bundle as pki.BundleID does.
func (t *trust) ID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.id
}

func (t *trust) setIssuer(fp string) {
	t.mu.Lock()
	t.issuer = fp
	t.mu.Unlock()
}

// fromIssuer reports whether cert comes from the root issuing node
// certificates; true while that root is unknown or not yet trusted here,
// when there is nothing better to renew from.
func (t *trust) fromIssuer(cert *x509.Certificate) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issuer == "" {
		return true
	}
	for _, r := range t.roots {
		if pki.Fingerprint(r) == t.issuer {
			return cert.CheckSignatureFrom(r) == nil
		}
	}
	return true
}
