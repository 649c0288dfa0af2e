// Package ca is the domain's certificate authority. The admin node creates
// one root per domain at init, serves HTTPS with a certificate from it and
// signs the CSR each node manager sends when it joins; from then on node
// managers and admin node trust nothing but that root. The node's side,
// its key and request and when to renew, is package pki: the CA is admin
// node logic, which no other process imports. docs/pki.md describes the
// profiles, fingerprint pinning and renewal.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// RootValidity is how long a domain root is valid. Replacing a root means
// re-enrolling every node, so it is long-lived on purpose.
const RootValidity = 10 * 365 * 24 * time.Hour

// clockSkew backdates every certificate: hosts' clocks disagree, and a node
// whose clock runs a little behind the admin node's must not see a freshly
// issued certificate, or the root itself, as not yet valid.
const clockSkew = 5 * time.Minute

// NodeOU is the OrganizationalUnit of node certificates. It keeps a node
// certificate from being taken for any other kind the CA may issue later.
const NodeOU = "node"

// URIScheme is the scheme of the URI SAN naming a node:
// gatehouse://<domain>/host/<host>.
const URIScheme = "gatehouse"

var (
	// ErrInvalidCSR is wrapped by every reason SignCSR refuses a request.
	ErrInvalidCSR = errors.New("invalid certificate request")
	// ErrUntrusted is wrapped when a certificate is not a node certificate
	// issued by this domain's CA.
	ErrUntrusted = errors.New("untrusted certificate")
	// ErrExpired is wrapped when a certificate is outside its validity.
	ErrExpired = errors.New("certificate expired or not yet valid")
	// ErrRevoked is wrapped when a certificate's serial has been revoked.
	ErrRevoked = errors.New("certificate revoked")
)

// name is the rule for domain and host names; it is the object-name rule
// of the configuration so that every valid name fits in a URI unescaped.
var name = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// CA is a domain's root certificate and its key.
type CA struct {
	domain  string
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
}

// New creates the self-signed root of domain.
func New(domain string, now time.Time) (*CA, error) {
	if !name.MatchString(domain) {
		return nil, fmt.Errorf("ca: invalid domain name %q", domain)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: rootCommonName(domain)},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(RootValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: create root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse root: %w", err)
	}
	return newCA(domain, cert, key), nil
}

// Load restores a CA saved with PEM.
func Load(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: load root: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("ca: load root: certificate is not a CA")
	}
	domain, ok := strings.CutPrefix(cert.Subject.CommonName, "Gatehouse ")
	if ok {
		domain, ok = strings.CutSuffix(domain, " CA")
	}
	if !ok || !name.MatchString(domain) {
		return nil, fmt.Errorf("ca: load root: %q is not a Gatehouse domain CA", cert.Subject.CommonName)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("ca: load root key: no PKCS#8 PRIVATE KEY PEM block")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: load root key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ca: load root key: %T is not an ECDSA key", parsed)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("ca: load root: key does not belong to the certificate")
	}
	return newCA(domain, cert, key), nil
}

func newCA(domain string, cert *x509.Certificate, key *ecdsa.PrivateKey) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		domain:  domain,
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
		pool:    pool,
	}
}

func rootCommonName(domain string) string { return "Gatehouse " + domain + " CA" }

// PEM returns the root certificate and its PKCS#8 key for storage.
func (c *CA) PEM() (certPEM, keyPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: marshal root key: %w", err)
	}
	return c.CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Domain returns the domain the CA belongs to.
func (c *CA) Domain() string { return c.domain }

// CertPEM returns the root certificate, the part node managers may see.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// Pool returns a pool holding the root only. It is a copy, so a caller
// adding to it cannot widen what the CA trusts.
func (c *CA) Pool() *x509.CertPool { return c.pool.Clone() }

// Fingerprint identifies the root for pinning by `node join
// --ca-fingerprint`.
func (c *CA) Fingerprint() string { return fingerprint(c.cert.Raw) }

// Fingerprint returns "SHA256:" and the lower-case hex SHA-256 of the DER of
// the first certificate in certPEM. It is the form `admin init` prints, so
// a joining node can check the CA it was handed against it.
func Fingerprint(certPEM []byte) (string, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return "", fmt.Errorf("ca: fingerprint: %w", err)
	}
	return fingerprint(cert.Raw), nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// IssueServer issues the admin node's HTTPS certificate. The chain holds
// the leaf only; the admin node appends the root when it serves it, for
// clients that pin the root by fingerprint (docs/pki.md).
func (c *CA) IssueServer(names []string, ips []net.IP, ttl time.Duration, now time.Time) (tls.Certificate, error) {
	if len(names) == 0 && len(ips) == 0 {
		return tls.Certificate{}, errors.New("ca: server certificate needs at least one name or IP address")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: generate server key: %w", err)
	}
	var cn string
	if len(names) > 0 {
		cn = names[0]
	} else {
		cn = ips[0].String()
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    names,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	cert, err := c.issue(tmpl, &key.PublicKey, ttl, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// SignCSR issues the certificate of node host. host comes from the join
// token, not from the request: the request's CommonName must be empty or
// agree, so a token for one host cannot buy a certificate for another. Only the
// public key is taken from the request; every other field is the CA's.
func (c *CA) SignCSR(csrPEM []byte, host string, ttl time.Duration, now time.Time) (certPEM []byte, serial *big.Int, err error) {
	if !name.MatchString(host) {
		return nil, nil, fmt.Errorf("ca: %w: invalid host name %q", ErrInvalidCSR, host)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, nil, fmt.Errorf("ca: %w: no CERTIFICATE REQUEST PEM block", ErrInvalidCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: %w: %w", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("ca: %w: bad signature: %w", ErrInvalidCSR, err)
	}
	if csr.Subject.CommonName != "" && csr.Subject.CommonName != host {
		return nil, nil, fmt.Errorf("ca: %w: CommonName %q does not match host %q", ErrInvalidCSR, csr.Subject.CommonName, host)
	}
	if err := acceptableKey(csr.PublicKey); err != nil {
		return nil, nil, fmt.Errorf("ca: %w: %w", ErrInvalidCSR, err)
	}
	tmpl := &x509.Certificate{
		Subject:  pkix.Name{CommonName: host, OrganizationalUnit: []string{NodeOU}},
		URIs:     []*url.URL{nodeURI(c.domain, host)},
		KeyUsage: x509.KeyUsageDigitalSignature,
		// ServerAuth too, so that nodes can later talk to each other
		// without a second certificate.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	cert, err := c.issue(tmpl, csr.PublicKey, ttl, now)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), cert.SerialNumber, nil
}

// acceptableKey refuses keys too weak to be worth a certificate; the
// standard library would sign them all.
func acceptableKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("ECDSA curve %s not accepted", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return nil
		}
		return fmt.Errorf("RSA key of %d bits is too short", k.N.BitLen())
	default:
		return fmt.Errorf("key type %T not accepted", pub)
	}
}

func nodeURI(domain, host string) *url.URL {
	return &url.URL{Scheme: URIScheme, Host: domain, Path: "/host/" + host}
}

// issue fills in what every leaf shares and signs it. NotAfter is capped at
// the root's: a leaf outliving its issuer would fail verification anyway,
// and capping lets pki.NeedsRenewal see it coming.
func (c *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey, ttl time.Duration, now time.Time) (*x509.Certificate, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("ca: certificate lifetime %v is not positive", ttl)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	// A short-lived certificate (a test's, minutes) is backdated by a
	// tenth of its life only: five minutes would be most of it, and it
	// would be due for renewal as soon as issued.
	tmpl.NotBefore = now.Add(-min(clockSkew, ttl/10))
	tmpl.NotAfter = now.Add(ttl)
	if tmpl.NotAfter.After(c.cert.NotAfter) {
		tmpl.NotAfter = c.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse issued certificate: %w", err)
	}
	return cert, nil
}

// newSerial returns a random 128-bit serial. The top bit is set so the
// number is always positive and always 16 bytes, leaving 127 random bits:
// serials must be unpredictable and never collide, since revocation is by
// serial.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	b[0] |= 0x80
	return new(big.Int).SetBytes(b), nil
}

// subjectKeyID follows RFC 7093 method 1: the leftmost 160 bits of the
// SHA-256 of the subjectPublicKey bit string.
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	ek, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("ca: subject key id: %w", err)
	}
	sum := sha256.Sum256(ek.Bytes())
	return sum[:20], nil
}

// VerifyNode checks that cert is a valid, unrevoked node certificate of
// this domain and returns the node's host. The TLS handshake has already
// checked the chain, but it runs before the caller can consult
// revocations, and the domain and OU checks are ours alone; the chain is
// checked again so VerifyNode is safe on any certificate. revoked may be
// nil when nothing is revoked.
func (c *CA) VerifyNode(cert *x509.Certificate, now time.Time, revoked func(*big.Int) bool) (host string, err error) {
	if cert == nil {
		return "", fmt.Errorf("ca: %w: no client certificate", ErrUntrusted)
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       c.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return "", fmt.Errorf("ca: node certificate %q: %w: %w", cert.Subject.CommonName, ErrExpired, err)
		}
		return "", fmt.Errorf("ca: node certificate %q (issuer %q) was not issued by the CA of domain %q: %w: %w",
			cert.Subject.CommonName, cert.Issuer.CommonName, c.domain, ErrUntrusted, err)
	}
	if revoked != nil && revoked(cert.SerialNumber) {
		return "", fmt.Errorf("ca: node certificate %q serial %x: %w", cert.Subject.CommonName, cert.SerialNumber, ErrRevoked)
	}
	if len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != NodeOU {
		return "", fmt.Errorf("ca: certificate %q is not a node certificate (OU %q): %w",
			cert.Subject.CommonName, cert.Subject.OrganizationalUnit, ErrUntrusted)
	}
	host = cert.Subject.CommonName
	if len(cert.URIs) != 1 {
		return "", fmt.Errorf("ca: node certificate %q has %d URI names, want 1: %w", host, len(cert.URIs), ErrUntrusted)
	}
	u := cert.URIs[0]
	if u.Scheme != URIScheme || u.Host != c.domain {
		return "", fmt.Errorf("ca: node certificate %q names %s, not a node of domain %q: %w", host, u, c.domain, ErrUntrusted)
	}
	if u.String() != nodeURI(c.domain, host).String() {
		return "", fmt.Errorf("ca: node certificate %q names %s, which disagrees with its CommonName: %w", host, u, ErrUntrusted)
	}
	return host, nil
}

// ServerTLS is the admin node's HTTPS configuration. One port serves
// browsers and the CLI, which present no client certificate, and node
// managers, which do; so a certificate is verified against the root when
// given but not required. The HTTP layer must require one on the agent
// routes and call VerifyNode on it: the handshake alone admits clients
// without a certificate and knows nothing of revocation.
func (c *CA) ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    c.Pool(),
	}
}

// ClientTLS is a node manager's configuration towards the admin node. It
// trusts the domain CA in caPEM and nothing else, not the system roots:
// the admin node's certificate comes from the domain CA only. nodeCert is
// nil while joining, before the node has a certificate.
func ClientTLS(caPEM []byte, nodeCert *tls.Certificate) (*tls.Config, error) {
	root, err := parseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: client TLS: %w", err)
	}
	if !root.IsCA {
		return nil, errors.New("ca: client TLS: certificate is not a CA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if nodeCert != nil {
		cfg.Certificates = []tls.Certificate{*nodeCert}
	}
	return cfg, nil
}

func parseCertPEM(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// Cert returns the root certificate.
func (c *CA) Cert() *x509.Certificate { return c.cert }

// KeyPEM returns the root's PKCS#8 key.
func (c *CA) KeyPEM() ([]byte, error) {
	_, keyPEM, err := c.PEM()
	return keyPEM, err
}

// Issued reports whether this root signed cert.
func (c *CA) Issued(cert *x509.Certificate) bool {
	return cert != nil && cert.CheckSignatureFrom(c.cert) == nil
}
