package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
)

// The commands that deploy tell the truth (docs/deployments.md): they wait
// for the roll-out and succeed only when every instance applied it, name
// each instance that refused it with its gateway's reason, return at once
// with --no-wait, deploy nothing for an unchanged draft, and a rollback
// resets the draft so that the change rolled back does not ship again.
// All through the CLI as a user types it, against an admin node, a node
// manager and its two gateways.

// pluginRouteConfig routes every path to upstreamAddr through an external
// policy whose plugin no gateway has: the admin node cannot tell (it
// validates without a plugin directory), the gateways refuse it.
func pluginRouteConfig(upstreamAddr, plugin string) string {
	return routeConfig(upstreamAddr) + fmt.Sprintf(`        policies:
          - name: external
            config:
              plugin: %s
`, plugin)
}

func TestDeployTellsTheTruth(t *testing.T) {
	began := time.Now()
	u1, u2, u3 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil), startUpstream(t, "u3", nil)
	d := setUpNode(t, u1, "gw-a", "gw-b")
	apply := func(config string) {
		t.Helper()
		f := filepath.Join(d.work, "draft.yaml")
		writeFile(t, f, config)
		d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	}
	deploy := func(message string, flags ...string) []string {
		return append([]string{"deploy", "--group", nmGroup, "-m", message}, flags...)
	}
	mustMatch := func(what, text string, res ...string) {
		t.Helper()
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(text) {
				t.Errorf("%s: no line matching %s in:\n%s", what, re, text)
			}
		}
	}
	deployments := func() int {
		t.Helper()
		var ds []apitypes.Deployment
		d.cli.json(t, &ds, "deployments", "--group", nmGroup)
		return len(ds)
	}

	// A good deployment: exit 0 once both gateways applied it, so that
	// both route to u2 as soon as the command returns.
	apply(routeConfig(u2.addr))
	out := d.cli.ok(t, "", deploy("to u2")...)
	mustMatch("deploy to u2", out, `(?m)^deployed g1 #2 sha256:[0-9a-f]{64}$`, `(?m)^  gw-a: applied #2$`, `(?m)^  gw-b: applied #2$`,
		`(?m)^rolled out #2: 2/2 instances applied it$`)
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")

	// Refused by both gateways: exit non-zero, each instance named with
	// its gateway's reason; both keep serving #2.
	apply(pluginRouteConfig(u3.addr, "not-installed"))
	out, errOut, code := d.cli.run(t, "", deploy("needs a plugin")...)
	if code == 0 {
		t.Fatalf("deploy of a deployment both gateways refuse: exit 0\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	mustMatch("refused deploy, stdout", out, `(?m)^deployed g1 #3 `, `(?m)^  gw-a: refused: deployment 3 refused: .*not-installed`,
		`(?m)^  gw-b: refused: deployment 3 refused: .*not-installed`)
	// (Warnings about the missing plugin, if the admin node gives any,
	// may come first on standard error.)
	reason := `deployment 3 refused: .*plugin: no file not-installed in the plugin directory`
	mustMatch("refused deploy, stderr", errOut, `(?m)^gatehouse: roll-out of g1 #3 failed: 2 of 2 instances did not apply it\n`,
		`(?m)^  gw-a \(host h1\): refused: `+reason, `(?m)^  gw-b \(host h1\): refused: `+reason)
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")

	// --no-wait returns as soon as the deployment is made: the same
	// refused configuration, forced as #4, exits 0 without a word of the
	// roll-out (waiting, it would fail as #3 did).
	out = d.cli.ok(t, "", deploy("forced, not waited for", "--force", "--no-wait")...)
	if !regexp.MustCompile(`^deployed g1 #4 sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("deploy --no-wait said %q, want the deployed line alone", out)
	}

	// An unchanged draft: nothing deployed, exit 0, no new number.
	out = d.cli.ok(t, "", deploy("unchanged")...)
	mustMatch("deploy of an unchanged draft", out, `^nothing to deploy: the draft of group "g1" \(version \d+\) is what deployment 4 runs: nothing deployed \(--force deploys it again\)\n$`)
	if n := deployments(); n != 4 {
		t.Errorf("%d deployments after deploying an unchanged draft, want 4", n)
	}

	// A change that turns out wrong (u3), rolled back to #2: the rollback
	// waits too, and resets the draft.
	apply(routeConfig(u3.addr))
	mustMatch("deploy to u3", d.cli.ok(t, "", deploy("to u3")...), `(?m)^rolled out #5: 2/2 instances applied it$`)
	d.mustRouteTo(t, "u3", "gw-a", "gw-b")
	out = d.cli.ok(t, "", "rollback", "--group", nmGroup, "--to", "2", "-m", "u3 is the wrong one")
	mustMatch("rollback", out, `(?m)^rolled back g1 to #2: deployed #6 sha256:`, `(?m)^draft reset to the configuration of #2$`,
		`(?m)^  gw-a: applied #6$`, `(?m)^  gw-b: applied #6$`, `(?m)^rolled out #6: 2/2 instances applied it$`)
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")

	// An unrelated deploy does not ship u3 again: as it is, the draft is
	// nothing to deploy; edited elsewhere (a route renamed), it deploys
	// that edit alone.
	mustMatch("deploy after the rollback", d.cli.ok(t, "", deploy("unrelated")...), `^nothing to deploy: .*deployment 6 runs`)
	dump := d.cli.ok(t, "", "config", "dump", "--group", nmGroup)
	renamed := strings.Replace(dump, "name: all", "name: everything", 1)
	if renamed == dump {
		t.Fatalf("config dump has no route named all:\n%s", dump)
	}
	apply(renamed)
	mustMatch("unrelated deploy", d.cli.ok(t, "", deploy("rename the route")...), `(?m)^rolled out #7: 2/2 instances applied it$`)
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")
	var diff apitypes.Diff
	d.cli.json(t, &diff, "diff", "--group", nmGroup, "6", "7")
	for _, c := range diff.Changes {
		if c.Kind == "upstream" {
			t.Errorf("the unrelated deploy changed upstream %s: %+v", c.Name, c.Fields)
		}
	}
	if len(diff.Changes) == 0 {
		t.Errorf("diff 6 7 shows no change, want the route renamed")
	}

	// An instance whose node manager never reported it (host h2 has
	// none): the wait ends at --timeout, naming it.
	d.cli.ok(t, "", "host", "create", "h2")
	d.cli.ok(t, "", "instance", "create", "gw-c", "--group", nmGroup, "--host", "h2", "--listen", freeAddr(t), "--status-listen", freeAddr(t))
	apply(strings.Replace(renamed, "name: everything", "name: all-paths", 1))
	out, errOut, code = d.cli.run(t, "", deploy("with gw-c", "--timeout", "5s")...)
	if code == 0 {
		t.Fatalf("deploy with an instance that never reports: exit 0\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	mustMatch("deploy with gw-c, stdout", out, `(?m)^  gw-a: applied #8$`, `(?m)^  gw-b: applied #8$`)
	mustMatch("deploy with gw-c, stderr", errOut, `(?m)^gatehouse: roll-out of g1 #8 not complete after 5s: 1 of 3 instances did not apply it\n  gw-c \(host h2\): pending: never reported by its node manager\n$`)
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// Instances whose node manager stopped reporting (killed: its gateways
// serve on, unheard) did not report: once they are Lost Connection, deploy
// fails at once, naming both as unreachable, rather than waiting for its
// timeout.
func TestDeployNamesSilentInstances(t *testing.T) {
	began := time.Now()
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	d := newNMDomain(t, "--lost-after", "2s")
	d.joinNode(t)
	d.createInstance(t, "gw-a")
	d.createInstance(t, "gw-b")
	d.deployTo(t, u1.addr, "first")
	d.startNode(t)
	d.waitLocal(t, "both running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)

	d.node.cmd.Process.Signal(syscall.SIGKILL)
	d.node.exit(t, 10*time.Second)
	until(t, "both instances Lost Connection", func() (bool, string) {
		ins := d.adminInstances(t)
		return ins["gw-a"].Status == "Lost Connection" && ins["gw-b"].Status == "Lost Connection",
			ins["gw-a"].Status + ", " + ins["gw-b"].Status
	})

	f := filepath.Join(d.work, "u2.yaml")
	writeFile(t, f, routeConfig(u2.addr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	out, errOut, code := d.cli.run(t, "", "deploy", "--group", nmGroup, "-m", "to u2", "--timeout", "1m")
	if code == 0 {
		t.Fatalf("deploy to silent instances: exit 0\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	silent := `unreachable: Lost Connection: no heartbeat since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	want := regexp.MustCompile(`(?m)^gatehouse: roll-out of g1 #2 failed: 2 of 2 instances did not apply it\n` +
		`  gw-a \(host h1\): ` + silent + `\n  gw-b \(host h1\): ` + silent + `\n$`)
	if !want.MatchString(errOut) {
		t.Errorf("deploy to silent instances said:\n%s\nwant it to match %s", errOut, want)
	}
	if !strings.Contains(out, "  gw-a: unreachable: Lost Connection") || !strings.Contains(out, "  gw-b: unreachable: Lost Connection") {
		t.Errorf("no progress line for the silent instances:\n%s", out)
	}
	// They still serve what they had.
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}
