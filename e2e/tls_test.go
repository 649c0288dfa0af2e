package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// writeConfig writes cfg as the JSON form of a configuration file.
func writeConfig(t *testing.T, path string, cfg deploy.Config) {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

func TestTLSWithSNI(t *testing.T) {
	up := startUpstream(t, "api", nil)
	certA, keyA := selfSigned(t, "a.example.test")
	certB, keyB := selfSigned(t, "b.example.test")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.json")
	writeConfig(t, cfg, deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "api", Targets: []deploy.Target{{Address: up.addr}}}},
		Services: []deploy.Service{{Name: "api", Upstream: "api", Routes: []deploy.Route{
			{Name: "all", Paths: []string{"/*"}},
		}}},
		Certificates: []deploy.Certificate{
			{Name: "a", SNIs: []string{"a.example.test"}, Cert: certA, Key: keyA},
			{Name: "b", SNIs: []string{"b.example.test"}, Cert: certB, Key: keyB},
		},
	})
	gw := startGateway(t, gatewayOpts{config: cfg, dataDir: filepath.Join(dir, "gw"), tls: true})
	tlsAddr := gw.tls
	gw.waitReady(t)

	for _, name := range []string{"a.example.test", "b.example.test"} {
		pool := x509.NewCertPool()
		if name == "a.example.test" {
			pool.AppendCertsFromPEM([]byte(certA))
		} else {
			pool.AppendCertsFromPEM([]byte(certB))
		}
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name},
		}}
		resp, err := client.Get("https://" + tlsAddr + "/hello")
		if err != nil {
			t.Fatalf("HTTPS with SNI %s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "api GET /hello" {
			t.Errorf("SNI %s: %d %q", name, resp.StatusCode, body)
		}
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != name {
			t.Errorf("SNI %s served the certificate of %s", name, got)
		}
	}

	// The upstream learns the client came over HTTPS.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certA))
	conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "unknown.example.test", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("handshake for a name with no certificate succeeded")
	}
	_, err = tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "a.example.test", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Error("TLS 1.1 handshake accepted; minimum is TLS 1.2")
	}
}
