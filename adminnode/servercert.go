package adminnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/pki"
)

// ServerCertTTL is the lifetime of the admin node's HTTPS certificate. It
// is short because the node re-issues it itself (from two thirds of its
// life on, pki.NeedsRenewal) and nobody pins it: clients pin the CA.
const ServerCertTTL = 30 * 24 * time.Hour

// serverCert holds the certificate the HTTPS listener serves and renews
// it. GetCertificate reads it on every handshake, so renewal takes effect
// without a restart and without dropping connections. It follows the
// domain CA: a rotation or retirement that changes the root signing the
// server certificate has it re-issued at once, and the roots trusted for
// client certificates are those of the current authority.
type serverCert struct {
	names []string
	ips   []net.IP
	ttl   time.Duration
	// mu serializes re-issuing: renewal and a CA change may race.
	mu   sync.Mutex
	auth atomic.Pointer[ca.Authority]
	cur  atomic.Pointer[tls.Certificate]
	tls  atomic.Pointer[tls.Config]
}

func newServerCert(a *ca.Authority, names []string, ips []net.IP, ttl time.Duration, now time.Time) (*serverCert, error) {
	if ttl <= 0 {
		ttl = ServerCertTTL
	}
	c := &serverCert{names: names, ips: ips, ttl: ttl}
	c.auth.Store(a)
	c.tls.Store(a.ServerTLS(tls.Certificate{}))
	if err := c.issue(now); err != nil {
		return nil, err
	}
	return c, nil
}

// issue replaces the certificate by a new one. The chain carries the root
// after the leaf: a client that has only the CA's fingerprint (a node
// manager joining) can then check the root it is shown against it.
func (c *serverCert) issue(now time.Time) error {
	a := c.auth.Load()
	cert, err := a.IssueServer(c.names, c.ips, c.ttl, now)
	if err != nil {
		return fmt.Errorf("issue server certificate: %w", err)
	}
	cert.Certificate = append(cert.Certificate, a.Server().Cert().Raw)
	c.cur.Store(&cert)
	return nil
}

// renew re-issues the certificate when it is due or when its root no
// longer signs server certificates, reporting whether it did.
func (c *serverCert) renew(now time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	leaf := c.cur.Load().Leaf
	if !pki.NeedsRenewal(leaf, now) && c.auth.Load().Server().Issued(leaf) {
		return false, nil
	}
	return true, c.issue(now)
}

// setAuthority follows a change of the domain CA's roots.
func (c *serverCert) setAuthority(a *ca.Authority, now time.Time) (bool, error) {
	c.auth.Store(a)
	c.tls.Store(a.ServerTLS(tls.Certificate{}))
	return c.renew(now)
}

// checkEvery is how often the certificate is looked at: a twelfth of its
// life, at most maintainEvery, so that even a short-lived certificate is
// renewed well inside its last third.
func (c *serverCert) checkEvery() time.Duration {
	return min(maintainEvery, max(c.ttl/12, time.Second))
}

func (c *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// config is the TLS configuration of a handshake: the served certificate
// and the roots trusted for client certificates now.
func (c *serverCert) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	cfg := c.tls.Load().Clone()
	cfg.Certificates = nil
	cfg.GetCertificate = c.get
	return cfg, nil
}

// serverNames splits the names the certificate is issued for into DNS
// names and IP addresses, dropping duplicates: the defaults that local
// clients use (host name, localhost, loopback addresses), the specific IP
// address the node listens on, if any, and the operator's extra names.
func serverNames(hostname, listen string, extra []string) (names []string, ips []net.IP) {
	all := []string{hostname, "localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			all = append(all, host)
		}
	}
	all = append(all, extra...)
	seen := map[string]bool{}
	for _, n := range all {
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, ips
}
