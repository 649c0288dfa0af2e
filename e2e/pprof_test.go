package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPprofOnLoopbackOnly runs gateways with --pprof: an address that is
// not loopback is refused at start, and /debug/pprof is served on its own
// loopback listener, never on the status port, even when that one listens
// on every interface.
func TestPprofOnLoopbackOnly(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--pprof", "--pprof-listen", "0.0.0.0:0"}, `--pprof-listen: "0.0.0.0:0" is not a loopback address`},
		{[]string{"--pprof", "--pprof-listen", ":0"}, `--pprof-listen: ":0" is not a loopback address`},
		{[]string{"--pprof-listen", "127.0.0.1:0"}, "--pprof-listen is for --pprof"},
	} {
		p := start(t, append([]string{"gateway", "--status-listen", freeAddr(t), "--listen", freeAddr(t), "--tls-listen", ""}, tt.args...)...)
		if code := p.exit(t, 10*time.Second); code == 0 || !strings.Contains(p.out.String(), tt.want) {
			t.Errorf("gateway %s: exit %d, output %q; want an error saying %q", strings.Join(tt.args, " "), code, p.out.String(), tt.want)
		}
	}

	_, statusPort, _ := net.SplitHostPort(freeAddr(t))
	pprofAddr := freeAddr(t)
	p := start(t, "gateway", "--listen", freeAddr(t), "--tls-listen", "", "--status-listen", "0.0.0.0:"+statusPort,
		"--pprof", "--pprof-listen", pprofAddr)
	p.waitFor(t, 10*time.Second, "status port", func() bool {
		code, _ := pprofGet("127.0.0.1:" + statusPort + "/healthz")
		return code == http.StatusOK
	})
	if code, body := pprofGet(pprofAddr + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET %s/debug/pprof/: %d %.200q", pprofAddr, code, body)
	}
	hosts := []string{"127.0.0.1"}
	if ip := nonLoopbackIP(); ip != "" {
		hosts = append(hosts, ip)
		// Nothing answers at the pprof port on another interface.
		_, port, _ := net.SplitHostPort(pprofAddr)
		if code, body := pprofGet(net.JoinHostPort(ip, port) + "/debug/pprof/"); code != 0 {
			t.Errorf("pprof port reached at %s: %d %.200q", ip, code, body)
		}
	}
	for _, host := range hosts {
		status := net.JoinHostPort(host, statusPort)
		if code, _ := pprofGet(status + "/healthz"); code != http.StatusOK {
			t.Errorf("status port at %s: /healthz %d", status, code)
		}
		if code, _ := pprofGet(status + "/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("status port at %s serves /debug/pprof/: %d", status, code)
		}
	}
}

// pprofGet answers the status and body of a GET, or 0 when nothing
// answered.
func pprofGet(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback,
// or "" when it has none.
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}
