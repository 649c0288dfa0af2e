package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// loginAs creates a user bound to role on the whole domain and returns a
// CLI logged in as them.
func (d *nmDomain) loginAs(t *testing.T, user, role string) *adminCLI {
	t.Helper()
	password := user + "-password-e2e"
	d.cli.ok(t, password+"\n", "user", "create", user, "--password-stdin")
	d.cli.ok(t, "", "role", "bind", "--user", user, "--role", role, "--domain")
	c := newAdminCLI(t, d.cli.transcript)
	c.ok(t, password+"\n", "login", "--addr", d.url, "--ca-cert", d.caFile, "--user", user, "--password-stdin")
	return c
}

// TestInstanceRestartFromAdminNode: an operator restarts an instance
// through the admin node (the API answers 202; the CLI waits until the
// instance is ready under a new process), only that instance restarts and
// it serves again; a viewer is refused and nothing restarts.
func TestInstanceRestartFromAdminNode(t *testing.T) {
	up := startUpstream(t, "one", nil)
	d := setUpNode(t, up, "web-1", "web-2")
	oscar := d.loginAs(t, "oscar", "operator")
	vic := d.loginAs(t, "vic", "viewer")
	before := d.waitLocal(t, "both instances running", d.appliedEverywhere(1))

	// A viewer: 403, no restart asked, and neither gateway restarts over
	// several heartbeats.
	_, errOut := vic.fail(t, "", "instance", "restart", "web-1", "--timeout", "5s")
	if !strings.Contains(errOut, "forbidden") || !strings.Contains(errOut, "instance:operate") {
		t.Errorf("restart by a viewer said %q, want forbidden naming instance:operate", errOut)
	}
	var in apitypes.Instance
	d.cli.json(t, &in, "instance", "get", "web-1")
	if in.RestartGeneration != 0 {
		t.Errorf("after a refused restart, restart generation %d", in.RestartGeneration)
	}
	waitfor.Holds(t, 3*time.Second, "no gateway restarted after a refused restart", func() (bool, string) {
		v, err := d.localInstances(t)
		if err != nil {
			return false, err.Error()
		}
		for _, name := range []string{"web-1", "web-2"} {
			if v[name].PID != before[name].PID || v[name].Restarts != before[name].Restarts {
				return false, fmt.Sprintf("%s: %+v, was %+v", name, v[name], before[name])
			}
		}
		return true, ""
	})

	// The API: 202 with what to wait on.
	_, _, token, _ := oscar.saved(t)
	api := newAdminAPI(t, d.url, d.caFile, token)
	status, _, body := api.do(t, "POST", "/instances/web-1/restart", "")
	if status != http.StatusAccepted {
		t.Fatalf("POST /instances/web-1/restart by an operator: %d %s", status, body)
	}
	var r apitypes.InstanceRestart
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Instance != "web-1" || r.Host != "h1" || r.Generation != 1 || r.PreviousPID != before["web-1"].PID || r.Wait != "/api/v1/instances/web-1" {
		t.Errorf("restart answer %+v, want generation 1 of web-1 on h1 from pid %d", r, before["web-1"].PID)
	}
	first := d.waitLocal(t, "web-1 ready under a new process", func(v map[string]localapi.InstanceView) bool {
		w := v["web-1"]
		return w.PID != 0 && w.PID != before["web-1"].PID && w.Ready && freshlyReported(w)
	})

	// The admin node names the process to replace as its last heartbeat
	// showed it: the second restart is asked once it knows the first's
	// (asked sooner, the answer names the process before that one).
	waitfor.Cond(t, 10*time.Second, "the admin node to show web-1's new process", func() (bool, string) {
		o := d.adminInstances(t)["web-1"].Observed
		if o == nil {
			return false, "no state"
		}
		return o.PID == first["web-1"].PID, fmt.Sprintf("pid %d", o.PID)
	})

	// The CLI, which waits until the instance is ready again.
	out := oscar.ok(t, "", "instance", "restart", "web-1")
	m := regexp.MustCompile(`Instance web-1 is ready again: pid (\d+) \(was (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("instance restart said %q", out)
	}
	if m[2] != fmt.Sprint(first["web-1"].PID) || m[1] == m[2] {
		t.Errorf("instance restart reported pid %s (was %s); the process before was %d", m[1], m[2], first["web-1"].PID)
	}
	// When the CLI returns, the admin node shows it ready, and so does its
	// node manager, under the pid the CLI named; web-2 kept its process.
	now := d.adminInstances(t)["web-1"]
	if now.Observed == nil || !now.Observed.Ready || fmt.Sprint(now.Observed.PID) != m[1] || now.RestartGeneration != 2 {
		t.Errorf("after the restart, the admin node shows %+v", now)
	}
	v, err := d.localInstances(t)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v["web-1"].PID) != m[1] || !v["web-1"].Ready {
		t.Errorf("node manager shows web-1 as %+v, want pid %s ready", v["web-1"], m[1])
	}
	if v["web-2"].PID != before["web-2"].PID {
		t.Errorf("web-2 restarted too: pid %d, was %d", v["web-2"].PID, before["web-2"].PID)
	}
	d.mustRouteTo(t, "one", "web-1", "web-2")

	// Audited: the refusal and both restarts, by whom.
	var entries []apitypes.AuditEntry
	d.cli.json(t, &entries, "audit", "--action", "instance.restart")
	var got []string
	for _, e := range entries {
		got = append(got, e.User+" "+e.Target+" "+e.Result)
	}
	want := []string{"oscar instance/web-1 ok", "oscar instance/web-1 ok", "vic instance/web-1 denied"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit of instance.restart: %q, want %q", got, want)
	}
}

// TestInstanceRestartWhileNodeManagerAway: a restart asked while the
// node manager is down is kept by the admin node and done once when it
// comes back; a later start of the node manager adopts the restarted
// gateway instead of restarting it again.
func TestInstanceRestartWhileNodeManagerAway(t *testing.T) {
	up := startUpstream(t, "one", nil)
	d := setUpNode(t, up, "web-1")
	before := d.waitLocal(t, "web-1 running", d.appliedEverywhere(1))["web-1"]

	d.node.cmd.Process.Signal(syscall.SIGKILL)
	d.node.exit(t, 10*time.Second)
	out := d.cli.ok(t, "", "instance", "restart", "web-1", "--no-wait")
	if !strings.Contains(out, "Restart of instance web-1 requested (generation 1)") {
		t.Errorf("instance restart --no-wait said %q", out)
	}
	if !alive(before.PID) {
		t.Fatalf("web-1 (pid %d) is gone while its node manager is down", before.PID)
	}

	d.startNode(t)
	after := d.waitLocal(t, "web-1 restarted once the node manager is back", func(v map[string]localapi.InstanceView) bool {
		w := v["web-1"]
		return w.PID != 0 && w.PID != before.PID && w.Ready && freshlyReported(w)
	})["web-1"]
	d.mustRouteTo(t, "one", "web-1")

	// Once: the node manager started again adopts the new process.
	d.node.cmd.Process.Signal(syscall.SIGKILL)
	d.node.exit(t, 10*time.Second)
	d.startNode(t)
	d.waitLocal(t, "web-1 adopted and reporting", func(v map[string]localapi.InstanceView) bool {
		w := v["web-1"]
		return w.Ready && freshlyReported(w)
	})
	waitfor.Holds(t, 3*time.Second, "web-1 not restarted again", func() (bool, string) {
		v, err := d.localInstances(t)
		if err != nil {
			return false, err.Error()
		}
		return v["web-1"].PID == after.PID, fmt.Sprintf("pid %d, was %d", v["web-1"].PID, after.PID)
	})
}
