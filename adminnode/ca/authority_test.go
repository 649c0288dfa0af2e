package ca

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pki"
)

// During a rotation the new root issues node certificates, the old one
// the server's, and node certificates of both verify; a root of another
// domain, or a third root, does not.
func TestAuthorityRoles(t *testing.T) {
	old, fresh, stranger := testCA(t, domain), testCA(t, domain), testCA(t, domain)
	a, err := NewAuthority(fresh, old)
	if err != nil {
		t.Fatal(err)
	}
	if a.Issuer() != fresh || a.Server() != old || !a.Rotating() || a.Fingerprint() != old.Fingerprint() {
		t.Fatalf("roles: issuer %s server %s", a.Issuer().Fingerprint(), a.Server().Fingerprint())
	}
	if roots := pki.ParseBundle(a.BundlePEM()); len(roots) != 2 || pki.Fingerprint(roots[0]) != fresh.Fingerprint() {
		t.Fatalf("bundle holds %d roots", len(roots))
	}
	single, _ := NewAuthority(old)
	if single.TrustID() == a.TrustID() || single.Rotating() {
		t.Error("a single root has the rotation's trust id, or is rotating")
	}
	if _, err := NewAuthority(fresh, testCA(t, "other")); err == nil {
		t.Error("roots of two domains accepted")
	}
	now := time.Now()
	tests := []struct {
		name   string
		issuer *CA
		want   error
	}{
		{"new root", fresh, nil},
		{"previous root", old, nil},
		{"unknown root", stranger, ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, err := a.VerifyNode(leaf(t, nodeCert(t, tt.issuer, host, now)), now, nil)
			if !errors.Is(err, tt.want) || (tt.want == nil && host != "web-1") {
				t.Fatalf("VerifyNode = %q, %v; want %v", host, err, tt.want)
			}
		})
	}
	csr, _, _ := pki.NewCSR(host)
	certPEM, _, err := a.SignCSR(csr, host, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := pki.ParseBundle(certPEM); len(got) != 0 {
		t.Fatal("a node certificate parsed as a CA")
	}
	issued, err := a.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, now)
	if err != nil || !old.Issued(issued.Leaf) || fresh.Issued(issued.Leaf) {
		t.Fatalf("server certificate not from the previous root: %v", err)
	}
}

// A short-lived certificate is backdated by a tenth of its life, so that
// it is not due for renewal as soon as issued.
func TestShortLivedBackdate(t *testing.T) {
	c := testCA(t, domain)
	now := time.Now()
	for _, ttl := range []time.Duration{40 * time.Second, 2 * time.Minute, 24 * time.Hour} {
		cert, err := c.IssueServer([]string{"localhost"}, nil, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		back := now.Sub(cert.Leaf.NotBefore)
		if want := min(clockSkew, ttl/10); back < want-time.Second || back > want+time.Second {
			t.Errorf("ttl %v: backdated %v, want %v", ttl, back, want)
		}
		if pki.NeedsRenewal(cert.Leaf, now) {
			t.Errorf("ttl %v: due for renewal when issued", ttl)
		}
	}
}
