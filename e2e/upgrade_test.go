package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// buildVersion builds the gatehouse binary with version v into dir.
func buildVersion(t *testing.T, dir, v string) string {
	t.Helper()
	out := filepath.Join(dir, "gatehouse-"+v)
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", out, "github.com/gatehouse/gatehouse/cmd/gatehouse")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build version %s: %v\n%s", v, err, b)
	}
	return out
}

// setUpUpgrade is setUpNode with a short soak for rolling upgrades and a
// short wait for a replacement's readiness.
func setUpUpgrade(t *testing.T, up *upstream, names ...string) *nmDomain {
	t.Helper()
	d := newNMDomain(t, "--rollout-soak", "1s")
	d.joinNode(t)
	for _, name := range names {
		d.createInstance(t, name)
	}
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.startNode(t, "--gateway-ready-timeout", "10s")
	d.waitLocal(t, "every instance running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)
	return d
}

// runsRelease checks that pid runs the binary of release version (under
// the node manager's releases directory) and that it says so.
func (d *nmDomain) runsRelease(t *testing.T, name string, pid int, version string) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatalf("%s (pid %d): %v", name, pid, err)
	}
	if !strings.HasPrefix(exe, filepath.Join(d.nodeDir, "releases", version+"-")) {
		t.Errorf("%s (pid %d) runs %s, not release %s", name, pid, exe, version)
		return
	}
	out, err := exec.Command(exe, "--version").Output()
	if err != nil || !strings.Contains(string(out), "gatehouse version "+version+" ") {
		t.Errorf("%s runs %s, which says %q (%v), want version %s", name, exe, out, err, version)
	}
}

func (d *nmDomain) groupGateway(t *testing.T) apitypes.GroupGateway {
	t.Helper()
	var gw apitypes.GroupGateway
	d.cli.json(t, &gw, "group", "gateway", nmGroup)
	return gw
}

// TestRollingUpgradeWithoutDowntime: a group of two instances under
// continuous load moves from the node manager's binary to release A, then
// from A to B (two builds with different version strings), one instance
// at a time: not one request fails, every instance ends on B under a new
// process, and the rollouts are in the group's history and the audit log.
func TestRollingUpgradeWithoutDowntime(t *testing.T) {
	bins := t.TempDir()
	a, b := buildVersion(t, bins, "9.1.0-a"), buildVersion(t, bins, "9.2.0-b")
	up := startUpstream(t, "one", nil)
	d := setUpUpgrade(t, up, "web-1", "web-2")
	for v, f := range map[string]string{"9.1.0-a": a, "9.2.0-b": b} {
		out := d.cli.ok(t, "", "release", "upload", f, "--version", v)
		if !strings.Contains(out, "Release "+v+" stored") {
			t.Fatalf("release upload said %q", out)
		}
	}
	before := d.waitLocal(t, "both instances running", d.appliedEverywhere(1))

	l := startTrafficLoad(t, d.instances["web-1"][0], d.instances["web-2"][0])
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "9.1.0-a", "--wait", "--timeout", "3m")
	onA := d.waitLocal(t, "both instances on new processes", func(v map[string]localapi.InstanceView) bool {
		return v["web-1"].Ready && v["web-2"].Ready && v["web-1"].PID != before["web-1"].PID && v["web-2"].PID != before["web-2"].PID
	})
	for _, name := range []string{"web-1", "web-2"} {
		d.runsRelease(t, name, onA[name].PID, "9.1.0-a")
	}
	counted, _ = l.counts()
	l.waitServed(t, counted, 50)
	out := d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "9.2.0-b", "--wait", "--timeout", "3m")
	if !strings.Contains(out, "9.2.0-b") {
		t.Errorf("group update --wait said %q", out)
	}
	counted, _ = l.counts()
	l.waitServed(t, counted, 50)
	served := l.checkNoFailure(t)
	t.Logf("requests served during the two rolling upgrades: %v", served)

	onB := d.waitLocal(t, "both instances on new processes again", func(v map[string]localapi.InstanceView) bool {
		return v["web-1"].Ready && v["web-2"].Ready && v["web-1"].PID != onA["web-1"].PID && v["web-2"].PID != onA["web-2"].PID
	})
	for _, name := range []string{"web-1", "web-2"} {
		d.runsRelease(t, name, onB[name].PID, "9.2.0-b")
	}
	gw := d.groupGateway(t)
	if gw.Version != "9.2.0-b" || gw.Instances["web-1"] != "9.2.0-b" || gw.Instances["web-2"] != "9.2.0-b" {
		t.Errorf("group gateway after the upgrade: %+v", gw)
	}
	if r := gw.Rollout; r == nil || r.ID != 2 || r.From != "9.1.0-a" || r.To != "9.2.0-b" || r.State != "done" ||
		!slices.Equal(r.Done, []string{"web-1", "web-2"}) || r.By != "admin" {
		t.Errorf("rollout: %+v", gw.Rollout)
	} else {
		// One instance at a time: web-2's batch starts after web-1 passed.
		var steps []string
		for _, e := range r.Events {
			if e.Instance != "" {
				steps = append(steps, e.Instance+" "+strings.Fields(e.What)[0])
			}
		}
		want := []string{"web-1 replacing", "web-1 ready", "web-1 upgraded", "web-2 replacing", "web-2 ready", "web-2 upgraded"}
		if !slices.Equal(steps, want) {
			t.Errorf("rollout steps %q, want %q", steps, want)
		}
		// Each soak compared the new processes' 5xx rate with the old
		// ones', from the totals the heartbeats carry.
		compared := 0
		for _, e := range r.Events {
			if strings.HasPrefix(e.What, "5xx over the soak: 0.0% of ") {
				compared++
			}
		}
		if compared != 2 {
			t.Errorf("%d soaks compared error rates, want 2: %+v", compared, r.Events)
		}
	}
	if len(gw.History) != 1 || gw.History[0].To != "9.1.0-a" || gw.History[0].State != "done" {
		t.Errorf("history: %+v", gw.History)
	}
	// A release a group runs cannot go; one no group needs can.
	_, errOut := d.cli.fail(t, "", "release", "delete", "9.2.0-b")
	if !strings.Contains(errOut, `gateway release of group "g1"`) {
		t.Errorf("deleting the release in use said %q", errOut)
	}
	d.cli.ok(t, "", "release", "delete", "9.1.0-a")

	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--group", nmGroup)
	var got []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "group.gateway") {
			got = append(got, e.User+" "+e.Action+" "+e.Result)
		}
	}
	want := []string{"system group.gateway.rollout ok", "admin group.gateway.update ok", "system group.gateway.rollout ok", "admin group.gateway.update ok"}
	if !slices.Equal(got, want) {
		t.Errorf("audit: %q, want %q", got, want)
	}
}

// TestRollingUpgradeRollsBack: a release whose gateway fails readiness —
// a wrapper that exits at once, or one that never gets ready (real
// processes both) — is rolled back to the release the group ran,
// automatically and under load without a failed request; the instance it
// was tried on kept its process.
func TestRollingUpgradeRollsBack(t *testing.T) {
	tests := []struct {
		name, script, why string
	}{
		{"exits", "#!/bin/sh\necho 'broken release: exiting' >&2\nexit 3\n", "exited before it was ready"},
		{"never ready", "#!/bin/sh\necho 'broken release: hanging' >&2\nexec sleep 300\n", "was not ready within 10s"},
	}
	bins := t.TempDir()
	a := buildVersion(t, bins, "9.1.0-a")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testRollback(t, a, brokenRelease(t, tc.script), tc.why)
		})
	}
}

func testRollback(t *testing.T, a, broken, why string) {
	t.Helper()
	d, l, onA := onReleaseUnderLoad(t, a, broken)
	// Progress goes to stderr before the error.
	_, errOut, code := d.cli.run(t, "", "group", "update", nmGroup, "--gateway-version", "9.9.9-broken", "--wait", "--timeout", "3m")
	if code != 1 || !strings.Contains(errOut, "gatehouse: rollout 2 of group g1 rolled back to release 9.1.0-a") || !strings.Contains(errOut, why) {
		t.Errorf("group update --wait: exit %d, said %q", code, errOut)
	}
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	served := l.checkNoFailure(t)
	t.Logf("requests served during the failed upgrade: %v", served)

	now, err := d.localInstances(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2"} {
		if now[name].PID != onA[name].PID || !now[name].Ready {
			t.Errorf("%s: %+v, want still pid %d, ready", name, now[name], onA[name].PID)
		}
		d.runsRelease(t, name, now[name].PID, "9.1.0-a")
	}
	gw := d.groupGateway(t)
	if r := gw.Rollout; gw.Version != "9.1.0-a" || r == nil || r.State != "rolled-back" || r.To != "9.9.9-broken" ||
		len(r.Done) != 0 || !strings.Contains(r.Error, "web-1") {
		t.Errorf("group gateway after the failed upgrade: %+v", gw)
	}
	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--action", "group.gateway.rollback")
	if len(entries) != 1 || entries[0].User != "system" || entries[0].Result != "error" {
		t.Errorf("audit of the rollback: %+v", entries)
	}
	// The group can move on: the failed attempt left no error standing.
	d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "", "--wait", "--timeout", "3m")
}

// TestRollingUpgradePauses: a rollout asked to pause on failure stops
// where the failed batch left it, under load without a failed request,
// says how to go on, and rolls back when asked — a success then.
func TestRollingUpgradePauses(t *testing.T) {
	bins := t.TempDir()
	a := buildVersion(t, bins, "9.1.0-a")
	broken := brokenRelease(t, "#!/bin/sh\necho 'broken release: exiting' >&2\nexit 3\n")
	d, l, onA := onReleaseUnderLoad(t, a, broken)
	_, errOut, code := d.cli.run(t, "", "group", "update", nmGroup, "--gateway-version", "9.9.9-broken", "--on-failure", "pause", "--wait", "--timeout", "3m")
	if code != 1 || !strings.Contains(errOut, "rollout 2 of group g1 paused with 0 instance(s) on release 9.9.9-broken") ||
		!strings.Contains(errOut, "resume it with --gateway-version 9.9.9-broken, or roll it back with --gateway-version 9.1.0-a") {
		t.Errorf("group update --on-failure pause --wait: exit %d, said %q", code, errOut)
	}
	gw := d.groupGateway(t)
	if r := gw.Rollout; r == nil || r.State != "paused" || r.OnFailure != "pause" || !strings.Contains(r.Error, "exited before it was ready") {
		t.Errorf("group gateway after the failed batch: %+v", gw)
	}
	_, errOut = d.cli.fail(t, "", "group", "update", nmGroup, "--gateway-version", "")
	if !strings.Contains(errOut, "is paused between release") {
		t.Errorf("another release while paused said %q", errOut)
	}

	d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "9.1.0-a", "--wait", "--timeout", "3m")
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	served := l.checkNoFailure(t)
	t.Logf("requests served during the paused upgrade: %v", served)
	if gw := d.groupGateway(t); gw.Version != "9.1.0-a" || gw.Rollout == nil || gw.Rollout.State != "rolled-back" {
		t.Errorf("group gateway after rolling back: %+v", gw)
	}
	now, err := d.localInstances(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2"} {
		if now[name].PID != onA[name].PID || !now[name].Ready {
			t.Errorf("%s: %+v, want still pid %d, ready", name, now[name], onA[name].PID)
		}
	}
	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--action", "group.gateway.pause")
	if len(entries) != 1 || entries[0].User != "system" || entries[0].Result != "error" {
		t.Errorf("audit of the pause: %+v", entries)
	}
}

// brokenRelease writes script as an executable file to upload as a
// release that fails.
func brokenRelease(t *testing.T, script string) string {
	t.Helper()
	broken := filepath.Join(t.TempDir(), "broken")
	writeFile(t, broken, script)
	if err := os.Chmod(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	return broken
}

// onReleaseUnderLoad sets up a group of two instances with releases
// 9.1.0-a (a) and 9.9.9-broken (broken) uploaded, moves it to a, and
// starts a load that has been served: the start of a failing upgrade.
func onReleaseUnderLoad(t *testing.T, a, broken string) (*nmDomain, *trafficLoad, map[string]localapi.InstanceView) {
	t.Helper()
	up := startUpstream(t, "one", nil)
	d := setUpUpgrade(t, up, "web-1", "web-2")
	d.cli.ok(t, "", "release", "upload", a, "--version", "9.1.0-a")
	d.cli.ok(t, "", "release", "upload", broken, "--version", "9.9.9-broken")
	d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "9.1.0-a", "--wait", "--timeout", "3m")
	onA := d.waitLocal(t, "both instances ready on A", func(v map[string]localapi.InstanceView) bool {
		return v["web-1"].Ready && v["web-2"].Ready
	})
	l := startTrafficLoad(t, d.instances["web-1"][0], d.instances["web-2"][0])
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	return d, l, onA
}
