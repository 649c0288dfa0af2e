package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeAdminFailover: a node manager and the CLI given two admin
// nodes move to the second when the first is killed: the heartbeats reach
// it within seconds, and the node manager's blocking queries resume there,
// so that a deployment made through it is applied.
//
// Two admin nodes share a domain only through PostgreSQL; until then the
// second runs over a copy of the first's data dir, made while the first
// is stopped, which holds the same domain, host and instances.
func TestNodeAdminFailover(t *testing.T) {
	up1 := startUpstream(t, "u1", nil)
	up2 := startUpstream(t, "u2", nil)
	d := setUpNode(t, up1, "gw-a")

	d.node.signal(syscall.SIGTERM)
	d.node.exit(t, 15*time.Second)
	d.admin.signal(syscall.SIGTERM)
	d.admin.exit(t, 15*time.Second)
	bDir := filepath.Join(d.work, "admin-b")
	if out, err := exec.Command("cp", "-a", d.adminDir, bDir).CombinedOutput(); err != nil {
		t.Fatalf("copy the admin node's data dir: %v\n%s", err, out)
	}
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint)
	bAddr := freeAddr(t)
	startAdminNode(t, bDir, bAddr, d.fingerprint)
	both := d.url + ",https://" + bAddr

	p, _ := startReady(t, "node", "run", "--data-dir", d.nodeDir, "--listen", d.nodeAddr, "--addr", both,
		"--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s", "--log-level", "debug")
	p.listen = d.nodeAddr
	d.node = p
	// The CLI logged in to the first only: from now on it knows both.
	saveAddress(t, d.cli.config, both)
	started := time.Now()
	d.waitHeartbeat(t, "gw-a heartbeats reaching the first admin node", started, 0)

	d.admin.signal(syscall.SIGKILL)
	d.admin.exit(t, 10*time.Second)
	killed := time.Now()
	d.waitHeartbeat(t, "gw-a heartbeats reaching the second admin node", killed, 5*time.Second)
	t.Logf("heartbeats reached the second admin node %s after the first was killed", time.Since(killed).Round(time.Millisecond))
	if log := d.node.out.String(); !strings.Contains(log, "admin node failing: moving to the next") || !strings.Contains(log, bAddr) {
		t.Errorf("the node manager's log says nothing of moving to %s:\n%s", bAddr, log)
	}

	// The deployment watch resumed on the second admin node.
	n := d.deployTo(t, up2.addr, "through the second admin node")
	d.waitLocal(t, fmt.Sprintf("gw-a running deployment #%d", n), d.appliedEverywhere(n))
	d.mustRouteTo(t, "u2", "gw-a")
}

// waitHeartbeat waits until the admin node the CLI reaches shows gw-a
// Healthy with a heartbeat after since, within limit when not zero.
func (d *nmDomain) waitHeartbeat(t *testing.T, what string, since time.Time, limit time.Duration) {
	t.Helper()
	until(t, what, func() (bool, string) {
		in, ok := d.adminInstances(t)["gw-a"]
		if !ok || in.Observed == nil {
			return false, fmt.Sprintf("%+v", in)
		}
		return in.Status == "Healthy" && in.Observed.LastHeartbeat.After(since), fmt.Sprintf("%s, last heartbeat %s", in.Status, in.Observed.LastHeartbeat)
	})
	if took := time.Since(since); limit > 0 && took > limit {
		t.Errorf("%s took %s, want at most %s", what, took.Round(time.Millisecond), limit)
	}
}

// saveAddress replaces the address of the CLI's saved login.
func saveAddress(t *testing.T, path, addr string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]any
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	saved["address"] = addr
	if data, err = json.Marshal(saved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNodeJoinSeveralAddresses: a host joins through the first admin node
// of a list that answers, and keeps the list for `node run`.
func TestNodeJoinSeveralAddresses(t *testing.T) {
	d := newNMDomain(t)
	list := "https://" + deadAddr(t) + "," + d.url
	dir := filepath.Join(d.work, "node")
	tok := d.joinToken(t, "h1")
	out := d.cli.ok(t, "", "node", "join", "--addr", list, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", dir)
	if !strings.Contains(out, "Joined domain e2e as host h1") {
		t.Errorf("node join said %q", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		Admin string `json:"admin"`
	}
	if err := json.Unmarshal(data, &id); err != nil || id.Admin != list {
		t.Errorf("node.json names the admin %q (%v), want the list joined through, %s", id.Admin, err, list)
	}
}
