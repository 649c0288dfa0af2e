package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"regexp"
	"time"
)

// name is the rule for host names: the object-name rule of the
// configuration, which adminnode/ca also applies when it signs.
var name = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// NewCSR makes a node manager's key and the request it sends when joining.
// The key never leaves the node. An empty host leaves the request unnamed,
// for a node joining with a token that names its host for it.
func NewCSR(host string) (csrPEM, keyPEM []byte, err error) {
	if host != "" && !name.MatchString(host) {
		return nil, nil, fmt.Errorf("pki: invalid host name %q", host)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate node key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: host},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create request: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: marshal node key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// NeedsRenewal reports whether cert is in the last third of its validity.
// A fraction rather than a fixed margin suits any lifetime the operator
// picks. Renewing at two thirds leaves a third of the lifetime to retry
// through an admin node outage or a bad clock before the node loses its
// connection, and is late enough that nodes do not renew needlessly often.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	return !now.Before(cert.NotAfter.Add(-lifetime / 3))
}

// Fingerprint identifies a CA certificate: "SHA256:" and the lower-case
// hex SHA-256 of its DER, the form `admin init` prints.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// ParseBundle returns the CA certificates of a PEM trust bundle (a node
// manager's ca.crt), skipping anything else.
func ParseBundle(bundlePEM []byte) []*x509.Certificate {
	var out []*x509.Certificate
	rest := bundlePEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && cert.IsCA {
			out = append(out, cert)
		}
	}
}

// BundleID names a trust bundle briefly, by its CA certificates: the
// admin node says in heartbeat answers which bundle is current, and a node
// manager holding another fetches it.
func BundleID(bundlePEM []byte) string {
	h := sha256.New()
	for _, cert := range ParseBundle(bundlePEM) {
		h.Write(cert.Raw)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
