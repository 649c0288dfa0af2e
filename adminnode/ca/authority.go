package ca

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/gatehouse/gatehouse/pki"
)

// Authority is the set of roots a domain trusts at one time. Outside a
// rotation it is one root that does everything. During a rotation
// (docs/pki.md, "Rotating the CA") it holds two: the new root signs node
// certificates from then on, while the previous one still signs the admin
// node's server certificate, because node managers that have not yet
// fetched the new trust bundle verify the admin node against the previous
// root only. Both verify node certificates. Retiring the previous root
// leaves the new one alone. An Authority never changes; a rotation makes a
// new one.
type Authority struct {
	// roots are newest first; roots[0] issues node certificates and the
	// last one the server certificate.
	roots []*CA
	pool  *x509.CertPool
	// trustID is computed once: every heartbeat answer carries it.
	trustID string
}

// NewAuthority makes the authority of roots, newest first. Every root must
// be of the same domain.
func NewAuthority(roots ...*CA) (*Authority, error) {
	if len(roots) == 0 {
		return nil, errors.New("ca: an authority needs a root")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		if r.domain != roots[0].domain {
			return nil, fmt.Errorf("ca: root %s is of domain %q, not %q", r.Fingerprint(), r.domain, roots[0].domain)
		}
		pool.AddCert(r.cert)
	}
	a := &Authority{roots: roots, pool: pool}
	a.trustID = pki.BundleID(a.BundlePEM())
	return a, nil
}

// Domain returns the domain of the roots.
func (a *Authority) Domain() string { return a.roots[0].domain }

// Roots returns the roots, newest first.
func (a *Authority) Roots() []*CA { return append([]*CA(nil), a.roots...) }

// Issuer is the root that signs node certificates: the newest.
func (a *Authority) Issuer() *CA { return a.roots[0] }

// Server is the root that signs the admin node's server certificate: the
// oldest still trusted, which every node manager trusts.
func (a *Authority) Server() *CA { return a.roots[len(a.roots)-1] }

// Rotating reports whether a previous root is still trusted beside the
// newest.
func (a *Authority) Rotating() bool { return len(a.roots) > 1 }

// Fingerprint is the fingerprint of the root the admin node presents in
// its handshake, which a joining node manager or a CLI pins.
func (a *Authority) Fingerprint() string { return a.Server().Fingerprint() }

// BundlePEM returns every trusted root, newest first: what a node manager
// writes to its ca.crt and trusts.
func (a *Authority) BundlePEM() []byte {
	var b bytes.Buffer
	for _, r := range a.roots {
		b.Write(r.certPEM)
	}
	return b.Bytes()
}

// TrustID names the bundle briefly, for a heartbeat to tell a node
// manager whether the one it holds is current.
func (a *Authority) TrustID() string { return a.trustID }

// Pool returns a pool of every trusted root, a copy.
func (a *Authority) Pool() *x509.CertPool { return a.pool.Clone() }

// SignCSR issues a node certificate from the newest root (CA.SignCSR).
func (a *Authority) SignCSR(csrPEM []byte, host string, ttl time.Duration, now time.Time) ([]byte, *big.Int, error) {
	return a.Issuer().SignCSR(csrPEM, host, ttl, now)
}

// IssueServer issues the admin node's server certificate from the Server
// root (CA.IssueServer).
func (a *Authority) IssueServer(names []string, ips []net.IP, ttl time.Duration, now time.Time) (tls.Certificate, error) {
	return a.Server().IssueServer(names, ips, ttl, now)
}

// VerifyNode checks a node certificate against every trusted root
// (CA.VerifyNode): during a rotation, nodes not yet renewed still present
// a certificate of the previous root.
func (a *Authority) VerifyNode(cert *x509.Certificate, now time.Time, revoked func(*big.Int) bool) (string, error) {
	for _, r := range a.roots[1:] {
		if r.Issued(cert) {
			return r.VerifyNode(cert, now, revoked)
		}
	}
	return a.roots[0].VerifyNode(cert, now, revoked)
}

// ServerTLS is ServerTLS of the CA, trusting every root for client
// certificates.
func (a *Authority) ServerTLS(cert tls.Certificate) *tls.Config {
	cfg := a.Server().ServerTLS(cert)
	cfg.ClientCAs = a.Pool()
	return cfg
}

// Find returns the root with fingerprint fp.
func (a *Authority) Find(fp string) (*CA, bool) {
	for _, r := range a.roots {
		if r.Fingerprint() == fp {
			return r, true
		}
	}
	return nil, false
}
