package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrPinMismatch is wrapped by the error of a connection to a server whose
// chain does not hold the pinned CA, or whose certificate that CA did not
// issue: it is not the admin node the fingerprint names.
var ErrPinMismatch = errors.New("server is not trusted by the pinned CA fingerprint")

// pin verifies servers by the fingerprint of their CA, and remembers the
// CA certificate that matched so that it can be saved and trusted as a
// certificate from then on.
type pin struct {
	sum [sha256.Size]byte

	mu sync.Mutex
	ca *x509.Certificate // the CA of the last verified handshake
}

func parseFingerprint(s string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	const prefix = "SHA256:"
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return sum, fmt.Errorf("client: CA fingerprint %q: want %s and the hex SHA-256 of the certificate", s, prefix)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s[len(prefix):], ":", ""))
	if err != nil || len(b) != len(sum) {
		return sum, fmt.Errorf("client: CA fingerprint %q: want %s and %d hex digits", s, prefix, 2*len(sum))
	}
	copy(sum[:], b)
	return sum, nil
}

// verifier returns the whole verification of a handshake with host: the
// standard one is turned off, as the domain CA is in no root pool. The
// server sends its CA certificate after its leaf; it is looked for by
// fingerprint, then must be a CA that issued the leaf for host, as a root
// in a pool would have to be.
func (p *pin) verifier(host string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error { return p.verify(cs, host) }
}

func (p *pin) verify(cs tls.ConnectionState, host string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return fmt.Errorf("%w: the server presented no certificate", ErrPinMismatch)
	}
	leaf := certs[0]
	for _, cert := range certs {
		if sha256.Sum256(cert.Raw) != p.sum {
			continue
		}
		if !cert.IsCA {
			return fmt.Errorf("%w: the certificate with the pinned fingerprint, %q, is not a CA", ErrPinMismatch, cert.Subject.CommonName)
		}
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			return fmt.Errorf("%w: the server certificate %q is not valid for %s under the pinned CA %q: %w",
				ErrPinMismatch, leaf.Subject.CommonName, host, cert.Subject.CommonName, err)
		}
		p.mu.Lock()
		p.ca = cert
		p.mu.Unlock()
		return nil
	}
	presented := make([]string, len(certs))
	for i, cert := range certs {
		sum := sha256.Sum256(cert.Raw)
		presented[i] = fmt.Sprintf("%q SHA256:%x", cert.Subject.CommonName, sum)
	}
	hint := ""
	if len(certs) == 1 {
		hint = " (it sent its own certificate only, no CA certificate to compare)"
	}
	return fmt.Errorf("%w: no certificate of the server's chain has the fingerprint SHA256:%x; it presented %s%s",
		ErrPinMismatch, p.sum, strings.Join(presented, ", "), hint)
}

func (p *pin) verified() *x509.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ca
}

// ServerCA returns, in PEM, the CA certificate the client trusts the admin
// node by, for saving so that later clients trust it by certificate:
// Config.CACertPEM, or with a fingerprint, the CA certificate that matched
// it, connecting first (GET /health) if no connection has been verified
// yet. With the system roots there is no such certificate and it fails.
func (c *Client) ServerCA(ctx context.Context) ([]byte, error) {
	switch {
	case c.caPEM != nil:
		return c.caPEM, nil
	case c.pin == nil:
		return nil, errors.New("client: the system roots are trusted, not a CA of the client's own")
	}
	if c.pin.verified() == nil {
		if _, err := c.Health(ctx); err != nil {
			return nil, fmt.Errorf("fetch the server's CA: %w", err)
		}
	}
	// Set now: Health could not succeed without a verified handshake.
	ca := c.pin.verified()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
}
