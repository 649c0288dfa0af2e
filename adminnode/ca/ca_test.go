package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pki"
)

const (
	domain  = "prod"
	host    = "web-1"
	nodeTTL = 90 * 24 * time.Hour
)

func testCA(t *testing.T, domain string) *CA {
	t.Helper()
	c, err := New(domain, time.Now())
	if err != nil {
		t.Fatalf("New(%q): %v", domain, err)
	}
	return c
}

// nodeCert runs the join path: the node makes a CSR, c signs it.
func nodeCert(t *testing.T, c *CA, host string, now time.Time) tls.Certificate {
	t.Helper()
	csrPEM, keyPEM, err := pki.NewCSR(host)
	if err != nil {
		t.Fatalf("NewCSR: %v", err)
	}
	certPEM, _, err := c.SignCSR(csrPEM, host, nodeTTL, now)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	return cert
}

func leaf(t *testing.T, cert tls.Certificate) *x509.Certificate {
	t.Helper()
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestNewRootProfile(t *testing.T) {
	now := time.Now()
	c, err := New(domain, now)
	if err != nil {
		t.Fatal(err)
	}
	root, err := parseCertPEM(c.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := root.Subject.CommonName, "Gatehouse prod CA"; got != want {
		t.Errorf("CommonName = %q, want %q", got, want)
	}
	if !root.IsCA || !root.BasicConstraintsValid || root.MaxPathLen != 0 || !root.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v",
			root.IsCA, root.BasicConstraintsValid, root.MaxPathLen, root.MaxPathLenZero)
	}
	if root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", root.KeyUsage)
	}
	if root.SerialNumber.BitLen() != 128 {
		t.Errorf("serial has %d bits, want 128", root.SerialNumber.BitLen())
	}
	if len(root.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId has %d bytes, want 20", len(root.SubjectKeyId))
	}
	if got := root.NotAfter.Sub(now); got < RootValidity-time.Second || got > RootValidity {
		t.Errorf("root valid for %v after now, want %v", got, RootValidity)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is %T, want ECDSA P-256", root.PublicKey)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if c.Domain() != domain {
		t.Errorf("Domain() = %q", c.Domain())
	}
}

func TestNewRejectsBadDomain(t *testing.T) {
	for _, d := range []string{"", "a b", "a/b", "-x", strings.Repeat("a", 64)} {
		if _, err := New(d, time.Now()); err == nil {
			t.Errorf("New(%q) succeeded", d)
		}
	}
}

type handshake struct {
	state tls.ConnectionState
	err   error
}

// serve accepts one connection on a 127.0.0.1 listener and reports the
// server's side of its handshake.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan handshake) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan handshake, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- handshake{err: err}
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// Proves to the client that the server accepted it; under
			// TLS 1.3 the client's handshake ends before the server has
			// judged the client certificate.
			_, err = tc.Write([]byte("ok"))
		}
		done <- handshake{state: tc.ConnectionState(), err: err}
	}()
	return ln.Addr().String(), done
}

// dial connects and reads the server's "ok", so that a rejection of the
// client certificate surfaces here whatever the TLS version.
func dial(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// ReadFull, as Read may return the data together with io.EOF when the
	// server's close_notify arrives with it.
	_, err = io.ReadFull(conn, make([]byte, 2))
	return err
}

func TestMTLS(t *testing.T) {
	c := testCA(t, domain)
	// Same domain name and host: only the CA tells them apart.
	impostor := testCA(t, domain)
	now := time.Now()
	server, err := c.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	impostorServer, err := impostor.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	good := nodeCert(t, c, host, now)
	foreign := nodeCert(t, impostor, host, now)

	tests := []struct {
		name       string
		server     tls.Certificate
		client     *tls.Certificate
		wantServer string // substring of the server's handshake error; "" for success
		wantClient string // substring of the client's error; "" for success
		wantHost   string // VerifyNode's answer on the peer certificate; "" for no peer
	}{
		{name: "node certificate", server: server, client: &good, wantHost: host},
		{name: "no client certificate", server: server},
		{name: "certificate from another domain's CA", server: server, client: &foreign,
			wantServer: "unknown authority", wantClient: "unknown certificate authority"},
		{name: "server from another domain's CA", server: impostorServer, client: &good,
			wantServer: "bad certificate", wantClient: "unknown authority"},
	}
	// Under TLS 1.2 the client learns of a refused certificate during its
	// handshake, under TLS 1.3 only afterwards; both must behave alike.
	versions := []struct {
		name    string
		version uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}}
	for _, v := range versions {
		for _, tt := range tests {
			t.Run(v.name+"/"+tt.name, func(t *testing.T) {
				addr, done := serve(t, c.ServerTLS(tt.server))
				cfg, err := ClientTLS(c.CertPEM(), tt.client)
				if err != nil {
					t.Fatal(err)
				}
				cfg.MaxVersion = v.version
				clientErr := dial(addr, cfg)
				hs := <-done
				if tt.wantClient == "" && clientErr != nil ||
					tt.wantClient != "" && (clientErr == nil || !strings.Contains(clientErr.Error(), tt.wantClient)) {
					t.Errorf("client error = %v, want %q (server: %v)", clientErr, tt.wantClient, hs.err)
				}
				if tt.wantServer != "" {
					if hs.err == nil || !strings.Contains(hs.err.Error(), tt.wantServer) {
						t.Fatalf("server handshake error = %v, want %q", hs.err, tt.wantServer)
					}
					return
				}
				if hs.err != nil {
					t.Fatalf("server handshake: %v", hs.err)
				}
				if tt.wantHost == "" {
					if n := len(hs.state.PeerCertificates); n != 0 {
						t.Fatalf("server sees %d peer certificates, want none", n)
					}
					return
				}
				if len(hs.state.PeerCertificates) == 0 {
					t.Fatal("server sees no peer certificate")
				}
				got, err := c.VerifyNode(hs.state.PeerCertificates[0], time.Now(), nil)
				if err != nil || got != tt.wantHost {
					t.Fatalf("VerifyNode = %q, %v; want %q", got, err, tt.wantHost)
				}
			})
		}
	}
	if _, err := c.VerifyNode(leaf(t, foreign), now, nil); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyNode(foreign) = %v, want ErrUntrusted", err)
	}
}

func TestServerCertificate(t *testing.T) {
	c := testCA(t, domain)
	now := time.Now()
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	cert, err := c.IssueServer([]string{"admin.example", "localhost"}, ips, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 1 {
		t.Errorf("chain has %d certificates, want the leaf only", len(cert.Certificate))
	}
	x := leaf(t, cert)
	if len(x.ExtKeyUsage) != 1 || x.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v", x.ExtKeyUsage)
	}
	if x.Subject.CommonName != "admin.example" || len(x.DNSNames) != 2 || len(x.IPAddresses) != 2 {
		t.Errorf("names: CN %q DNS %v IP %v", x.Subject.CommonName, x.DNSNames, x.IPAddresses)
	}
	if _, err := x.Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "admin.example", CurrentTime: now}); err != nil {
		t.Errorf("server certificate does not verify: %v", err)
	}
	if _, err := c.IssueServer(nil, nil, time.Hour, now); err == nil {
		t.Error("IssueServer without names succeeded")
	}
}

func TestSignCSRProfile(t *testing.T) {
	c := testCA(t, domain)
	now := time.Now()
	csrPEM, _, err := pki.NewCSR(host)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, serial, err := c.SignCSR(csrPEM, host, nodeTTL, now)
	if err != nil {
		t.Fatal(err)
	}
	x, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if x.SerialNumber.Cmp(serial) != 0 || serial.BitLen() != 128 {
		t.Errorf("serial %x, returned %x", x.SerialNumber, serial)
	}
	if x.Subject.CommonName != host || len(x.Subject.OrganizationalUnit) != 1 || x.Subject.OrganizationalUnit[0] != "node" {
		t.Errorf("subject = %v", x.Subject)
	}
	if len(x.URIs) != 1 || x.URIs[0].String() != "gatehouse://prod/host/web-1" {
		t.Errorf("URIs = %v", x.URIs)
	}
	want := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	if len(x.ExtKeyUsage) != 2 || x.ExtKeyUsage[0] != want[0] || x.ExtKeyUsage[1] != want[1] {
		t.Errorf("ExtKeyUsage = %v, want %v", x.ExtKeyUsage, want)
	}
	if x.IsCA {
		t.Error("node certificate is a CA")
	}
	if !x.NotAfter.Equal(now.Add(nodeTTL).Truncate(time.Second)) {
		t.Errorf("NotAfter = %v, want %v", x.NotAfter, now.Add(nodeTTL))
	}

	// A lifetime beyond the root's ends with the root.
	certPEM, _, err = c.SignCSR(csrPEM, host, 2*RootValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ = parseCertPEM(certPEM); !x.NotAfter.Equal(c.cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the root's %v", x.NotAfter, c.cert.NotAfter)
	}
}

func TestSignCSRRefuses(t *testing.T) {
	c := testCA(t, domain)
	good, _, err := pki.NewCSR(host)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-1] ^= 0xff
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: host}}, p224)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}

	tests := []struct {
		name string
		csr  []byte
		host string
		ttl  time.Duration
		want string
	}{
		{"CommonName of another host", good, "web-2", nodeTTL, `CommonName "web-1" does not match host "web-2"`},
		{"not PEM", []byte("hello"), host, nodeTTL, "no CERTIFICATE REQUEST"},
		{"bad signature", encode(tampered), host, nodeTTL, "signature"},
		{"weak key", encode(weak), host, nodeTTL, "P-224"},
		{"invalid host", good, "web/1", nodeTTL, "invalid host name"},
		{"no lifetime", good, host, 0, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, _, err := c.SignCSR(tt.csr, tt.host, tt.ttl, time.Now())
			if err == nil {
				t.Fatalf("SignCSR succeeded: %s", cert)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.ttl > 0 && !errors.Is(err, ErrInvalidCSR) {
				t.Errorf("error %v does not wrap ErrInvalidCSR", err)
			}
		})
	}
}

func TestVerifyNode(t *testing.T) {
	c := testCA(t, domain)
	now := time.Now()
	good := leaf(t, nodeCert(t, c, host, now))
	sameName := leaf(t, nodeCert(t, testCA(t, domain), host, now))
	otherDomain := leaf(t, nodeCert(t, testCA(t, "staging"), host, now))
	server, err := c.IssueServer([]string{"localhost"}, nil, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// Certificates the CA would never issue, to show that VerifyNode does
	// not rest on the chain alone.
	forged := func(ou []string, uri string) *x509.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		x, err := c.issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: host, OrganizationalUnit: ou},
			URIs:        []*url.URL{u},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &key.PublicKey, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	revoked := func(s *big.Int) bool { return s.Cmp(good.SerialNumber) == 0 }

	tests := []struct {
		name    string
		cert    *x509.Certificate
		now     time.Time
		revoked func(*big.Int) bool
		want    error
		says    string
	}{
		{name: "valid", cert: good, now: now},
		{name: "valid, others revoked", cert: good, now: now, revoked: func(*big.Int) bool { return false }},
		{name: "revoked", cert: good, now: now, revoked: revoked, want: ErrRevoked},
		{name: "expired", cert: good, now: good.NotAfter.Add(time.Second), want: ErrExpired},
		{name: "not yet valid", cert: good, now: good.NotBefore.Add(-time.Second), want: ErrExpired},
		{name: "another CA of the same domain name", cert: sameName, now: now, want: ErrUntrusted,
			says: `not issued by the CA of domain "prod"`},
		{name: "another domain", cert: otherDomain, now: now, want: ErrUntrusted,
			says: `issuer "Gatehouse staging CA"`},
		{name: "server certificate", cert: server.Leaf, now: now, want: ErrUntrusted},
		{name: "no certificate", now: now, want: ErrUntrusted},
		{name: "not OU node", cert: forged([]string{"admin"}, "gatehouse://prod/host/web-1"), now: now,
			want: ErrUntrusted, says: "not a node certificate"},
		{name: "URI of another domain", cert: forged([]string{"node"}, "gatehouse://staging/host/web-1"), now: now,
			want: ErrUntrusted, says: `not a node of domain "prod"`},
		{name: "URI of another host", cert: forged([]string{"node"}, "gatehouse://prod/host/web-2"), now: now,
			want: ErrUntrusted, says: "disagrees with its CommonName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.VerifyNode(tt.cert, tt.now, tt.revoked)
			if tt.want == nil {
				if err != nil || got != host {
					t.Fatalf("VerifyNode = %q, %v; want %q", got, err, host)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyNode = %q, %v; want %v", got, err, tt.want)
			}
			if got != "" {
				t.Errorf("VerifyNode refused but returned host %q", got)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestLoadRoundTrip(t *testing.T) {
	orig := testCA(t, domain)
	certPEM, keyPEM, err := orig.PEM()
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key is not PKCS#8 PEM: %s", keyPEM)
	}
	loaded, err := Load(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Domain() != domain || loaded.Fingerprint() != orig.Fingerprint() {
		t.Errorf("loaded domain %q fingerprint %s, want %q %s",
			loaded.Domain(), loaded.Fingerprint(), domain, orig.Fingerprint())
	}
	now := time.Now()
	got, err := orig.VerifyNode(leaf(t, nodeCert(t, loaded, host, now)), now, nil)
	if err != nil || got != host {
		t.Errorf("certificate from the loaded CA: VerifyNode = %q, %v", got, err)
	}

	_, otherKey, err := testCA(t, domain).PEM()
	if err != nil {
		t.Fatal(err)
	}
	server, err := orig.IssueServer([]string{"localhost"}, nil, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]})
	for _, tt := range []struct {
		name      string
		cert, key []byte
	}{
		{"key of another CA", certPEM, otherKey},
		{"not a CA", leafPEM, keyPEM},
		{"no certificate", nil, keyPEM},
		{"no key", certPEM, nil},
	} {
		if _, err := Load(tt.cert, tt.key); err == nil {
			t.Errorf("%s: Load succeeded", tt.name)
		}
	}
}

func TestFingerprint(t *testing.T) {
	c := testCA(t, domain)
	fp := c.Fingerprint()
	if !regexp.MustCompile(`^SHA256:[0-9a-f]{64}$`).MatchString(fp) {
		t.Errorf("fingerprint %q is not SHA256:<64 lower-case hex>", fp)
	}
	if again := c.Fingerprint(); again != fp {
		t.Errorf("fingerprint changed: %s then %s", fp, again)
	}
	free, err := Fingerprint(c.CertPEM())
	if err != nil || free != fp {
		t.Errorf("Fingerprint(CertPEM()) = %q, %v; want %q", free, err, fp)
	}
	if other := testCA(t, domain).Fingerprint(); other == fp {
		t.Error("two CAs share a fingerprint")
	}
	if _, err := Fingerprint([]byte("not PEM")); err == nil {
		t.Error("Fingerprint of garbage succeeded")
	}
}

func TestTLSConfigs(t *testing.T) {
	c := testCA(t, domain)
	server, err := c.IssueServer([]string{"localhost"}, nil, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := c.ServerTLS(server)
	if s.MinVersion != tls.VersionTLS12 || s.ClientAuth != tls.VerifyClientCertIfGiven || s.ClientCAs == nil {
		t.Errorf("server config: MinVersion %x ClientAuth %v ClientCAs %v", s.MinVersion, s.ClientAuth, s.ClientCAs)
	}
	cl, err := ClientTLS(c.CertPEM(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl.MinVersion != tls.VersionTLS12 || cl.RootCAs == nil || len(cl.Certificates) != 0 {
		t.Errorf("client config: MinVersion %x RootCAs %v certificates %d", cl.MinVersion, cl.RootCAs, len(cl.Certificates))
	}
	if _, err := ClientTLS([]byte("garbage"), nil); err == nil {
		t.Error("ClientTLS(garbage) succeeded")
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]})
	if _, err := ClientTLS(leafPEM, nil); err == nil {
		t.Error("ClientTLS with a leaf as CA succeeded")
	}
}

// A node joining with a token does not know its host's name yet: its
// unnamed request gets the token's host.
func TestSignUnnamedCSR(t *testing.T) {
	c := testCA(t, domain)
	csrPEM, _, err := pki.NewCSR("")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := c.SignCSR(csrPEM, host, nodeTTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	x, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.VerifyNode(x, time.Now(), nil); err != nil || got != host || x.Subject.CommonName != host {
		t.Errorf("unnamed request: host %q, CN %q, %v", got, x.Subject.CommonName, err)
	}
}
