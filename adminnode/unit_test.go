package adminnode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The admin node's unit passes `systemd-analyze verify` without a
// warning, runs as its user on its data directory, and is hardened.
func TestUnitVerifies(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := Unit(bin, "/var/lib/gatehouse/admin", "gatehouse", ":8090")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=gatehouse\n", "ReadWritePaths=/var/lib/gatehouse/admin\n",
		"ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "CapabilityBoundingSet=\n", "UMask=0077\n",
		"ExecStart=" + bin + " admin run --data-dir /var/lib/gatehouse/admin --listen :8090\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	for _, bad := range []struct{ binary, dataDir, user, listen string }{
		{"relative", "/d", "gatehouse", ":8090"},
		{bin, "/d d", "gatehouse", ":8090"},
		{bin, "/d", "root", ":8090"},
		{bin, "/d", "Bad User", ":8090"},
		{bin, "/d", "gatehouse", "8090"},
	} {
		if _, err := Unit(bad.binary, bad.dataDir, bad.user, bad.listen); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: `apt-get install systemd` to verify the unit")
	}
	path := filepath.Join(t.TempDir(), "gatehouse-admin.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
	// And its security exposure is low (systemd-analyze security rates
	// 0 safest to 10; --threshold counts tenths): at most 2.0, so that a
	// regression in the hardening shows here.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
}
