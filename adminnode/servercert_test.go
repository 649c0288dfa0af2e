package adminnode

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/ca"
)

func TestServerCertRenewal(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	root, err := ca.New("acme", start)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(root.CertPEM())
	auth, err := ca.NewAuthority(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		after time.Duration
		renew bool
	}{
		{"fresh", 0, false},
		{"half way", ServerCertTTL / 2, false},
		{"last third", ServerCertTTL * 2 / 3, true},
		{"expired", ServerCertTTL + time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newServerCert(auth, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, ServerCertTTL, start)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := c.get(&tls.ClientHelloInfo{})
			now := start.Add(tt.after)
			renewed, err := c.renew(now)
			if err != nil || renewed != tt.renew {
				t.Fatalf("renew = %v, %v; want %v", renewed, err, tt.renew)
			}
			cur, _ := c.get(&tls.ClientHelloInfo{})
			if changed := cur != first; changed != tt.renew {
				t.Errorf("certificate changed = %v, want %v", changed, tt.renew)
			}
			if len(cur.Certificate) != 2 || string(cur.Certificate[1]) != string(block.Bytes) {
				t.Fatalf("chain has %d certificates, want leaf and root", len(cur.Certificate))
			}
			if _, err := cur.Leaf.Verify(x509.VerifyOptions{Roots: root.Pool(), DNSName: "localhost", CurrentTime: now}); err != nil {
				t.Errorf("served certificate does not verify at %v: %v", now, err)
			}
		})
	}
}

func TestServerNames(t *testing.T) {
	tests := []struct {
		name     string
		hostname string
		listen   string
		extra    []string
		names    []string
		ips      []string
	}{
		{"defaults", "node1", ":8090", nil,
			[]string{"node1", "localhost"}, []string{"127.0.0.1", "::1"}},
		{"no hostname", "", ":8090", nil,
			[]string{"localhost"}, []string{"127.0.0.1", "::1"}},
		{"specific listen address", "node1", "10.0.0.5:8090", nil,
			[]string{"node1", "localhost"}, []string{"127.0.0.1", "::1", "10.0.0.5"}},
		{"unspecified listen address", "node1", "0.0.0.0:8090", nil,
			[]string{"node1", "localhost"}, []string{"127.0.0.1", "::1"}},
		{"extras and duplicates", "node1", "127.0.0.1:8090", []string{"admin.example.com", "192.0.2.7", "localhost", "0:0::1", "node1"},
			[]string{"node1", "localhost", "admin.example.com"}, []string{"127.0.0.1", "::1", "192.0.2.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, ips := serverNames(tt.hostname, tt.listen, tt.extra)
			var gotIPs []string
			for _, ip := range ips {
				gotIPs = append(gotIPs, ip.String())
			}
			if !slices.Equal(names, tt.names) || !slices.Equal(gotIPs, tt.ips) {
				t.Errorf("serverNames = %v, %v; want %v, %v", names, gotIPs, tt.names, tt.ips)
			}
		})
	}
}
