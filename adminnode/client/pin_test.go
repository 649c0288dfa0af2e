package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/ca"
)

// tlsServer serves health answers over TLS with the chain given.
func tlsServer(t *testing.T, chain tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","domain":"test"}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{chain}}
	// Refused handshakes are what the tests are about, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newCA(t *testing.T, domain string) *ca.CA {
	t.Helper()
	root, err := ca.New(domain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// serverChain issues a server certificate for names and IPs and sends
// extra certificates after it, as the admin node sends its CA.
func serverChain(t *testing.T, issuer *ca.CA, names []string, ips []net.IP, extra ...*ca.CA) tls.Certificate {
	t.Helper()
	cert, err := issuer.IssueServer(names, ips, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range extra {
		cert.Certificate = append(cert.Certificate, certDER(t, c))
	}
	return cert
}

func certDER(t *testing.T, c *ca.CA) []byte {
	t.Helper()
	return mustCert(t, c.CertPEM()).Raw
}

func TestPinnedFingerprint(t *testing.T) {
	root := newCA(t, "test")
	other := newCA(t, "other")
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	good := serverChain(t, root, []string{"localhost"}, loopback, root)

	tests := []struct {
		name        string
		chain       tls.Certificate
		fingerprint string
		wantErr     string // empty: the connection is trusted
	}{
		{name: "lower-case hex", chain: good, fingerprint: root.Fingerprint()},
		{name: "upper-case hex", chain: good, fingerprint: "SHA256:" + strings.ToUpper(strings.TrimPrefix(root.Fingerprint(), "SHA256:"))},
		{name: "lower-case prefix", chain: good, fingerprint: "sha256:" + strings.TrimPrefix(root.Fingerprint(), "SHA256:")},
		{name: "colons between bytes", chain: good, fingerprint: "SHA256:" + colons(strings.TrimPrefix(root.Fingerprint(), "SHA256:"))},
		{
			name: "wrong fingerprint", chain: good, fingerprint: other.Fingerprint(),
			wantErr: "no certificate of the server's chain has the fingerprint " + other.Fingerprint(),
		},
		{
			name: "leaf only", chain: serverChain(t, root, []string{"localhost"}, loopback), fingerprint: root.Fingerprint(),
			wantErr: "it sent its own certificate only",
		},
		{
			// Anyone can send the real CA certificate: it must also
			// have issued the leaf.
			name: "pinned CA sent, leaf from another", chain: serverChain(t, other, []string{"localhost"}, loopback, root),
			fingerprint: root.Fingerprint(),
			wantErr:     "is not valid for 127.0.0.1 under the pinned CA",
		},
		{
			name: "leaf for another name", chain: serverChain(t, root, []string{"admin.example.com"}, nil, root),
			fingerprint: root.Fingerprint(),
			wantErr:     "is not valid for 127.0.0.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tlsServer(t, tt.chain)
			c, err := New(Config{Address: srv.URL, CAFingerprint: tt.fingerprint})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Health(context.Background())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Health: %v", err)
				}
				got, err := c.ServerCA(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(root.CertPEM()) {
					t.Errorf("ServerCA returned another certificate:\n%s", got)
				}
				return
			}
			if !errors.Is(err, ErrPinMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Health error = %v, want ErrPinMismatch with %q", err, tt.wantErr)
			}
		})
	}
}

func colons(hex string) string {
	var parts []string
	for i := 0; i < len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

// ServerCA connects by itself when nothing has yet.
func TestServerCAConnects(t *testing.T) {
	root := newCA(t, "test")
	srv := tlsServer(t, serverChain(t, root, nil, []net.IP{net.IPv4(127, 0, 0, 1)}, root))
	c, err := New(Config{Address: srv.URL, CAFingerprint: root.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ServerCA(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fp, err := ca.Fingerprint(got)
	if err != nil || fp != root.Fingerprint() {
		t.Fatalf("ServerCA fingerprint = %q, %v; want %s", fp, err, root.Fingerprint())
	}
}

func TestCACertPEM(t *testing.T) {
	root := newCA(t, "test")
	srv := tlsServer(t, serverChain(t, root, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}))
	for _, tt := range []struct {
		name    string
		caPEM   []byte
		wantErr string
	}{
		{name: "domain CA", caPEM: root.CertPEM()},
		{name: "another CA", caPEM: newCA(t, "other").CertPEM(), wantErr: "certificate signed by unknown authority"},
		{name: "system roots", wantErr: "certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{Address: srv.URL, CACertPEM: tt.caPEM})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Health(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Health error = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" {
				if got, err := c.ServerCA(context.Background()); err != nil || string(got) != string(tt.caPEM) {
					t.Fatalf("ServerCA = %q, %v; want the configured CA", got, err)
				}
			}
		})
	}
}
