package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

func selfSigned(t *testing.T, name string, sans ...string) deploy.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: sans[0]},
		DNSNames:     sans,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return deploy.Certificate{
		Name: name,
		SNIs: sans,
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}
}

func TestGet(t *testing.T) {
	s, err := Build([]deploy.Certificate{
		selfSigned(t, "api", "api.example.com"),
		selfSigned(t, "wild", "*.example.com"),
		selfSigned(t, "deep", "*.eu.example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sni  string
		want string // CN of the served certificate, "" for none
	}{
		{"api.example.com", "api.example.com"},
		{"API.Example.com.", "api.example.com"},
		{"shop.example.com", "*.example.com"},
		{"shop.eu.example.com", "*.eu.example.com"},
		{"example.com", ""},
		{"other.org", ""},
		{"", "api.example.com"},
	}
	for _, tt := range tests {
		c, err := s.Get(&tls.ClientHelloInfo{ServerName: tt.sni})
		if tt.want == "" {
			if err == nil {
				t.Errorf("Get(%q): want no certificate", tt.sni)
			}
			continue
		}
		if err != nil {
			t.Errorf("Get(%q): %v", tt.sni, err)
			continue
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if leaf.Subject.CommonName != tt.want {
			t.Errorf("Get(%q) served %q, want %q", tt.sni, leaf.Subject.CommonName, tt.want)
		}
	}
}

func TestBuildRejectsMismatchedKey(t *testing.T) {
	a, b := selfSigned(t, "a", "a.example.com"), selfSigned(t, "b", "b.example.com")
	a.Key = b.Key
	_, err := Build([]deploy.Certificate{a})
	if err == nil {
		t.Fatal("mismatched key accepted")
	}
	if want := `certificates[0] "a"`; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Fatalf("error %q does not name the certificate", err)
	}
}
