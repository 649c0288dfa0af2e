package nodemanager

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The node manager's unit passes `systemd-analyze verify` without a
// warning, and keeps the settings the node manager relies on.
func TestUnitVerifies(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := Unit(bin, "/var/lib/gatehouse/node", DriverExec)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify\n", "WatchdogSec=", "KillMode=process\n", "Restart=always\n",
		"ExecStart=" + bin + " node run --data-dir /var/lib/gatehouse/node --driver exec\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if _, err := Unit("relative", "/d", DriverExec); err == nil {
		t.Error("a relative binary was accepted")
	}
	if _, err := Unit(bin, "/d", "docker"); err == nil {
		t.Error("an unknown driver was accepted")
	}
	// More flags of node run go to ExecStart as they are, one word each.
	withArgs, err := Unit(bin, "/var/lib/gatehouse/node", DriverSystemd, "--listen", "127.0.0.1:9091", "--plugin-dir=/usr/local/lib/gatehouse/plugins")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ExecStart=" + bin + " node run --data-dir /var/lib/gatehouse/node --driver systemd --listen 127.0.0.1:9091 --plugin-dir=/usr/local/lib/gatehouse/plugins\n"; !strings.Contains(withArgs, want) {
		t.Errorf("unit lacks %q:\n%s", want, withArgs)
	}
	for _, bad := range []struct {
		arg, want string
	}{
		{"", "empty"},
		{"--plugin-dir=/a b", "space"},
		{"$HOME", "space"},
		{"100%", "space"},
		{"a;b", "space"},
		{"--x=\"y\"", "space"},
		{"line\nbreak", "space"},
		{"--data-dir=/other", "node unit's own --data-dir"},
		{"--driver", "node unit's own --driver"},
	} {
		if _, err := Unit(bin, "/d", DriverExec, bad.arg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Unit with argument %q: %v, want an error saying %q", bad.arg, err, bad.want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: `apt-get install systemd` to verify the unit")
	}
	for _, driver := range []string{DriverExec, DriverSystemd} {
		unit, err := Unit(bin, "/var/lib/gatehouse/node", driver)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "gatehouse-node.service")
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", path).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("driver %s: systemd-analyze verify: %v\n%s\n%s", driver, err, out, unit)
		}
		// systemd's own rating of the sandbox, 0 (locked down) to 10;
		// the unit without its hardening rated 9.6.
		out, err = exec.Command(analyze, "security", "--offline=true", "--no-pager", path).CombinedOutput()
		if err != nil && strings.Contains(string(out), "offline") {
			t.Logf("systemd-analyze security --offline is not supported here: %s", out)
			continue
		}
		m := regexp.MustCompile(`Overall exposure level for gatehouse-node.service: (\d+\.\d)`).FindSubmatch(out)
		if m == nil {
			t.Errorf("driver %s: systemd-analyze security: %v\n%s", driver, err, out)
			continue
		}
		if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2 {
			t.Errorf("driver %s: exposure level %.1f, want at most 2.0:\n%s", driver, score, out)
		}
	}
}

// The sandbox leaves each driver what it needs: the exec driver's
// gateways, which run inside it, can bind :80 and :443 and run plugins
// (no MemoryDenyWriteExecute); the systemd driver can write the gateway
// unit and its environment files, and needs no capability.
func TestUnitHardeningByDriver(t *testing.T) {
	common := []string{"ReadWritePaths=/var/lib/gatehouse/node\n", "ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n",
		"NoNewPrivileges=yes\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n", "SystemCallArchitectures=native\n",
		"ProtectKernelTunables=yes\n", "LockPersonality=yes\n", "RestrictRealtime=yes\n"}
	for _, tt := range []struct {
		driver       string
		want, absent []string
	}{
		{DriverExec, []string{"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"}, []string{"MemoryDenyWriteExecute", "ReadWritePaths=/etc/systemd/system", "ConfigurationDirectory", "ProcSubset"}},
		{DriverSystemd, []string{"CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes\n", "ReadWritePaths=/etc/systemd/system\n",
			"ConfigurationDirectory=gatehouse/gateway\n", "ConfigurationDirectoryMode=0700\n"}, []string{"CAP_NET_BIND_SERVICE", "ProcSubset"}},
	} {
		unit, err := Unit("/usr/bin/gatehouse", "/var/lib/gatehouse/node", tt.driver)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range append(common, tt.want...) {
			if !strings.Contains(unit, w) {
				t.Errorf("driver %s: unit lacks %q", tt.driver, w)
			}
		}
		for _, a := range tt.absent {
			if strings.Contains(unit, a) {
				t.Errorf("driver %s: unit has %q", tt.driver, a)
			}
		}
	}
}
