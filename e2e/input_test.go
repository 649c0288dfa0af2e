package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMistypedSubcommand: a subcommand misspelt under a command that only
// groups others fails with a suggestion, as a misspelt top-level command
// does, instead of printing help and exiting 0 in a script.
func TestMistypedSubcommand(t *testing.T) {
	cli := newAdminCLI(t, &transcript{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"group", "sumary", "demo"}, "unknown command \"sumary\" for \"gatehouse group\"\n\nDid you mean this?\n\tsummary\n"},
		{[]string{"env", "secret", "lst", "prod"}, "unknown command \"lst\" for \"gatehouse env secret\"\n\nDid you mean this?\n\tlist\n"},
		{[]string{"groupp", "list"}, "unknown command \"groupp\" for \"gatehouse\"\n\nDid you mean this?\n\tgroup\n"},
		{[]string{"config", "nonsense"}, "unknown command \"nonsense\" for \"gatehouse config\""},
	} {
		_, errOut := cli.fail(t, "", tc.args...)
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("gatehouse %s: stderr %q, want %q", strings.Join(tc.args, " "), errOut, tc.want)
		}
	}
	if out := cli.ok(t, "", "group"); !strings.Contains(out, "Available Commands:") {
		t.Errorf("gatehouse group alone prints no help:\n%s", out)
	}
}

// TestLogLevelRefused: every process command refuses a level it does not
// know before it starts anything, rather than running with no logs.
func TestLogLevelRefused(t *testing.T) {
	cli := newAdminCLI(t, &transcript{})
	dir := t.TempDir()
	for _, args := range [][]string{
		{"admin", "run", "--data-dir", filepath.Join(dir, "admin")},
		{"node", "run", "--data-dir", filepath.Join(dir, "node")},
		{"gateway", "--listen", deadAddr(t), "--status-listen", deadAddr(t), "--tls-listen", ""},
		{"dev", "--dir", filepath.Join(dir, "dev")},
	} {
		args = append(args, "--log-level", "verbose")
		_, errOut := cli.fail(t, "", args...)
		if !strings.Contains(errOut, `invalid argument "verbose" for "--log-level"`) || !strings.Contains(errOut, "trace, debug, info, warn, error") {
			t.Errorf("gatehouse %s: stderr %q, want the level refused and the known ones listed", strings.Join(args, " "), errOut)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("refused commands left %v in their directories (%v)", entries, err)
	}
}

// TestGroupEnvironmentMustExist: `group update --environment E` with an E
// the domain does not have fails naming the field, and changes nothing.
func TestGroupEnvironmentMustExist(t *testing.T) {
	d := newPromoteDomain(t, &transcript{}, "dev")
	d.cli.ok(t, "", "group", "create", "web")
	_, errOut := d.cli.fail(t, "", "group", "update", "web", "--environment", "prdo")
	if !strings.Contains(errOut, "environment") || !strings.Contains(errOut, `"prdo" does not exist`) {
		t.Errorf("group update --environment prdo: %q, want the field and the name", errOut)
	}
	if out := d.cli.ok(t, "", "group", "get", "web"); strings.Contains(out, "prdo") {
		t.Errorf("the refused environment was stored:\n%s", out)
	}
	d.cli.ok(t, "", "env", "set", "prod", "HOST=10.0.0.1")
	d.cli.ok(t, "", "group", "update", "web", "--environment", "prod")
	if out := d.cli.ok(t, "", "group", "get", "web"); !strings.Contains(out, "prod") {
		t.Errorf("group get web after setting environment prod:\n%s", out)
	}
}
