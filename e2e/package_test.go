package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/nspawn"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// The .deb of `make package` (scripts/package.sh, here on the test's
// binary) installed with dpkg -i in a booted Debian: the gatehouse user and
// /var/lib/gatehouse made, both units verified by systemd-analyze, the
// node manager's unit started on a joined host and heartbeating, then the
// package removed and purged, leaving no unit and no binary behind.
func TestDebPackage(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not found (apt-get install dpkg)")
	}
	out := t.TempDir()
	build := exec.Command("../scripts/package.sh")
	build.Env = append(os.Environ(), "BIN="+binary, "OUT="+out, "VERSION=1.2.3-test")
	built, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, built)
	}
	deb := strings.TrimSpace(string(built))
	if filepath.Base(deb) != "gatehouse_1.2.3~test_"+goarch(t)+".deb" {
		t.Fatalf("package.sh built %q", deb)
	}

	h := &sdHost{m: nspawn.Start(t)}
	t.Cleanup(func() {
		if t.Failed() {
			out, err := h.m.Run(context.Background(), "journalctl", "--no-pager", "-n", "200")
			t.Logf("journal of the container (%v):\n%s", err, out)
		}
	})
	if err := h.m.CopyIn(deb, "/var/tmp/gatehouse.deb", 0o644); err != nil {
		t.Fatal(err)
	}
	h.run(t, "dpkg", "-i", "/var/tmp/gatehouse.deb")
	if got := h.run(t, "dpkg-query", "-W", "-f", "${Status} ${Version}", "gatehouse"); got != "install ok installed 1.2.3~test" {
		t.Errorf("dpkg-query: %q", got)
	}
	if got := h.run(t, "gatehouse", "--version"); !strings.Contains(got, "gatehouse version") {
		t.Errorf("gatehouse --version: %q", got)
	}
	user := strings.Split(strings.TrimSpace(h.run(t, "getent", "passwd", "gatehouse")), ":")
	if len(user) != 7 || user[2] == "0" || user[5] != "/var/lib/gatehouse" {
		t.Errorf("gatehouse user: %v", user)
	}
	for dir, want := range map[string]string{
		"/var/lib/gatehouse":       "root 755",
		"/var/lib/gatehouse/admin": "gatehouse 700",
		"/var/lib/gatehouse/node":  "root 700",
	} {
		if got := strings.TrimSpace(h.run(t, "stat", "-c", "%U %a", dir)); got != want {
			t.Errorf("%s: owner and mode %q, want %q", dir, got, want)
		}
	}
	units := []string{"/lib/systemd/system/gatehouse-admin.service", "/lib/systemd/system/gatehouse-node.service"}
	verify, err := h.m.Run(context.Background(), "systemd-analyze", append([]string{"verify"}, units...)...)
	if err != nil || strings.TrimSpace(string(verify)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, verify)
	}
	for unit, want := range map[string]map[string]string{
		"gatehouse-admin.service": {"User": "gatehouse", "ProtectSystem": "strict", "NoNewPrivileges": "yes", "UnitFileState": "disabled",
			"ExecStart": "/usr/bin/gatehouse"},
		"gatehouse-node.service": {"Type": "notify", "KillMode": "process", "UnitFileState": "disabled", "ExecStart": "/usr/bin/gatehouse"},
	} {
		props := make([]string, 0, len(want))
		for k := range want {
			props = append(props, k)
		}
		got := h.show(t, unit, props...)
		for k, v := range want {
			if k == "ExecStart" {
				if !strings.Contains(got[k], "path="+v+" ") {
					t.Errorf("%s: ExecStart %s, want %s", unit, got[k], v)
				}
				continue
			}
			if got[k] != v {
				t.Errorf("%s: %s=%s, want %s", unit, k, got[k], v)
			}
		}
	}

	// The node manager's unit on a joined host: the local API's address
	// and the heartbeat period come from a drop-in, as an operator's
	// settings would.
	d := newNMDomain(t)
	tok := d.joinToken(t, "h1")
	if out := h.run(t, "gatehouse", "node", "join", "--addr", d.url, "--token", tok, "--ca-fingerprint", d.fingerprint,
		"--data-dir", "/var/lib/gatehouse/node"); !strings.Contains(out, "Joined domain e2e as host h1") {
		t.Fatalf("node join said %q", out)
	}
	// One gateway, run by the exec driver inside the unit's sandbox: its
	// pids are the container's, which the test never signals (the
	// container's halt ends it).
	d.nodeDir = sdNodeDir
	d.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: sdNodeDir}
	up := startUpstream(t, "deb-up", nil)
	d.createInstance(t, "deb-gw")
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.nodeAddr = freeAddr(t)
	dropIn := fmt.Sprintf("[Service]\nExecStart=\nExecStart=/usr/bin/gatehouse node run --data-dir /var/lib/gatehouse/node --driver exec --listen %s --heartbeat 1s\n", d.nodeAddr)
	if err := os.MkdirAll(h.m.Path("/etc/systemd/system/gatehouse-node.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.m.Path("/etc/systemd/system/gatehouse-node.service.d/listen.conf"), []byte(dropIn), 0o644); err != nil {
		t.Fatal(err)
	}
	h.run(t, "systemctl", "daemon-reload")
	h.run(t, "systemctl", "start", "gatehouse-node.service")
	if p := h.show(t, "gatehouse-node.service", "ActiveState", "SubState"); p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("gatehouse-node.service: %v", p)
	}
	waitfor.Cond(t, 20*time.Second, "heartbeats of the packaged node manager", func() (bool, string) {
		ok, failed, err := heartbeatCounts(d.nodeAddr)
		if err != nil {
			return false, err.Error()
		}
		return ok >= 2 && failed == 0, fmt.Sprintf("%d ok, %d failed", ok, failed)
	})
	// The gateway serves from within the hardened unit, which it shares:
	// no privilege to gain, CAP_NET_BIND_SERVICE (bit 10) the one
	// capability it could have.
	views := d.waitLocal(t, "deb-gw running deployment #1", d.appliedEverywhere(1))
	waitfor.Cond(t, 20*time.Second, "a request through deb-gw", func() (bool, string) {
		got, err := d.through("deb-gw", "/hello")
		if err != nil {
			return false, err.Error()
		}
		return got == "deb-up", "answered by " + got
	})
	if st := h.procStatus(t, strconv.Itoa(views["deb-gw"].PID)); st["CapBnd"] != "0000000000000400" || st["NoNewPrivs"] != "1" {
		t.Errorf("deb-gw (pid %d): CapBnd %s NoNewPrivs %s", views["deb-gw"].PID, st["CapBnd"], st["NoNewPrivs"])
	}
	if got := h.show(t, "gatehouse-node.service", "ProtectSystem", "NoNewPrivileges", "CapabilityBoundingSet"); got["ProtectSystem"] != "strict" ||
		got["NoNewPrivileges"] != "yes" || got["CapabilityBoundingSet"] != "cap_net_bind_service" {
		t.Errorf("gatehouse-node.service: %v", got)
	}

	h.run(t, "dpkg", "-r", "gatehouse")
	if p := h.show(t, "gatehouse-node.service", "LoadState", "ActiveState"); p["ActiveState"] != "inactive" || p["LoadState"] != "not-found" {
		t.Errorf("after dpkg -r: gatehouse-node.service %v", p)
	}
	if _, err := os.Stat(h.m.Path("/usr/bin/gatehouse")); !os.IsNotExist(err) {
		t.Errorf("after dpkg -r: /usr/bin/gatehouse: %v", err)
	}
	if resp, err := http.Get("http://" + d.nodeAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("after dpkg -r the node manager still answers")
	}
	// The node's identity is kept for a reinstall.
	if _, err := os.Stat(h.m.Path("/var/lib/gatehouse/node/node.json")); err != nil {
		t.Errorf("after dpkg -r: %v", err)
	}
	h.run(t, "dpkg", "-P", "gatehouse")
	if out, err := h.m.Run(context.Background(), "dpkg-query", "-W", "gatehouse"); err == nil {
		t.Errorf("after dpkg -P the package is still known: %s", out)
	}
}

func goarch(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
