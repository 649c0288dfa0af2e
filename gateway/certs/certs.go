package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
)

// Set maps server names to certificates. It is immutable once built.
type Set struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // keyed by the suffix after "*."
	fallback *tls.Certificate
}

// Build parses every certificate. The first certificate of the list is
// served to clients that send no server name, since an IP-only client must
// still get an answer rather than a failed handshake.
func Build(list []deploy.Certificate) (*Set, error) {
	s := &Set{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for i, c := range list {
		pair, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			// The error text of X509KeyPair never quotes key material.
			return nil, fmt.Errorf("certificates[%d] %q: %w", i, c.Name, err)
		}
		cert := &pair
		if s.fallback == nil {
			s.fallback = cert
		}
		for _, sni := range c.SNIs {
			sni = strings.ToLower(sni)
			if rest, ok := strings.CutPrefix(sni, "*."); ok {
				s.wildcard[rest] = cert
			} else {
				s.exact[sni] = cert
			}
		}
	}
	return s, nil
}

// Len is the number of server names served.
func (s *Set) Len() int { return len(s.exact) + len(s.wildcard) }

var errNoCertificate = errors.New("no certificate configured for this server name")

// Get picks the certificate for a TLS handshake: an exact name first, then
// the longest matching wildcard.
func (s *Set) Get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		if s.fallback == nil {
			return nil, errNoCertificate
		}
		return s.fallback, nil
	}
	if c, ok := s.exact[name]; ok {
		return c, nil
	}
	for i := strings.IndexByte(name, '.'); i >= 0; {
		if c, ok := s.wildcard[name[i+1:]]; ok {
			return c, nil
		}
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return nil, errNoCertificate
}
