package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// servedCert is the leaf of the HTTPS certificate the admin node at addr
// serves now.
func servedCert(t *testing.T, addr string) (notAfter time.Time, err error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only the certificate's dates are read
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].NotAfter, nil
}

// adminServerCerts lists the admin-server certificates `gatehouse ca
// certificates` shows through cli, by admin node.
func adminServerCerts(t *testing.T, cli *adminCLI) map[string]apitypes.CertificateExpiry {
	t.Helper()
	var list []apitypes.CertificateExpiry
	cli.json(t, &list, "ca", "certificates")
	out := map[string]apitypes.CertificateExpiry{}
	for _, c := range list {
		if c.Kind == apitypes.CertAdminServer {
			out[c.Name] = c
		}
	}
	return out
}

// TestEveryAdminNodeCertificateListed: two admin nodes on one real
// PostgreSQL each list both admin nodes' HTTPS certificates (`ca
// certificates`, and the gauges), each entry the certificate that node
// serves; B, restarted with 15 s certificates, renews, and A lists B's
// renewed certificate.
func TestEveryAdminNodeCertificateListed(t *testing.T) {
	f := newPGFleet(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	names := [2]string{host + "/" + f.addr[0], host + "/" + f.addr[1]}
	// both says whether the listing through admin node i holds both
	// admin nodes' certificates as they serve them.
	both := func(i int) (bool, string) {
		got := adminServerCerts(t, f.cli[i])
		for j, name := range names {
			served, err := servedCert(t, f.addr[j])
			if err != nil {
				return false, err.Error()
			}
			if c, ok := got[name]; !ok || !c.NotAfter.Equal(served) || c.State != apitypes.CertOK {
				return false, fmt.Sprintf("through %s: %+v; %s serves a certificate until %s", names[i], got, name, served)
			}
		}
		return len(got) == 2, fmt.Sprintf("through %s: %+v", names[i], got)
	}
	for i := range 2 {
		until(t, "both admin nodes' certificates listed through "+names[i], func() (bool, string) { return both(i) })
	}
	code, _, body := f.api[0].do(t, "GET", "/metrics/prometheus", "")
	for _, name := range names {
		if w := fmt.Sprintf(`gatehouse_certificate_warning{group="",kind="admin-server",name=%q} 0`, name); code != http.StatusOK || !strings.Contains(string(body), w) {
			t.Errorf("A's metrics (%d) lack %s", code, w)
		}
	}

	// B again, with certificates of 15 s: renewed every 10 s or so.
	f.admin[1].signal(syscall.SIGTERM)
	if code := f.admin[1].exit(t, 30*time.Second); code != 0 {
		t.Fatalf("admin node B exited %d", code)
	}
	f.admin[1] = startAdminNode(t, f.dir[1], f.addr[1], f.fingerprint, append(f.pgAdminArgs(), "--server-cert-ttl", "15s")...)
	f.started = append(f.started, f.admin[1])
	first, err := servedCert(t, f.addr[1])
	if err != nil {
		t.Fatal(err)
	}
	until(t, "A lists B's renewed certificate", func() (bool, string) {
		served, err := servedCert(t, f.addr[1])
		if err != nil {
			return false, err.Error()
		}
		c := adminServerCerts(t, f.cli[0])[names[1]]
		return served.After(first) && c.NotAfter.Equal(served),
			fmt.Sprintf("A lists B's certificate as %+v; B serves one until %s (the first until %s)", c, served, first)
	})
}
