package adminnode

import (
	"crypto/tls"
	"fmt"
	"net"
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
// without a restart and without dropping connections.
type serverCert struct {
	ca      *ca.CA
	rootDER []byte
	names   []string
	ips     []net.IP
	cur     atomic.Pointer[tls.Certificate]
}

func newServerCert(root *ca.CA, rootDER []byte, names []string, ips []net.IP, now time.Time) (*serverCert, error) {
	c := &serverCert{ca: root, rootDER: rootDER, names: names, ips: ips}
	if err := c.issue(now); err != nil {
		return nil, err
	}
	return c, nil
}

// issue replaces the certificate by a new one. The chain carries the root
// after the leaf: a client that has only the CA's fingerprint (a node
// manager joining) can then check the root it is shown against it.
func (c *serverCert) issue(now time.Time) error {
	cert, err := c.ca.IssueServer(c.names, c.ips, ServerCertTTL, now)
	if err != nil {
		return fmt.Errorf("issue server certificate: %w", err)
	}
	cert.Certificate = append(cert.Certificate, c.rootDER)
	c.cur.Store(&cert)
	return nil
}

// renew re-issues the certificate when it is due, reporting whether it
// did.
func (c *serverCert) renew(now time.Time) (bool, error) {
	if !pki.NeedsRenewal(c.cur.Load().Leaf, now) {
		return false, nil
	}
	return true, c.issue(now)
}

func (c *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
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
