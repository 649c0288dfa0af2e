package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/nspawn"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// The systemd driver and the node manager's unit under a real systemd: a
// minimal Debian booted with systemd as PID 1 in systemd-nspawn
// (internal/nspawn), the admin node on the host, the node manager inside
// as the unit `gatehouse node unit --driver systemd` prints, enabled and
// started by systemd. The container shares the host's network: the node
// manager reaches the admin node on the host's loopback, and the test
// reaches the gateways' ports.

// sdNodeDir is the node manager's data dir inside the container.
const sdNodeDir = "/var/lib/gatehouse/node"

// sdHost is a booted container with the gatehouse binary in it.
type sdHost struct {
	m *nspawn.Machine
}

// run runs a command inside the container and returns its standard
// output, failing the test when it fails.
func (h *sdHost) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.m.Run(ctx, name, args...)
	if err != nil {
		// The journal printed when the test ends is long and cut in CI's
		// excerpt: the failed unit's own lines come with the error.
		if name == "systemctl" && len(args) == 2 && slices.Contains([]string{"start", "restart", "stop"}, args[0]) {
			j, _ := h.m.Run(context.Background(), "journalctl", "--no-pager", "-o", "short-precise", "-n", "40", "-u", args[1])
			t.Fatalf("%v\njournal of %s:\n%s", err, args[1], j)
		}
		t.Fatal(err)
	}
	return string(out)
}

// show reads properties of a unit with `systemctl show`.
func (h *sdHost) show(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	out := h.run(t, "systemctl", "show", "--property="+strings.Join(props, ","), unit)
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	return got
}

// procStatus reads fields of /proc/PID/status inside the container (pid
// as the container numbers it).
func (h *sdHost) procStatus(t *testing.T, pid string) map[string]string {
	t.Helper()
	out := h.run(t, "cat", "/proc/"+pid+"/status")
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got
}

func gatewayUnit(name string) string { return "gatehouse-gateway@" + name + ".service" }

const nodeUnit = "gatehouse-node.service"

// TestSystemdNode: everything issue 17 asks of the systemd driver, in one
// booted container (booting is the expensive part).
func TestSystemdNode(t *testing.T) {
	// Most of its time is spent waiting on systemd's watchdog.
	t.Parallel()
	began := time.Now()
	h := bootSdHost(t)
	up1 := startUpstream(t, "up1", nil)
	d := newNMDomain(t)
	// Gateways run in the container: the test never signals a pid it sees
	// (they are the container's numbers), and the container's halt ends
	// them.
	d.nodeDir = sdNodeDir
	d.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: sdNodeDir}
	tok := d.joinToken(t, "h1") // makes host h1
	d.createInstance(t, "sd-a")
	d.createInstance(t, "sd-b")
	if n := d.deployTo(t, up1.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}

	// Joined and installed as an operator does, inside the container.
	if out := h.run(t, "gatehouse", "node", "join", "--addr", d.url, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", sdNodeDir); !strings.Contains(out, "Joined domain e2e as host h1") {
		t.Fatalf("node join said %q", out)
	}
	d.nodeAddr = freeAddr(t)
	unit := h.run(t, "gatehouse", "node", "unit", "--driver", "systemd", "--data-dir", sdNodeDir, "--",
		"--listen", d.nodeAddr, "--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s", "--log-level", "debug")
	if err := os.WriteFile(h.m.Path("/etc/systemd/system/"+nodeUnit), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	h.run(t, "systemctl", "daemon-reload")
	nodeStarted := time.Now()
	// Type=notify: `systemctl start` returns once the node manager said
	// READY=1, which it says once its local API serves and the stored
	// instances are started.
	h.run(t, "systemctl", "enable", "--now", nodeUnit)
	mustHealthy := func(what string) {
		t.Helper()
		resp, err := http.Get("http://" + d.nodeAddr + "/healthz")
		if err != nil {
			t.Fatalf("%s: the node manager's local API does not answer: %v", what, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /healthz %d", what, resp.StatusCode)
		}
	}
	mustHealthy("right after systemctl start returned")
	nodeProps := h.show(t, nodeUnit, "ActiveState", "SubState", "Type", "NotifyAccess", "WatchdogUSec", "KillMode", "UnitFileState", "MainPID", "NRestarts")
	for k, want := range map[string]string{"ActiveState": "active", "SubState": "running", "Type": "notify", "NotifyAccess": "main",
		"WatchdogUSec": "30s", "KillMode": "process", "UnitFileState": "enabled", "NRestarts": "0"} {
		if nodeProps[k] != want {
			t.Errorf("%s: %s=%s, want %s", nodeUnit, k, nodeProps[k], want)
		}
	}
	nodePID := nodeProps["MainPID"]

	views := d.waitLocal(t, "both gateways running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)
	d.mustRouteTo(t, "up1", "sd-a", "sd-b")
	t.Logf("node manager and two gateways up %s after the test began", time.Since(began).Round(time.Millisecond))

	// Each gateway is its unit's main process, with the hardening of
	// docs/node-manager.md, as systemd reads the unit and as the kernel
	// sees the process.
	for _, name := range []string{"sd-a", "sd-b"} {
		p := h.show(t, gatewayUnit(name), "ActiveState", "SubState", "MainPID", "UnitFileState", "User", "DynamicUser",
			"NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
			"ProtectControlGroups", "RestrictSUIDSGID", "MemoryDenyWriteExecute", "StateDirectory", "WorkingDirectory",
			"Restart", "KillMode", "SyslogIdentifier")
		for k, want := range map[string]string{"ActiveState": "active", "SubState": "running", "UnitFileState": "enabled",
			"User": "gatehouse-gateway", "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
			"PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
			"RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes", "StateDirectory": "gatehouse-gateway/" + name,
			"WorkingDirectory": "/var/lib/gatehouse-gateway/" + name, "Restart": "on-failure", "KillMode": "mixed",
			"SyslogIdentifier": "gatehouse-gateway-" + name} {
			if p[k] != want {
				t.Errorf("%s: %s=%s, want %s", gatewayUnit(name), k, p[k], want)
			}
		}
		if p["MainPID"] != strconv.Itoa(views[name].PID) {
			t.Errorf("%s: MainPID %s, the node manager shows pid %d", gatewayUnit(name), p["MainPID"], views[name].PID)
		}
		st := h.procStatus(t, p["MainPID"])
		if uid := strings.Fields(st["Uid"]); len(uid) == 0 || uid[0] == "0" {
			t.Errorf("%s runs as uid %q", name, st["Uid"])
		}
		// CAP_NET_BIND_SERVICE (bit 10) is the one capability left.
		if st["CapEff"] != "0000000000000400" || st["CapBnd"] != "0000000000000400" || st["NoNewPrivs"] != "1" {
			t.Errorf("%s: CapEff %s CapBnd %s NoNewPrivs %s", name, st["CapEff"], st["CapBnd"], st["NoNewPrivs"])
		}
		// Its data dir is its unit's state directory, which it owns.
		owner := strings.TrimSpace(h.run(t, "stat", "-L", "-c", "%u %a", "/var/lib/gatehouse-gateway/"+name+"/gateway.db"))
		if want := strings.Fields(st["Uid"])[0] + " 600"; owner != want {
			t.Errorf("%s: gateway.db owner and mode %q, want %q", name, owner, want)
		}
	}

	// A gateway killed outright: systemd restarts it, and it serves its
	// deployment again.
	killed := views["sd-a"].PID
	h.run(t, "systemctl", "kill", "--signal=KILL", gatewayUnit("sd-a"))
	views = d.waitLocal(t, "sd-a restarted by systemd, serving deployment #1", func(v map[string]localapi.InstanceView) bool {
		in := v["sd-a"]
		return in.PID != 0 && in.PID != killed && in.Restarts >= 1 && in.Process == localapi.ProcessRunning &&
			in.AppliedDeployment == 1 && in.Ready && freshlyReported(in)
	})
	if p := h.show(t, gatewayUnit("sd-a"), "NRestarts", "MainPID", "ActiveState"); p["NRestarts"] != "1" || p["MainPID"] != strconv.Itoa(views["sd-a"].PID) || p["ActiveState"] != "active" {
		t.Errorf("after the kill: %v, the node manager shows pid %d", p, views["sd-a"].PID)
	}
	d.mustRouteTo(t, "up1", "sd-a", "sd-b")

	// A deployment reaches both.
	up2 := startUpstream(t, "up2", nil)
	if n := d.deployTo(t, up2.addr, "second"); n != 2 {
		t.Fatalf("second deployment is #%d", n)
	}
	d.waitLocal(t, "both gateways running deployment #2", d.appliedEverywhere(2))
	d.waitRolledOut(t, 2)
	d.mustRouteTo(t, "up2", "sd-a", "sd-b")

	// Each gateway's log is in the journal, under its unit.
	for _, name := range []string{"sd-a", "sd-b"} {
		journal := h.run(t, "journalctl", "--no-pager", "-o", "cat", "-u", gatewayUnit(name))
		other := d.instances[map[string]string{"sd-a": "sd-b", "sd-b": "sd-a"}[name]][0]
		if !strings.Contains(journal, "gateway serving") || !strings.Contains(journal, d.instances[name][0]) ||
			!strings.Contains(journal, "deployment applied") || strings.Contains(journal, other) {
			t.Errorf("journal of %s (listening on %s) lacks its start or its deployment, or shows %s's address:\n%s", gatewayUnit(name), d.instances[name][0], other, journal)
		}
	}

	// The node manager's unit stopped: the gateways keep serving
	// (KillMode=process; they are units of their own anyway).
	before := h.gatewayPIDs(t)
	h.run(t, "systemctl", "stop", nodeUnit)
	if p := h.show(t, nodeUnit, "ActiveState"); p["ActiveState"] != "inactive" {
		t.Fatalf("%s after stop: %v", nodeUnit, p)
	}
	waitfor.Holds(t, 3*time.Second, "gateways serving without their node manager", func() (bool, string) {
		for _, name := range []string{"sd-a", "sd-b"} {
			if got, err := d.through(name, "/alone"); err != nil || got != "up2" {
				return false, fmt.Sprintf("through %s: %q %v", name, got, err)
			}
		}
		if now := h.gatewayPIDs(t); now != before {
			return false, fmt.Sprintf("gateway pids %v, were %v", now, before)
		}
		return true, ""
	})
	// Started again, it adopts them: same processes, no restart.
	restarted := time.Now()
	h.run(t, "systemctl", "start", nodeUnit)
	mustHealthy("right after the node manager's restart")
	nodeStarted = restarted
	d.waitLocal(t, "the gateways adopted, reporting deployment #2", d.appliedEverywhere(2))
	if now := h.gatewayPIDs(t); now != before {
		t.Errorf("gateways after the node manager's restart: %v, were %v", now, before)
	}
	d.mustRouteTo(t, "up2", "sd-a", "sd-b")
	nodePID = h.show(t, nodeUnit, "MainPID")["MainPID"]

	// An instance removed at the admin node: its unit stopped and
	// disabled, its environment file (with its secret) gone; the other
	// serves on.
	d.cli.ok(t, "", "instance", "delete", "sd-b")
	addrB := d.instances["sd-b"][0]
	delete(d.instances, "sd-b")
	until(t, "sd-b's unit stopped and disabled, its environment file removed", func() (bool, string) {
		p := h.show(t, gatewayUnit("sd-b"), "ActiveState", "UnitFileState")
		_, err := os.Stat(h.m.Path("/etc/gatehouse/gateway/sd-b.env"))
		return p["ActiveState"] == "inactive" && p["UnitFileState"] == "disabled" && os.IsNotExist(err), fmt.Sprint(p, err)
	})
	if _, err := noKeepAlive.Get("http://" + addrB + "/gone"); err == nil {
		t.Errorf("sd-b's port %s still answers", addrB)
	}
	d.waitLocal(t, "sd-b forgotten", func(v map[string]localapi.InstanceView) bool { _, ok := v["sd-b"]; return !ok && len(v) == 1 })
	d.mustRouteTo(t, "up2", "sd-a")

	// The watchdog: a node manager that runs pings it (not restarted past
	// WatchdogSec=30s), one that hangs is restarted by systemd within
	// WatchdogSec plus the stop timeout (SIGABRT, then SIGKILL after
	// TimeoutStopSec=15s to a process that cannot take it), and the new
	// one adopts the gateway.
	const watchdog, abort = 30 * time.Second, 15 * time.Second
	if rest := watchdog + 3*time.Second - time.Since(nodeStarted); rest > 0 {
		waitfor.Holds(t, rest, "the node manager alive past WatchdogSec", func() (bool, string) {
			p := h.show(t, nodeUnit, "MainPID", "NRestarts", "ActiveState")
			return p["MainPID"] == nodePID && p["ActiveState"] == "active", fmt.Sprint(p)
		})
	}
	before = h.gatewayPIDs(t)
	restartsBefore := h.show(t, nodeUnit, "NRestarts")["NRestarts"]
	h.run(t, "systemctl", "kill", "--kill-whom=main", "--signal=STOP", nodeUnit)
	stopped := time.Now()
	waitfor.Cond(t, watchdog+abort+15*time.Second, "systemd's watchdog restarting the hung node manager", func() (bool, string) {
		p := h.show(t, nodeUnit, "MainPID", "NRestarts", "ActiveState", "SubState")
		return p["ActiveState"] == "active" && p["SubState"] == "running" && p["MainPID"] != nodePID && p["NRestarts"] != restartsBefore, fmt.Sprint(p)
	})
	took := time.Since(stopped)
	t.Logf("the watchdog restarted the stopped node manager after %s", took.Round(time.Millisecond))
	if took > watchdog+abort+5*time.Second {
		t.Errorf("restart took %s, more than WatchdogSec and TimeoutStopSec", took)
	}
	if journal := h.run(t, "journalctl", "--no-pager", "-o", "cat", "-u", nodeUnit); !strings.Contains(journal, "Watchdog timeout") {
		t.Errorf("no watchdog timeout in the journal of %s:\n%s", nodeUnit, journal)
	}
	mustHealthy("after the watchdog's restart")
	d.waitLocal(t, "sd-a adopted again, reporting deployment #2", d.appliedEverywhere(2))
	if now := h.gatewayPIDs(t); now != before {
		t.Errorf("gateways after the watchdog's restart: %v, were %v", now, before)
	}
	d.mustRouteTo(t, "up2", "sd-a")

	// Nothing systemd had to refuse or correct: no notify message from a
	// process other than the node manager (those it starts must not
	// inherit its socket), no warning about the units' files.
	for _, line := range strings.Split(h.run(t, "journalctl", "--no-pager", "-o", "cat", "-p", "warning"), "\n") {
		if strings.Contains(line, "notify message") || strings.Contains(line, "notification message") ||
			strings.Contains(line, "/etc/systemd/system/gatehouse") {
			t.Errorf("systemd warned: %s", line)
		}
	}

	// A reboot: the enabled units start by themselves, the gateway serves
	// its deployment, the removed instance stays down.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rebooted := time.Now()
	if err := h.m.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	d.waitLocal(t, "sd-a running deployment #2 after the reboot", d.appliedEverywhere(2))
	t.Logf("after the reboot, sd-a serves again through its node manager %s after the reboot began", time.Since(rebooted).Round(time.Millisecond))
	d.mustRouteTo(t, "up2", "sd-a")
	for unit, want := range map[string]string{nodeUnit: "active enabled", gatewayUnit("sd-a"): "active enabled", gatewayUnit("sd-b"): "inactive disabled"} {
		if p := h.show(t, unit, "ActiveState", "UnitFileState"); p["ActiveState"]+" "+p["UnitFileState"] != want {
			t.Errorf("after the reboot %s: %v, want %s", unit, p, want)
		}
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// gatewayPIDs is the main pid of every gateway unit, as one comparable
// string.
func (h *sdHost) gatewayPIDs(t *testing.T) string {
	t.Helper()
	out := h.run(t, "systemctl", "show", "--property=Id,MainPID", "gatehouse-gateway@*")
	return strings.Join(strings.Fields(out), " ")
}

func gatewayUnitB(name string) string { return "gatehouse-gateway-b@" + name + ".service" }

// sdGatewayWrapper is the gateway binary of TestSystemdRestartWithoutDowntime:
// the gatehouse binary, except that while /etc/gatehouse/never-ready
// exists a process started with --takeover (a replacement) never gets
// ready.
const sdGatewayWrapper = `#!/bin/sh
if [ -e /etc/gatehouse/never-ready ]; then
	for a in "$@"; do
		if [ "$a" = --takeover ]; then
			echo 'replacement: never ready' >&2
			exec sleep 300
		fi
	done
fi
exec /usr/local/bin/gatehouse "$@"
`

// TestSystemdRestartWithoutDowntime: under a real systemd, `instance
// restart` of a gateway under continuous load starts the new process in
// the instance's other unit (gatehouse-gateway-b@), which takes over the
// sockets; the old unit drains and stops, the new one is enabled; not one
// request fails. The node manager restarted adopts the unit that serves
// (slot b) without restarting it; the next restart goes back to slot a; a
// replacement that never gets ready is stopped, the old process serving
// on, with the error shown; a rolling upgrade to a release moves it to a
// copy of the release's binary the gateway's user can run, in the other
// slot; one to a release that fails is rolled back, the process serving.
func TestSystemdRestartWithoutDowntime(t *testing.T) {
	t.Parallel()
	release := buildVersion(t, t.TempDir(), "9.1.0-sd")
	h := bootSdHost(t)
	if err := os.WriteFile(h.m.Path("/usr/local/bin/gatehouse-gw"), []byte(sdGatewayWrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t, "one", nil)
	d := newNMDomain(t, "--rollout-soak", "1s")
	d.nodeDir = sdNodeDir
	d.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: sdNodeDir}
	tok := d.joinToken(t, "h1")
	d.createInstance(t, "sd-z")
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	h.run(t, "gatehouse", "node", "join", "--addr", d.url, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", sdNodeDir)
	d.nodeAddr = freeAddr(t)
	unit := h.run(t, "gatehouse", "node", "unit", "--driver", "systemd", "--data-dir", sdNodeDir, "--",
		"--listen", d.nodeAddr, "--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s",
		"--gateway-binary", "/usr/local/bin/gatehouse-gw", "--gateway-ready-timeout", "15s")
	if err := os.WriteFile(h.m.Path("/etc/systemd/system/"+nodeUnit), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	h.run(t, "systemctl", "daemon-reload")
	h.run(t, "systemctl", "enable", "--now", nodeUnit)
	before := d.waitLocal(t, "sd-z running deployment #1", d.appliedEverywhere(1))["sd-z"]
	d.mustRouteTo(t, "one", "sd-z")

	// units waits until the instance's two units are as want says
	// (ActiveState, and whether it starts at boot), slot a first.
	// `systemctl is-enabled` reads the links; systemd's UnitFileState of
	// a loaded unit may be the one it read before `enable --no-reload`.
	unitState := func(unit string) string {
		out, _ := h.m.Run(context.Background(), "systemctl", "is-enabled", unit) // exit status 1 when disabled
		return h.show(t, unit, "ActiveState")["ActiveState"] + " " + strings.TrimSpace(string(out))
	}
	units := func(what string, a, b string) {
		t.Helper()
		until(t, what, func() (bool, string) {
			got := [2]string{unitState(gatewayUnit("sd-z")), unitState(gatewayUnitB("sd-z"))}
			return got == [2]string{a, b}, fmt.Sprintf("%s: %s, %s: %s", gatewayUnit("sd-z"), got[0], gatewayUnitB("sd-z"), got[1])
		})
	}
	units("sd-z in slot a", "active enabled", "inactive disabled")

	l := startTrafficLoad(t, d.instances["sd-z"][0])
	counted, _ := l.counts()
	l.waitServed(t, counted, 50)
	// restart restarts sd-z with the CLI, from the process prev, into
	// unit to, and returns the new process's view.
	restart := func(prev localapi.InstanceView, to string) localapi.InstanceView {
		t.Helper()
		out := d.cli.ok(t, "", "instance", "restart", "sd-z", "--timeout", "60s")
		if !strings.Contains(out, "Instance sd-z is ready again") {
			t.Fatalf("instance restart said %q", out)
		}
		now := d.waitLocal(t, "sd-z ready under a new process", func(v map[string]localapi.InstanceView) bool {
			w := v["sd-z"]
			return w.PID != 0 && w.PID != prev.PID && w.Ready && freshlyReported(w)
		})["sd-z"]
		if p := h.show(t, to, "MainPID"); p["MainPID"] != strconv.Itoa(now.PID) {
			t.Errorf("%s: MainPID %s, the node manager shows pid %d", to, p["MainPID"], now.PID)
		}
		// A takeover, not a stop and a start.
		journal := h.run(t, "journalctl", "--no-pager", "-o", "cat", "-u", to)
		if want := fmt.Sprintf("serving on the sockets taken over; the replaced gateway drains: pid=%d", prev.PID); !strings.Contains(journal, want) {
			t.Errorf("the journal of %s does not say %q:\n%s", to, want, journal)
		}
		counted, _ := l.counts()
		l.waitServed(t, counted, 50)
		return now
	}
	inB := restart(before, gatewayUnitB("sd-z"))
	units("sd-z moved to slot b, slot a stopped", "inactive disabled", "active enabled")
	t.Logf("sd-z: pid %d (%s) → %d (%s)", before.PID, gatewayUnit("sd-z"), inB.PID, gatewayUnitB("sd-z"))

	// The node manager restarted adopts slot b's unit: same process.
	h.run(t, "systemctl", "restart", nodeUnit)
	d.waitLocal(t, "sd-z adopted and reporting", func(v map[string]localapi.InstanceView) bool {
		return v["sd-z"].PID == inB.PID && v["sd-z"].Ready && freshlyReported(v["sd-z"])
	})
	waitfor.Holds(t, 3*time.Second, "sd-z not restarted after the node manager's restart", func() (bool, string) {
		v, err := d.localInstances(t)
		if err != nil {
			return false, err.Error()
		}
		p := h.show(t, gatewayUnitB("sd-z"), "MainPID", "ActiveState")
		return v["sd-z"].PID == inB.PID && p["MainPID"] == strconv.Itoa(inB.PID), fmt.Sprintf("pid %d, %s %v", v["sd-z"].PID, gatewayUnitB("sd-z"), p)
	})
	units("sd-z still in slot b", "inactive disabled", "active enabled")

	// Back to slot a.
	inA := restart(inB, gatewayUnit("sd-z"))
	units("sd-z back in slot a", "active enabled", "inactive disabled")

	// A replacement that never gets ready: stopped after the ready
	// timeout; the old process serves on, the error shown.
	if err := os.WriteFile(h.m.Path("/etc/gatehouse/never-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := d.cli.ok(t, "", "instance", "restart", "sd-z", "--no-wait"); !strings.Contains(out, "Restart of instance sd-z requested") {
		t.Errorf("instance restart --no-wait said %q", out)
	}
	until(t, "slot b started for the replacement", func() (bool, string) {
		journal := h.run(t, "journalctl", "--no-pager", "-o", "cat", "-u", gatewayUnitB("sd-z"))
		return strings.Contains(journal, "replacement: never ready"), "not yet"
	})
	d.waitLocal(t, "the failed replacement shown", func(v map[string]localapi.InstanceView) bool {
		return strings.Contains(v["sd-z"].LastError, "was not ready within 15s")
	})
	units("sd-z serving on in slot a, the replacement stopped", "active enabled", "inactive disabled")
	counted, _ = l.counts()
	l.waitServed(t, counted, 50)
	v, err := d.localInstances(t)
	if err != nil {
		t.Fatal(err)
	}
	if v["sd-z"].PID != inA.PID || v["sd-z"].Process != localapi.ProcessRunning {
		t.Errorf("after the failed replacement: %+v, want pid %d running", v["sd-z"], inA.PID)
	}
	if p := h.show(t, gatewayUnit("sd-z"), "MainPID"); p["MainPID"] != strconv.Itoa(inA.PID) {
		t.Errorf("%s: MainPID %s, want %d", gatewayUnit("sd-z"), p["MainPID"], inA.PID)
	}

	// A rolling upgrade to a release: the node manager keeps the binary
	// in its data dir, which the gateway's user cannot enter; slot b's
	// unit runs a copy of it, named in a drop-in.
	if err := os.Remove(h.m.Path("/etc/gatehouse/never-ready")); err != nil {
		t.Fatal(err)
	}
	d.cli.ok(t, "", "release", "upload", release, "--version", "9.1.0-sd")
	d.cli.ok(t, "", "group", "update", nmGroup, "--gateway-version", "9.1.0-sd", "--wait", "--timeout", "3m")
	onRelease := d.waitLocal(t, "sd-z ready on the release", func(v map[string]localapi.InstanceView) bool {
		w := v["sd-z"]
		return w.PID != 0 && w.PID != inA.PID && w.Ready && freshlyReported(w) && w.GatewayVersion == "9.1.0-sd"
	})["sd-z"]
	units("sd-z on the release in slot b", "inactive disabled", "active enabled")
	exe := strings.TrimSpace(h.run(t, "readlink", fmt.Sprintf("/proc/%d/exe", onRelease.PID)))
	if !strings.HasPrefix(exe, "/var/lib/gatehouse-gateway-releases/") {
		t.Errorf("sd-z runs %s, want a copy in /var/lib/gatehouse-gateway-releases", exe)
	}
	if out := h.run(t, exe, "--version"); !strings.Contains(out, "gatehouse version 9.1.0-sd ") {
		t.Errorf("%s --version: %q", exe, out)
	}
	dropIn := h.run(t, "systemctl", "cat", gatewayUnitB("sd-z"))
	if !strings.Contains(dropIn, "ExecStart="+exe+" $GATEHOUSE_GATEWAY_ARGS") {
		t.Errorf("systemctl cat %s:\n%s", gatewayUnitB("sd-z"), dropIn)
	}
	counted, _ = l.counts()
	l.waitServed(t, counted, 50)

	// A rolling upgrade to a release whose gateway exits at once: tried
	// in slot a, rolled back to 9.1.0-sd automatically, slot b's process
	// serving throughout.
	d.cli.ok(t, "", "release", "upload", brokenRelease(t, "#!/bin/sh\necho 'broken release: exiting' >&2\nexit 3\n"), "--version", "9.9.9-broken")
	_, errOut, code := d.cli.run(t, "", "group", "update", nmGroup, "--gateway-version", "9.9.9-broken", "--wait", "--timeout", "3m")
	if code != 1 || !strings.Contains(errOut, "rolled back to release 9.1.0-sd") || !strings.Contains(errOut, "exited before it was ready") {
		t.Errorf("group update to the broken release: exit %d, said %q", code, errOut)
	}
	units("sd-z on the release in slot b after the rollback", "inactive disabled", "active enabled")
	d.waitLocal(t, "sd-z ready on 9.1.0-sd, same process", func(v map[string]localapi.InstanceView) bool {
		w := v["sd-z"]
		return w.PID == onRelease.PID && w.Ready && freshlyReported(w) && w.GatewayVersion == "9.1.0-sd"
	})
	if gw := d.groupGateway(t); gw.Version != "9.1.0-sd" || gw.Rollout == nil || gw.Rollout.State != "rolled-back" {
		t.Errorf("group gateway after the failed upgrade: %+v", gw)
	}
	counted, _ = l.counts()
	l.waitServed(t, counted, 50)
	served := l.checkNoFailure(t)
	t.Logf("requests served during the restarts, the upgrade and the failed one: %v", served)
}

// bootSdHost boots a container with the gatehouse binary installed; its
// journal is logged when the test fails.
func bootSdHost(t *testing.T) *sdHost {
	t.Helper()
	h := &sdHost{m: nspawn.Start(t)}
	t.Cleanup(func() {
		if t.Failed() {
			out, err := h.m.Run(context.Background(), "journalctl", "--no-pager", "-n", "400")
			t.Logf("journal of the container (%v):\n%s", err, out)
		}
	})
	if err := h.m.CopyIn(binary, "/usr/local/bin/gatehouse", 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}
