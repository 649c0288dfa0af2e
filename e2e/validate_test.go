package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `gatehouse validate` reports what a gateway would: the same checksum for
// a valid file, every error with its path for an invalid one.
func TestValidateCommand(t *testing.T) {
	up := startUpstream(t, "up", nil)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	simpleConfig(t, good, up.addr)
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "services:\n  - name: s\n    upstream: nowhere\n    routes:\n      - name: r\n        paths: [x]\n")

	out, err := exec.Command(binary, "validate", good).CombinedOutput()
	if err != nil {
		t.Fatalf("validate on a valid file: %v\n%s", err, out)
	}
	gw := startGateway(t, gatewayOpts{config: good})
	gw.waitReady(t)
	sum := gw.report(t).Configuration.Checksum
	if !strings.Contains(string(out), good+": valid "+sum) {
		t.Errorf("validate printed %q, the gateway serves checksum %s", out, sum)
	}

	out, err = exec.Command(binary, "validate", good, bad).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("validate with an invalid file: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{
		bad + ": invalid",
		"services[0].upstream",
		`services[0].routes[0].paths[0]: must start with "/"`,
		"1 of 2 files invalid",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
