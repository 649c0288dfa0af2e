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
	path := filepath.Join(t.TempDir(), "gatehouse-node.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
}
