package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestNeedsRenewal(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(90 * time.Hour)}
	renewAt := start.Add(60 * time.Hour)
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"at issue", start, false},
		{"just before two thirds", renewAt.Add(-time.Nanosecond), false},
		{"at two thirds", renewAt, true},
		{"just before expiry", cert.NotAfter.Add(-time.Nanosecond), true},
		{"expired", cert.NotAfter.Add(time.Hour), true},
	}
	for _, tt := range tests {
		if got := NeedsRenewal(cert, tt.now); got != tt.want {
			t.Errorf("%s: NeedsRenewal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewCSR(t *testing.T) {
	for _, host := range []string{"web-1", ""} {
		csrPEM, keyPEM, err := NewCSR(host)
		if err != nil {
			t.Fatalf("NewCSR(%q): %v", host, err)
		}
		block, _ := pem.Decode(csrPEM)
		if block == nil || block.Type != "CERTIFICATE REQUEST" {
			t.Fatalf("NewCSR(%q): request is not a CERTIFICATE REQUEST PEM block", host)
		}
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatalf("NewCSR(%q): %v", host, err)
		}
		if err := csr.CheckSignature(); err != nil || csr.Subject.CommonName != host {
			t.Fatalf("NewCSR(%q): signature %v, name %q, want a signed request for %q", host, err, csr.Subject.CommonName, host)
		}
		if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("NewCSR(%q): key is not a PRIVATE KEY PEM block", host)
		}
	}
	if _, _, err := NewCSR("web/1"); err == nil || !strings.Contains(err.Error(), "invalid host name") {
		t.Errorf(`NewCSR("web/1") = %v, want an invalid host name`, err)
	}
}
