package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// DefaultCertWarnFraction is the fraction of its life left under which a
// certificate is in the warning state. Node and admin server certificates
// renew with a third left, so one under a fifth has failed to for a while.
const DefaultCertWarnFraction = 0.2

// caPlace is the seal place of the CA roots' keys in the store.
const caPlace = "domain-ca"

func caRoutes() []*route {
	return []*route{
		{method: "GET", path: "/certificates", action: "certificate.list",
			summary: "The lifetime of every certificate the domain depends on that the caller may see: CA roots, the admin node's, node certificates, the TLS certificates of each group's current deployment",
			out:     []apitypes.CertificateExpiry{}, handle: (*Server).listCertificates},
		{method: "GET", path: "/ca", action: "ca.get", summary: "The domain CA's roots, which one issues, and the hosts not yet renewed from it",
			perm: rbac.HostRead, scope: scopeDomain, out: apitypes.CAStatus{}, handle: (*Server).getCA},
		{method: "POST", path: "/ca/rotate", action: "ca.rotate",
			summary: "Add a new CA root, trusted beside the current one, that issues node certificates from now on (domain admins only; audited)",
			perm:    rbac.UserAdmin, scope: scopeDomain, out: apitypes.CAStatus{}, handle: (*Server).rotateCA},
		{method: "POST", path: "/ca/retire", action: "ca.retire",
			summary: "Stop trusting the previous CA root once every host renewed from the new one (domain admins only; audited)",
			perm:    rbac.UserAdmin, scope: scopeDomain, in: apitypes.CARetire{}, out: apitypes.CAStatus{}, handle: (*Server).retireCA},
	}
}

func agentCARoutes() []*route {
	return []*route{
		{method: "GET", path: "/ca", action: "node.ca", summary: "The domain's trust bundle and the root issuing node certificates",
			agent: true, noAudit: true, out: apitypes.AgentCA{}, handle: (*Server).agentCA},
	}
}

// Authority returns the domain CA's current roots, nil when the server
// has no CA.
func (s *Server) Authority() *ca.Authority { return s.authority.Load() }

// loadAuthority makes the authority of the domain record: the roots in
// the store once a rotation happened, the data dir's root before.
func (s *Server) loadAuthority(d store.Domain, initial *ca.CA) (*ca.Authority, error) {
	if len(d.CAs) == 0 {
		if initial == nil {
			return nil, nil
		}
		return ca.NewAuthority(initial)
	}
	roots := make([]*ca.CA, len(d.CAs))
	for i, r := range d.CAs {
		keyPEM, err := s.secretKey.Open(caPlace, s.domain.Name, r.KeySealed)
		if err != nil {
			return nil, fmt.Errorf("open the key of CA root %d (settings.key replaced?): %w", i+1, err)
		}
		if roots[i], err = ca.Load([]byte(r.CertPEM), keyPEM); err != nil {
			return nil, fmt.Errorf("CA root %d: %w", i+1, err)
		}
	}
	return ca.NewAuthority(roots...)
}

// ReloadCA reads the CA roots from the store again, for a rotation made
// through another admin node of the same store, and reports whether they
// changed.
func (s *Server) ReloadCA(ctx context.Context) (bool, error) {
	if s.authority.Load() == nil {
		return false, nil
	}
	d, err := s.store.GetDomain(ctx)
	if err != nil {
		return false, fmt.Errorf("read the domain CA: %w", err)
	}
	if len(d.CAs) == 0 {
		return false, nil
	}
	return s.useCAs(d.CAs)
}

// useCAs switches to the roots stored, reporting whether they differ
// from the current ones.
func (s *Server) useCAs(cas []store.DomainCA) (bool, error) {
	a, err := s.loadAuthority(store.Domain{CAs: cas}, nil)
	if err != nil {
		return false, err
	}
	if cur := s.authority.Load(); cur != nil && cur.TrustID() == a.TrustID() {
		return false, nil
	}
	s.authority.Store(a)
	s.verified.reset()
	s.log.Info("domain CA roots changed", "trust", a.TrustID(), "issuer", a.Issuer().Fingerprint(), "server", a.Fingerprint())
	if s.onCAChange != nil {
		s.onCAChange(a)
	}
	return true, nil
}

// caFingerprint is the root a client pins.
func (s *Server) caFingerprint() string {
	if a := s.authority.Load(); a != nil {
		return a.Fingerprint()
	}
	return s.caFP
}

func (s *Server) sealedRoot(r *ca.CA, at time.Time) (store.DomainCA, error) {
	keyPEM, err := r.KeyPEM()
	if err != nil {
		return store.DomainCA{}, err
	}
	return store.DomainCA{CertPEM: string(r.CertPEM()), KeySealed: s.secretKey.Seal(caPlace, s.domain.Name, keyPEM), AddedAt: at}, nil
}

// rotateCA adds a new root that signs node certificates from now on. The
// previous root stays trusted and keeps signing the admin node's server
// certificate until it is retired: node managers learn the new root from
// their next heartbeat and renew from it.
func (s *Server) rotateCA(q *request) (any, error) {
	q.auditTarget = "domain/ca"
	fresh, err := s.RotateCA(q.ctx)
	if err != nil {
		return nil, err
	}
	q.auditDetail = "new CA root " + fresh
	return s.caStatus(q.ctx, s.now())
}

// RotateCA adds a new root to the domain CA (rotateCA) and returns its
// fingerprint.
func (s *Server) RotateCA(ctx context.Context) (string, error) {
	cur := s.authority.Load()
	if cur == nil {
		return "", newError(http.StatusServiceUnavailable, apitypes.CodeInternal, "this admin node has no domain CA (is it serving plain HTTP?)")
	}
	now := s.now()
	fresh, err := ca.New(s.domain.Name, now)
	if err != nil {
		return "", err
	}
	newRoot, err := s.sealedRoot(fresh, now)
	if err != nil {
		return "", err
	}
	stored, err := s.store.UpdateCAs(ctx, func(cas []store.DomainCA) ([]store.DomainCA, error) {
		if len(cas) > 1 {
			return nil, errRotating
		}
		if len(cas) == 0 {
			// The first rotation moves the root of admin init into the
			// store, where every admin node finds both.
			old, err := s.sealedRoot(cur.Issuer(), s.domain.CreatedAt)
			if err != nil {
				return nil, err
			}
			cas = []store.DomainCA{old}
		}
		return append([]store.DomainCA{newRoot}, cas...), nil
	})
	if errors.Is(err, errRotating) {
		return "", conflict("a CA rotation is already under way: retire the previous root first (gatehouse ca retire)")
	}
	if err != nil {
		return "", fmt.Errorf("store the new CA root: %w", err)
	}
	if _, err := s.useCAs(stored); err != nil {
		return "", err
	}
	s.changes.bump()
	return fresh.Fingerprint(), nil
}

var errRotating = errors.New("rotation under way")

// retireCA drops the previous root. Hosts whose node manager last
// presented a certificate of it would lose their connection: the
// retirement is refused while there are any, unless forced.
func (s *Server) retireCA(q *request) (any, error) {
	q.auditTarget = "domain/ca"
	var in apitypes.CARetire
	body, err := readBody(q)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSONBytes(body, &in); err != nil {
			return nil, err
		}
	}
	cur := s.authority.Load()
	if cur == nil || !cur.Rotating() {
		return nil, conflict("no CA rotation under way: there is no previous root to retire")
	}
	st, err := s.caStatus(q.ctx, s.now())
	if err != nil {
		return nil, err
	}
	if len(st.Pending) > 0 && !in.Force {
		return nil, conflict("hosts %s still present a certificate of the previous root: wait for their renewal (gatehouse ca show), or retire with --force and join them again",
			strings.Join(st.Pending, ", "))
	}
	keep := cur.Issuer().Fingerprint()
	stored, err := s.store.UpdateCAs(q.ctx, func(cas []store.DomainCA) ([]store.DomainCA, error) {
		for _, r := range cas {
			if fp, err := ca.Fingerprint([]byte(r.CertPEM)); err == nil && fp == keep {
				return []store.DomainCA{r}, nil
			}
		}
		return nil, fmt.Errorf("the issuing root %s is not in the store any more: %w", keep, store.ErrConflict)
	})
	if err != nil {
		return nil, fmt.Errorf("retire the previous CA root: %w", err)
	}
	if _, err := s.useCAs(stored); err != nil {
		return nil, err
	}
	s.changes.bump()
	retired := cur.Server().Fingerprint()
	q.auditDetail = "CA root " + retired + " retired"
	if in.Force && len(st.Pending) > 0 {
		q.auditDetail += fmt.Sprintf(" (forced; hosts %s not renewed)", strings.Join(st.Pending, ", "))
	}
	return s.caStatus(q.ctx, s.now())
}

func (s *Server) getCA(q *request) (any, error) {
	if s.authority.Load() == nil {
		return nil, newError(http.StatusServiceUnavailable, apitypes.CodeInternal, "this admin node has no domain CA (is it serving plain HTTP?)")
	}
	return s.caStatus(q.ctx, s.now())
}

// caStatus describes the CA's roots; the hosts pending are those of the
// domain whose node manager last presented to this admin node a
// certificate, still valid, of a root other than the issuer.
func (s *Server) caStatus(ctx context.Context, now time.Time) (apitypes.CAStatus, error) {
	a := s.authority.Load()
	out := apitypes.CAStatus{Roots: s.rootExpiries(a, now), Rotating: a.Rotating(), Fingerprint: a.Fingerprint(),
		Issuer: a.Issuer().Fingerprint(), Pending: []string{}}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return apitypes.CAStatus{}, err
	}
	issuer := a.Issuer().Cert().SubjectKeyId
	contacts := s.hostContacts()
	for _, h := range hosts {
		if c := contacts[h.Name].cert; c != nil && string(c.AuthorityKeyId) != string(issuer) && now.Before(c.NotAfter) {
			out.Pending = append(out.Pending, h.Name)
		}
	}
	return out, nil
}

func (s *Server) agentCA(q *request) (any, error) {
	a := s.authority.Load()
	return apitypes.AgentCA{Bundle: string(a.BundlePEM()), TrustID: a.TrustID(), Issuer: a.Issuer().Fingerprint()}, nil
}

// expiry describes cert's lifetime at now, in the warning state once less
// than warn of it is left.
func expiry(kind, name string, cert *x509.Certificate, warn float64, now time.Time) apitypes.CertificateExpiry {
	life := cert.NotAfter.Sub(cert.NotBefore)
	left := 0.0
	if life > 0 && now.Before(cert.NotAfter) {
		left = float64(cert.NotAfter.Sub(now)) / float64(life)
	}
	state := apitypes.CertOK
	switch {
	case !now.Before(cert.NotAfter):
		state = apitypes.CertExpired
	case left < warn:
		state = apitypes.CertWarning
	}
	return apitypes.CertificateExpiry{Kind: kind, Name: name, Subject: cert.Subject.CommonName,
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(), LifeLeft: min(left, 1), State: state}
}

func (s *Server) rootExpiries(a *ca.Authority, now time.Time) []apitypes.CertificateExpiry {
	var out []apitypes.CertificateExpiry
	for _, r := range a.Roots() {
		e := expiry(apitypes.CertCA, r.Fingerprint(), r.Cert(), s.certWarn, now)
		var roles []string
		if r == a.Issuer() {
			roles = append(roles, "issuer")
		}
		if r == a.Server() {
			roles = append(roles, "server")
		}
		e.Role = strings.Join(roles, ",")
		out = append(out, e)
	}
	return out
}

func (s *Server) listCertificates(q *request) (any, error) {
	return s.certificates(q, s.now())
}

// certificates lists what the caller may see: the CA roots, the admin
// nodes' certificates and the node certificates with host:read, the
// listener certificates of the groups it may read the deployments of.
func (s *Server) certificates(q *request, now time.Time) ([]apitypes.CertificateExpiry, error) {
	out := []apitypes.CertificateExpiry{}
	if q.allowed(rbac.HostRead, nil) {
		if a := s.authority.Load(); a != nil {
			out = append(out, s.rootExpiries(a, now)...)
		}
		admins, err := s.adminCertificates(q.ctx, now)
		if err != nil {
			return nil, err
		}
		out = append(out, admins...)
		contacts := s.hostContacts()
		hosts := make([]string, 0, len(contacts))
		for h, c := range contacts {
			if c.cert != nil {
				hosts = append(hosts, h)
			}
		}
		slices.Sort(hosts)
		for _, h := range hosts {
			e := expiry(apitypes.CertNode, h, contacts[h].cert, s.certWarn, now)
			e.Host = h
			out = append(out, e)
		}
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range q.who.authz.FilterGroups(rbac.DeploymentRead, groups) {
		certs, err := s.listenerCerts(q.ctx, g.Name)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			e := expiry(apitypes.CertListener, c.name, c.cert, s.certWarn, now)
			e.Group = g.Name
			out = append(out, e)
		}
	}
	return out, nil
}

type namedCert struct {
	name string
	cert *x509.Certificate
}

// listenerCache keeps the parsed certificates of each group's current
// deployment: the overview asks for them on every refresh, and a
// deployment never changes.
type listenerCache struct {
	mu sync.Mutex
	m  map[string]listenerEntry
}

type listenerEntry struct {
	number uint64
	certs  []namedCert
}

// listenerCerts returns the leaf of every certificate of group's current
// deployment.
func (s *Server) listenerCerts(ctx context.Context, group string) ([]namedCert, error) {
	cur, err := s.current(ctx, group)
	if err != nil || cur.Number == 0 {
		return nil, err
	}
	s.listeners.mu.Lock()
	e, ok := s.listeners.m[group]
	s.listeners.mu.Unlock()
	if ok && e.number == cur.Number {
		return e.certs, nil
	}
	d, err := s.deps.GetDeployment(ctx, group, cur.Number)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cfg deploy.Config
	if err := json.Unmarshal(d.Config, &cfg); err != nil {
		return nil, fmt.Errorf("read deployment %d of group %s: %w", cur.Number, group, err)
	}
	var certs []namedCert
	for _, c := range cfg.Certificates {
		block, _ := pem.Decode([]byte(c.Cert))
		if block == nil {
			continue
		}
		if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, namedCert{name: c.Name, cert: leaf})
		}
	}
	s.listeners.mu.Lock()
	if s.listeners.m == nil {
		s.listeners.m = map[string]listenerEntry{}
	}
	s.listeners.m[group] = listenerEntry{number: cur.Number, certs: certs}
	s.listeners.mu.Unlock()
	return certs, nil
}

// AdminCertRefresh is how often an admin node records its unchanged HTTPS
// certificate again. A record not refreshed for three of these is of an
// admin node that is gone (or cut off from the store): its certificate is
// left out of the listing rather than reported expiring forever.
const AdminCertRefresh = time.Hour

// ServerCertificate is the HTTPS certificate this admin node serves now,
// nil when it serves none.
func (s *Server) ServerCertificate() *x509.Certificate {
	if s.serverCert == nil {
		return nil
	}
	return s.serverCert()
}

// RecordServerCert records this admin node's current HTTPS certificate in
// the store, under its name, for the other admin nodes of the store to
// list. It returns the certificate recorded, nil when it serves none.
func (s *Server) RecordServerCert(ctx context.Context) (*x509.Certificate, error) {
	cert := s.ServerCertificate()
	if cert == nil {
		return nil, nil
	}
	if err := s.store.PutAdminCert(ctx, store.AdminCert{Node: s.name, DER: cert.Raw, RecordedAt: s.now()}); err != nil {
		return nil, fmt.Errorf("record the HTTPS certificate of admin node %s: %w", s.name, err)
	}
	return cert, nil
}

// adminCertificates are this admin node's HTTPS certificate, as it serves
// it, then those the other admin nodes of the store recorded, by name.
func (s *Server) adminCertificates(ctx context.Context, now time.Time) ([]apitypes.CertificateExpiry, error) {
	var out []apitypes.CertificateExpiry
	if cert := s.ServerCertificate(); cert != nil {
		out = append(out, expiry(apitypes.CertAdminServer, s.name, cert, s.certWarn, now))
	}
	recs, err := s.store.ListAdminCerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the admin nodes' certificates: %w", err)
	}
	for _, r := range recs {
		if r.Node == s.name || now.Sub(r.RecordedAt) > 3*AdminCertRefresh {
			continue
		}
		cert, err := x509.ParseCertificate(r.DER)
		if err != nil {
			s.log.Warn("unreadable certificate recorded by an admin node", "node", r.Node, "error", err)
			continue
		}
		out = append(out, expiry(apitypes.CertAdminServer, r.Node, cert, s.certWarn, now))
	}
	return out, nil
}
