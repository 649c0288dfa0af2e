package nodemanager

import (
	"os"
	"os/exec"
	"path/filepath"
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
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: `apt-get install systemd` to verify the unit")
	}
	path := filepath.Join(t.TempDir(), "gatehouse-node.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
}
