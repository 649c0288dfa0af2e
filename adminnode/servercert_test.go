package adminnode

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
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

func TestCheckCertOptions(t *testing.T) {
	tests := []struct {
		name string
		opts RunOptions
		want string
	}{
		{"defaults", RunOptions{}, ""},
		{"short lives", RunOptions{NodeCertTTL: 2 * time.Minute, ServerCertTTL: 40 * time.Second, CertWarnFraction: 0.3}, ""},
		{"node ttl too short", RunOptions{NodeCertTTL: time.Second}, "--node-cert-ttl 1s"},
		{"negative server ttl", RunOptions{ServerCertTTL: -time.Hour}, "--server-cert-ttl -1h0m0s"},
		{"fraction of one", RunOptions{CertWarnFraction: 1}, "--cert-warn-fraction 1"},
		{"negative fraction", RunOptions{CertWarnFraction: -0.1}, "--cert-warn-fraction -0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCertOptions(tt.opts)
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkCertOptions = %v, want %q", err, tt.want)
			}
		})
	}
}

// A CA rotation that changes the root signing server certificates has the
// certificate re-issued from it at once, and the roots trusted for client
// certificates follow.
func TestServerCertFollowsAuthority(t *testing.T) {
	now := time.Now()
	old, fresh := mustCA(t, now), mustCA(t, now)
	single, _ := ca.NewAuthority(old)
	c, err := newServerCert(single, []string{"localhost"}, nil, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	rotating, _ := ca.NewAuthority(fresh, old)
	if renewed, err := c.setAuthority(rotating, now); renewed || err != nil {
		t.Fatalf("rotation: renewed = %v, %v; the previous root still signs the server certificate", renewed, err)
	}
	if cfg, _ := c.config(nil); len(cfg.ClientCAs.Subjects()) != 2 {
		t.Error("client certificates not verified against both roots")
	}
	retired, _ := ca.NewAuthority(fresh)
	if renewed, err := c.setAuthority(retired, now); !renewed || err != nil {
		t.Fatalf("retirement: renewed = %v, %v", renewed, err)
	}
	cur, _ := c.get(nil)
	if !fresh.Issued(cur.Leaf) || string(cur.Certificate[1]) != string(fresh.Cert().Raw) {
		t.Error("after the retirement the served chain is not the new root's")
	}
}

func mustCA(t *testing.T, now time.Time) *ca.CA {
	t.Helper()
	c, err := ca.New("acme", now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
