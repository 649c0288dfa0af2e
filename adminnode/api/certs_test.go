package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/pki"
)

// caRotating puts the domain CA in or out of a rotation through the
// store, for a fixture that needs one state or the other.
func (e *env) caRotating(want bool) {
	e.t.Helper()
	cur := e.srv.Authority()
	if cur.Rotating() == want {
		return
	}
	roots := []*ca.CA{cur.Issuer()}
	if want {
		fresh, err := ca.New(cur.Domain(), e.clockNow())
		if err != nil {
			e.t.Fatal(err)
		}
		roots = []*ca.CA{fresh, cur.Issuer()}
	}
	var cas []store.DomainCA
	for _, r := range roots {
		sealed, err := e.srv.sealedRoot(r, e.clockNow())
		if err != nil {
			e.t.Fatal(err)
		}
		cas = append(cas, sealed)
	}
	must[[]store.DomainCA](e.t)(e.store.UpdateCAs(bg, func([]store.DomainCA) ([]store.DomainCA, error) { return cas, nil }))
	if _, err := e.srv.ReloadCA(bg); err != nil {
		e.t.Fatal(err)
	}
}

func TestExpiryState(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(100 * time.Hour), Subject: pkix.Name{CommonName: "x"}}
	tests := []struct {
		at    time.Duration
		warn  float64
		state string
		left  float64
	}{
		{0, 0.2, apitypes.CertOK, 1},
		{50 * time.Hour, 0.2, apitypes.CertOK, 0.5},
		{81 * time.Hour, 0.2, apitypes.CertWarning, 0.19},
		{81 * time.Hour, 0.1, apitypes.CertOK, 0.19},
		{100 * time.Hour, 0.2, apitypes.CertExpired, 0},
		{-time.Hour, 0.2, apitypes.CertOK, 1},
	}
	for _, tt := range tests {
		got := expiry(apitypes.CertNode, "h", cert, tt.warn, start.Add(tt.at))
		if got.State != tt.state || got.LifeLeft < tt.left-0.001 || got.LifeLeft > tt.left+0.001 {
			t.Errorf("at %v warn %v: %s %.3f, want %s %.3f", tt.at, tt.warn, got.State, got.LifeLeft, tt.state, tt.left)
		}
	}
}

// rotatingServer serves the agent API with a server certificate of the
// authority's Server root and trusts its roots for client certificates at
// each handshake, as the admin node does.
func (e *env) rotatingServer() *httptest.Server {
	srv := httptest.NewUnstartedServer(e.srv.Handler())
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		a := e.srv.Authority()
		cert, err := a.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, time.Now())
		if err != nil {
			return nil, err
		}
		cert.Certificate = append(cert.Certificate, a.Server().Cert().Raw)
		return a.ServerTLS(cert), nil
	}}
	srv.StartTLS()
	e.t.Cleanup(srv.Close)
	return srv
}

// nodeTrusting is a node manager's client trusting bundle.
func nodeTrusting(t *testing.T, url string, bundle []byte, cert *tls.Certificate) *node {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatal("empty bundle")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &node{t: t, url: url, http: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: time.Minute}}
}

// A rotation adds a root that issues node certificates while the previous
// one still signs the server certificate and stays trusted; heartbeats
// tell node managers; a node renews over its old certificate and gets the
// new root's; retiring is refused while a host presents the old root's,
// and afterwards the old root's certificates are refused.
func TestCARotation(t *testing.T) {
	e := newEnv(t)
	srv := e.rotatingServer()
	oldFP := e.ca.Fingerprint()
	oldCert := e.joinAs(srv.URL, "web-1")
	oldNode := nodeTrusting(t, srv.URL, e.ca.CertPEM(), &oldCert)
	var hb apitypes.AgentHeartbeatAnswer
	oldNode.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat").decode(t, &hb)
	if hb.CAIssuer != oldFP || hb.CATrust != pki.BundleID(e.ca.CertPEM()) {
		t.Fatalf("heartbeat answer before rotation %+v", hb)
	}
	goneCert := e.joinAs(srv.URL, "web-2")
	nodeTrusting(t, srv.URL, e.ca.CertPEM(), &goneCert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat of web-2")

	e.do(e.admin, "POST", "/ca/retire", nil).expect(t, http.StatusConflict, "retire without a rotation")
	var st apitypes.CAStatus
	e.do(e.admin, "POST", "/ca/rotate", nil).expect(t, http.StatusOK, "rotate").decode(t, &st)
	if !st.Rotating || len(st.Roots) != 2 || st.Fingerprint != oldFP || st.Issuer == oldFP ||
		st.Roots[0].Role != "issuer" || st.Roots[1].Role != "server" || !slices.Equal(st.Pending, []string{"web-1", "web-2"}) {
		t.Fatalf("after rotation %+v", st)
	}
	// A host deleted is pending no more.
	e.do(e.admin, "DELETE", "/hosts/web-2", nil).expect(t, http.StatusNoContent, "delete web-2")
	e.do(e.admin, "GET", "/ca", nil).expect(t, http.StatusOK, "ca").decode(t, &st)
	if !slices.Equal(st.Pending, []string{"web-1"}) {
		t.Fatalf("pending after deleting web-2: %v", st.Pending)
	}
	e.do(e.admin, "POST", "/ca/rotate", nil).expect(t, http.StatusConflict, "second rotation")

	// The node still on its old certificate and old trust is served.
	oldNode.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat").decode(t, &hb)
	if hb.CAIssuer != st.Issuer || hb.CATrust == pki.BundleID(e.ca.CertPEM()) {
		t.Fatalf("heartbeat answer during rotation %+v", hb)
	}
	var bundle apitypes.AgentCA
	oldNode.do("GET", "/ca", nil).expect(t, http.StatusOK, "agent ca").decode(t, &bundle)
	if roots := pki.ParseBundle([]byte(bundle.Bundle)); len(roots) != 2 || bundle.TrustID != hb.CATrust || bundle.Issuer != st.Issuer {
		t.Fatalf("agent CA %+v (%d roots)", bundle, len(roots))
	}
	got := e.do(e.admin, "POST", "/ca/retire", nil).expect(t, http.StatusConflict, "retire while web-1 pending")
	if !strings.Contains(string(got.body), "web-1") {
		t.Errorf("refusal does not name the host: %s", got.body)
	}

	csr, key := newCSR(t, "web-1")
	var renewed apitypes.AgentRenewResponse
	oldNode.do("POST", "/renew", apitypes.AgentRenewRequest{CSR: string(csr)}).expect(t, http.StatusOK, "renew").decode(t, &renewed)
	if pki.BundleID([]byte(renewed.CA)) != bundle.TrustID {
		t.Errorf("renewal's bundle is not the current one")
	}
	newCert, err := tls.X509KeyPair([]byte(renewed.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(newCert.Certificate[0])
	newRoot, _ := e.srv.Authority().Find(st.Issuer)
	if !newRoot.Issued(leaf) {
		t.Fatalf("renewed certificate issued by %q, not the new root", leaf.Issuer.CommonName)
	}
	newNode := nodeTrusting(t, srv.URL, []byte(renewed.CA), &newCert)
	newNode.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat with the new certificate")
	e.do(e.admin, "GET", "/ca", nil).expect(t, http.StatusOK, "ca").decode(t, &st)
	if len(st.Pending) != 0 {
		t.Fatalf("pending after renewal: %v", st.Pending)
	}

	e.do(e.admin, "POST", "/ca/retire", apitypes.CARetire{}).expect(t, http.StatusOK, "retire").decode(t, &st)
	if st.Rotating || len(st.Roots) != 1 || st.Fingerprint != st.Issuer || st.Fingerprint == oldFP {
		t.Fatalf("after retirement %+v", st)
	}
	newNode.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat after retirement")
	var dom apitypes.Domain
	e.do(e.admin, "GET", "/domain", nil).expect(t, http.StatusOK, "domain").decode(t, &dom)
	if dom.CAFingerprint != st.Fingerprint {
		t.Errorf("domain shows CA %s, want the new root %s", dom.CAFingerprint, st.Fingerprint)
	}
	// A connection made with the old root's certificate before the
	// retirement is refused from then on.
	oldNode.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusForbidden, "heartbeat on a connection of the retired root")
	// The old root's certificate no longer gets through, whatever the
	// node trusts.
	stale := nodeTrusting(t, srv.URL, []byte(renewed.CA), &oldCert)
	r, err := stale.http.Do(must[*http.Request](t)(http.NewRequest("PUT", srv.URL+apitypes.AgentPrefix+"/heartbeat", strings.NewReader("{}"))))
	if err == nil {
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Fatalf("heartbeat with the retired root's certificate answered %d %s", r.StatusCode, body)
		}
	}
	for action, detail := range map[string]string{"ca.rotate": "new CA root " + st.Fingerprint, "ca.retire": "CA root " + oldFP + " retired"} {
		entries := must[[]store.AuditEntry](t)(e.store.ListAudit(bg, store.AuditFilter{Action: action}))
		ok := slices.ContainsFunc(entries, func(a store.AuditEntry) bool {
			return a.Result == store.AuditOK && a.Detail == detail && a.Target == "domain/ca" && a.User == "admin"
		})
		if !ok {
			t.Errorf("audit of %s: %+v, want one ok with %q", action, entries, detail)
		}
	}
	// The roots are the store's: a server made again from it has them.
	again, err := New(Config{Store: e.store, Domain: must[store.Domain](t)(e.store.GetDomain(bg)), SigningKey: e.srv.key, SettingsKey: e.settingsKey, CA: e.ca, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	if again.Authority().Fingerprint() != st.Fingerprint || again.Authority().Rotating() {
		t.Errorf("a new server's CA %s, want %s alone", again.Authority().Fingerprint(), st.Fingerprint)
	}
}

// selfSigned makes a listener certificate valid from notBefore to
// notAfter.
func selfSigned(t *testing.T, name string, notBefore, notAfter time.Time) deploy.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return deploy.Certificate{Name: "site", SNIs: []string{name},
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))}
}

// GET /certificates lists the CA, node and listener certificates with
// their state; the overview flags a listener certificate near expiry, and
// the Prometheus metrics carry the gauges.
func TestCertificatesListed(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "web-1")
	newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat")
	e.group("edge", nil)
	now := e.clockNow()
	e.addToDraft("edge", func(c *deploy.Config) {
		c.Certificates = []deploy.Certificate{selfSigned(t, "shop.example.com", now.Add(-90*time.Hour), now.Add(10*time.Hour))}
	})
	e.deployed("edge")

	var list []apitypes.CertificateExpiry
	e.do(e.admin, "GET", "/certificates", nil).expect(t, http.StatusOK, "certificates").decode(t, &list)
	byKind := map[string]apitypes.CertificateExpiry{}
	for _, c := range list {
		byKind[c.Kind] = c
	}
	if c := byKind[apitypes.CertCA]; c.Name != e.ca.Fingerprint() || c.State != apitypes.CertOK || c.Role != "issuer,server" {
		t.Errorf("CA %+v", c)
	}
	if c := byKind[apitypes.CertNode]; c.Host != "web-1" || c.State != apitypes.CertOK {
		t.Errorf("node %+v", c)
	}
	if c := byKind[apitypes.CertListener]; c.Group != "edge" || c.Name != "site" || c.Subject != "shop.example.com" || c.State != apitypes.CertWarning {
		t.Errorf("listener %+v", c)
	}
	var o apitypes.Overview
	e.do(e.admin, "GET", "/overview", nil).expect(t, http.StatusOK, "overview").decode(t, &o)
	if !slices.ContainsFunc(o.Attention, func(a apitypes.Attention) bool {
		return a.Kind == apitypes.AttentionCertExpiry && a.Group == "edge" && strings.Contains(a.Reason, `"site"`)
	}) || len(o.Certificates) != len(list) {
		t.Errorf("overview attention %+v, %d certificates", o.Attention, len(o.Certificates))
	}
	prom := e.do(e.admin, "GET", "/metrics/prometheus", nil).expect(t, http.StatusOK, "metrics")
	for _, want := range []string{
		`gatehouse_certificate_warning{group="edge",kind="listener",name="site"} 1`,
		`gatehouse_certificate_warning{group="",kind="node",name="web-1"} 0`,
		`gatehouse_certificate_life_left_ratio{group="",kind="ca",name="` + e.ca.Fingerprint() + `"}`,
		`gatehouse_certificate_expiry_timestamp_seconds{group="edge",kind="listener",name="site"}`,
	} {
		if !strings.Contains(string(prom.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A rotation through one admin node of a PostgreSQL store reaches the
// other through the store: its roots, keys included, after ReloadCA
// (which admin run calls every minute), and so does the retirement.
func TestCARotationSharedStore(t *testing.T) {
	a, b := newPGPair(t)
	var changed []string
	b.srv.onCAChange = func(au *ca.Authority) { changed = append(changed, au.TrustID()) }
	var st apitypes.CAStatus
	a.do(a.admin, "POST", "/ca/rotate", nil).expect(t, http.StatusOK, "rotate on A").decode(t, &st)
	if ok, err := b.srv.ReloadCA(bg); !ok || err != nil {
		t.Fatalf("B's ReloadCA after the rotation = %v, %v", ok, err)
	}
	if got := b.srv.Authority(); got.Issuer().Fingerprint() != st.Issuer || got.Fingerprint() != st.Fingerprint || len(changed) != 1 {
		t.Fatalf("B's CA: issuer %s server %s, want %s %s", got.Issuer().Fingerprint(), got.Fingerprint(), st.Issuer, st.Fingerprint)
	}
	// B signs with the new root's key, which it read from the store.
	csr, _ := newCSR(t, "web-9")
	certPEM, _, err := b.srv.Authority().SignCSR(csr, "web-9", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, _ := x509.ParseCertificate(block.Bytes)
	if root, _ := a.srv.Authority().Find(st.Issuer); !root.Issued(leaf) {
		t.Fatal("B's node certificate is not from the new root")
	}
	if ok, _ := b.srv.ReloadCA(bg); ok {
		t.Error("ReloadCA without a change reported one")
	}
	a.do(a.admin, "POST", "/ca/retire", nil).expect(t, http.StatusOK, "retire on A")
	if ok, err := b.srv.ReloadCA(bg); !ok || err != nil || b.srv.Authority().Rotating() || b.srv.Authority().Fingerprint() != st.Issuer {
		t.Fatalf("B after the retirement: %v, %v, %s", ok, err, b.srv.Authority().Fingerprint())
	}
}

// Each admin node of a PostgreSQL store records its HTTPS certificate;
// each lists them all with their state — its own as it serves it, the
// other's as recorded — in GET /certificates, the overview's attention
// and the gauges; a record not refreshed for three AdminCertRefresh is of
// a node gone and is left out.
func TestEveryAdminNodeCertificateListed(t *testing.T) {
	a, b := newPGPair(t)
	now := a.clockNow()
	parse := func(c deploy.Certificate) *x509.Certificate {
		block, _ := pem.Decode([]byte(c.Cert))
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	// A's has a tenth of its life left: warning; B's most of it.
	certA := parse(selfSigned(t, "a.example", now.Add(-90*time.Hour), now.Add(10*time.Hour)))
	certB := parse(selfSigned(t, "b.example", now.Add(-time.Hour), now.Add(99*time.Hour)))
	a.srv.name, a.srv.serverCert = "a/127.0.0.1:8090", func() *x509.Certificate { return certA }
	b.srv.name, b.srv.serverCert = "b/127.0.0.1:8090", func() *x509.Certificate { return certB }
	for _, e := range []*env{a, b} {
		if got, err := e.srv.RecordServerCert(bg); err != nil || got == nil {
			t.Fatalf("record %s: %v, %v", e.srv.name, got, err)
		}
	}
	admins := func(e *env) map[string]string {
		var list []apitypes.CertificateExpiry
		e.do(e.admin, "GET", "/certificates", nil).expect(t, http.StatusOK, "certificates").decode(t, &list)
		out := map[string]string{}
		for _, c := range list {
			if c.Kind == apitypes.CertAdminServer {
				out[c.Name] = c.Subject + " " + c.State
			}
		}
		return out
	}
	want := map[string]string{"a/127.0.0.1:8090": "a.example warning", "b/127.0.0.1:8090": "b.example ok"}
	for _, e := range []*env{a, b} {
		if got := admins(e); !maps.Equal(got, want) {
			t.Errorf("admin certificates through %s: %v, want %v", e.srv.name, got, want)
		}
	}
	var o apitypes.Overview
	b.do(b.admin, "GET", "/overview", nil).expect(t, http.StatusOK, "overview").decode(t, &o)
	if !slices.ContainsFunc(o.Attention, func(at apitypes.Attention) bool {
		return at.Kind == apitypes.AttentionCertExpiry && strings.Contains(at.Reason, "HTTPS certificate of admin node a/127.0.0.1:8090")
	}) {
		t.Errorf("B's overview does not flag A's certificate: %+v", o.Attention)
	}
	prom := b.do(b.admin, "GET", "/metrics/prometheus", nil).expect(t, http.StatusOK, "metrics")
	for _, w := range []string{`gatehouse_certificate_warning{group="",kind="admin-server",name="a/127.0.0.1:8090"} 1`,
		`gatehouse_certificate_warning{group="",kind="admin-server",name="b/127.0.0.1:8090"} 0`} {
		if !strings.Contains(string(prom.body), w) {
			t.Errorf("B's metrics lack %s", w)
		}
	}
	// A stops recording (gone): once its record is three refreshes old, B
	// lists its own only.
	b.advance(3*AdminCertRefresh + time.Minute)
	if got := admins(b); !maps.Equal(got, map[string]string{"b/127.0.0.1:8090": "b.example ok"}) {
		t.Errorf("admin certificates through B once A's record is old: %v", got)
	}
}
