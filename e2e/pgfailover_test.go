package e2e

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// pgFleet is a domain in PostgreSQL served by two admin nodes, A (index 0)
// and B (1), each with a CLI and an API client logged in to it, and two
// hosts h1 and h2, each a node manager with one gateway of group g1.
type pgFleet struct {
	srv         *pgtest.Server
	work        string
	dsnFile     string
	fingerprint string
	caFile      string
	password    string
	dir, addr   [2]string
	admin       [2]*proc
	// started is every admin node process, restarts included.
	started []*proc
	cli     [2]*adminCLI
	api     [2]*adminAPI
	// hosts are nmDomains of one host each, their CLI that of B.
	hosts [2]*nmDomain
}

// pgAdminArgs are the admin nodes' flags: a short --lost-after, so that an
// instance whose node manager is killed shows Lost Connection within
// seconds.
func (f *pgFleet) pgAdminArgs() []string {
	return []string{"--store-file", f.dsnFile, "--lost-after", "3s"}
}

func (f *pgFleet) url(i int) string { return "https://" + f.addr[i] }

// newPGFleet makes the domain in a database of its own, joins the second
// admin node with a key bundle, starts both on addresses kept for
// restarts, and logs a CLI in to each.
func newPGFleet(t *testing.T) *pgFleet {
	t.Helper()
	f := &pgFleet{srv: startPostgres(t), work: t.TempDir()}
	f.dsnFile = writeSecretFile(t, filepath.Join(f.work, "dsn"), f.srv.Database(t)+" password="+pgDomainPassword)
	tr := &transcript{}
	f.cli = [2]*adminCLI{newAdminCLI(t, tr), newAdminCLI(t, tr)}
	f.dir = [2]string{filepath.Join(f.work, "a"), filepath.Join(f.work, "b")}
	out := f.cli[0].ok(t, "", "admin", "init", "--data-dir", f.dir[0], "--domain", "e2e", "--store-file", f.dsnFile)
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(out)
	fp := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(out)
	if m == nil || fp == nil {
		t.Fatalf("admin init said:\n%s", out)
	}
	f.password, f.fingerprint = m[1], fp[1]
	f.caFile = filepath.Join(f.dir[0], "ca.crt")
	bundle := filepath.Join(f.work, "e2e.ghk")
	pass := writeSecretFile(t, filepath.Join(f.work, "pass"), "a long bundle passphrase")
	f.cli[0].ok(t, "", "admin", "keys", "export", "--data-dir", f.dir[0], "--to", bundle, "--passphrase-file", pass)
	f.cli[0].ok(t, "", "admin", "init", "--join", bundle, "--passphrase-file", pass, "--store-file", f.dsnFile, "--data-dir", f.dir[1])
	for i := range 2 {
		f.addr[i] = freeAddr(t)
		f.startAdmin(t, i)
		f.cli[i].ok(t, f.password+"\n", "login", "--addr", f.url(i), "--ca-fingerprint", f.fingerprint, "--user", "admin", "--password-stdin")
		_, _, token, _ := f.cli[i].saved(t)
		f.api[i] = newAdminAPI(t, f.url(i), f.caFile, token)
	}
	return f
}

func (f *pgFleet) startAdmin(t *testing.T, i int) {
	t.Helper()
	f.admin[i] = startAdminNode(t, f.dir[i], f.addr[i], f.fingerprint, f.pgAdminArgs()...)
	f.started = append(f.started, f.admin[i])
}

// addHost joins host name through admin node via (node join --addr),
// declares one instance of g1 on it and returns it as an nmDomain whose
// CLI is that of via.
func (f *pgFleet) addHost(t *testing.T, via int, name, instance string) *nmDomain {
	t.Helper()
	d := &nmDomain{work: filepath.Join(f.work, name), url: f.url(via), fingerprint: f.fingerprint, caFile: f.caFile,
		cli: f.cli[via], instances: map[string][2]string{}}
	d.nodeDir = filepath.Join(d.work, "node")
	d.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: d.nodeDir}
	t.Cleanup(d.gw.killAll)
	tok := d.joinToken(t, name)
	out := d.cli.ok(t, "", "node", "join", "--addr", f.url(via), "--token", tok, "--ca-fingerprint", f.fingerprint, "--data-dir", d.nodeDir)
	if !strings.Contains(out, "Joined domain e2e as host "+name) {
		t.Fatalf("node join through %s said %q", f.url(via), out)
	}
	d.nodeAddr = freeAddr(t)
	if instance != "" {
		listen, status := freeAddr(t), freeAddr(t)
		d.cli.ok(t, "", "instance", "create", instance, "--group", nmGroup, "--host", name, "--listen", listen,
			"--status-listen", status, "--gossip-listen", freeGossipAddr(t))
		d.instances[instance] = [2]string{listen, status}
	}
	return d
}

// runNode starts (or restarts) a host's node manager with the admin
// addresses given, in that order.
func runNode(t *testing.T, d *nmDomain, addrs ...string) {
	t.Helper()
	runNodeWith(t, d, nil, addrs...)
}

// runNodeWith is runNode with more flags of node run.
func runNodeWith(t *testing.T, d *nmDomain, extra []string, addrs ...string) {
	t.Helper()
	args := []string{"node", "run", "--data-dir", d.nodeDir, "--listen", d.nodeAddr, "--addr", strings.Join(addrs, ","),
		"--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s", "--log-level", "debug"}
	p, _ := startReady(t, append(args, extra...)...)
	p.listen = d.nodeAddr
	d.node = p
}

// deploy deploys g1's draft through admin node i (force: the draft may be
// the one deployed) and returns the answer's status and deployment; a
// code of 0 is a request that got no answer (body says why). Safe from
// any goroutine: it never fails the test.
func (f *pgFleet) deploy(i int, message string) (int, apitypes.Deployment, string) {
	body, _ := json.Marshal(apitypes.DeployRequest{Message: message, Force: true})
	a := f.api[i]
	req, err := http.NewRequest("POST", a.base+apitypes.Prefix+"/groups/"+nmGroup+"/deployments", bytes.NewReader(body))
	if err != nil {
		return 0, apitypes.Deployment{}, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, apitypes.Deployment{}, err.Error()
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, apitypes.Deployment{}, err.Error()
	}
	var d apitypes.Deployment
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(out, &d); err != nil || d.Number == 0 {
			return 0, d, fmt.Sprintf("a deploy answered 201 %s (%v)", out, err)
		}
	}
	return resp.StatusCode, d, string(out)
}

// deployments lists g1's deployments through admin node i, by number.
func (f *pgFleet) deployments(t *testing.T, i int) []apitypes.Deployment {
	t.Helper()
	code, _, body := f.api[i].do(t, "GET", "/groups/"+nmGroup+"/deployments", "")
	if code != http.StatusOK {
		t.Fatalf("deployments through %s: %d %s", f.url(i), code, body)
	}
	var ds []apitypes.Deployment
	if err := json.Unmarshal(body, &ds); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ds, func(a, b apitypes.Deployment) int { return int(a.Number) - int(b.Number) })
	return ds
}

// checkNumbered checks that ds are numbered 1..len(ds), every one
// verifying with the domain's signing key.
func (f *pgFleet) checkNumbered(t *testing.T, ds []apitypes.Deployment) {
	t.Helper()
	pub := signingPublicKey(t, f.dir[0])
	for i, d := range ds {
		if d.Number != uint64(i+1) {
			t.Fatalf("deployment at %d is #%d: a gap or a duplicate in %v", i+1, d.Number, numbers(ds))
		}
		code, _, body := f.api[1].do(t, "GET", fmt.Sprintf("/groups/%s/deployments/%d", nmGroup, d.Number), "")
		var full apitypes.Deployment
		if code != http.StatusOK || json.Unmarshal(body, &full) != nil || full.Config == nil {
			t.Fatalf("deployment %d: %d %s", d.Number, code, body)
		}
		canonical, err := full.Config.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := base64.StdEncoding.DecodeString(full.Signature)
		dep := deploy.Deployment{Domain: "e2e", Group: full.Group, Number: full.Number, Checksum: full.Checksum, Config: canonical,
			Author: full.Author, Message: full.Message, CreatedAt: full.CreatedAt, Signature: sig}
		if !ed25519.Verify(pub, dep.SigningBytes(), dep.Signature) {
			t.Errorf("deployment %d does not verify with the domain's signing key", d.Number)
		}
	}
}

func numbers(ds []apitypes.Deployment) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Number
	}
	return out
}

// leaseHolder names the holder of the background lease, as admin node i
// sees it.
func (f *pgFleet) leaseHolder(t *testing.T, i int) string {
	t.Helper()
	code, _, body := f.api[i].do(t, "GET", "/overview", "")
	var o apitypes.Overview
	if code != http.StatusOK || json.Unmarshal(body, &o) != nil {
		t.Fatalf("overview through %s: %d %s", f.url(i), code, body)
	}
	return o.LeaseHolder
}

// instancesThrough reads the instances through admin node i, by name.
func (f *pgFleet) instancesThrough(t *testing.T, i int) map[string]apitypes.Instance {
	t.Helper()
	code, _, body := f.api[i].do(t, "GET", "/instances", "")
	if code != http.StatusOK {
		t.Fatalf("instances through %s: %d %s", f.url(i), code, body)
	}
	var list []apitypes.Instance
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]apitypes.Instance{}
	for _, in := range list {
		out[in.Name] = in
	}
	return out
}

// waitBeat waits until admin node i shows instance Healthy with a
// heartbeat after since, and returns how long that took from since.
func (f *pgFleet) waitBeat(t *testing.T, i int, instance string, since time.Time) time.Duration {
	t.Helper()
	until(t, fmt.Sprintf("a heartbeat of %s after %s through %s", instance, since.Format(time.StampMilli), f.url(i)), func() (bool, string) {
		in, ok := f.instancesThrough(t, i)[instance]
		if !ok || in.Observed == nil {
			return false, fmt.Sprintf("%+v", in)
		}
		return in.Status == "Healthy" && in.Observed.LastHeartbeat.After(since),
			fmt.Sprintf("%s, last heartbeat %s", in.Status, in.Observed.LastHeartbeat.Format(time.StampMilli))
	})
	return time.Since(since)
}

// waitApplied waits until both hosts' gateways run deployment n.
func (f *pgFleet) waitApplied(t *testing.T, n uint64) {
	t.Helper()
	for _, h := range f.hosts {
		h.waitLocal(t, fmt.Sprintf("%v running deployment #%d", keys(instanceNames(h)), n), h.appliedEverywhere(n))
	}
}

func instanceNames(d *nmDomain) map[string]string {
	out := map[string]string{}
	for name := range d.instances {
		out[name] = ""
	}
	return out
}

// TestPGFailover: two admin nodes A and B on one PostgreSQL, two node
// managers given both addresses, a gateway of g1 on each. A deploy
// through A reaches node managers watching through B; A killed in the
// middle of a run of deploys loses none it acknowledged and its node
// manager moves to B; deploys through both at once are numbered without
// gap or duplicate; PostgreSQL stopped, the admin nodes refuse changes
// cleanly while the gateways serve, and all resumes when it is back.
func TestPGFailover(t *testing.T) {
	f := newPGFleet(t)
	up := startUpstream(t, "u1", nil)
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}
	f.cli[0].ok(t, "", "group", "create", nmGroup)
	f.hosts[0] = f.addHost(t, 1, "h1", "gw1")
	f.hosts[1] = f.addHost(t, 1, "h2", "gw2")
	if n := f.hosts[0].deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	// Both stick to B, the first of their list.
	for _, h := range f.hosts {
		runNode(t, h, f.url(1), f.url(0))
	}
	f.waitApplied(t, 1)

	step("a deploy through A reaches node managers watching through B", func(t *testing.T) {
		began := time.Now()
		code, d, body := f.deploy(0, "through A")
		if code != http.StatusCreated {
			t.Fatalf("deploy through A: %d %s", code, body)
		}
		f.waitApplied(t, d.Number)
		t.Logf("deployment #%d through A applied by both gateways, watched through B, %s after the deploy began",
			d.Number, time.Since(began).Round(time.Millisecond))
		// The CLI's roll-out wait through A agrees.
		f.cli[0].ok(t, "", "deploy", "--group", nmGroup, "-m", "watched roll-out", "--force", "--timeout", "20s")
		for _, h := range f.hosts {
			if log := h.node.out.String(); strings.Contains(log, "moving to the next") {
				t.Errorf("a node manager left B:\n%s", log)
			}
		}
	})

	// h2's node manager restarted with A first in its list: it sticks to A.
	// (Processes are started here, not in a step, to outlive the step.)
	h2 := f.hosts[1]
	h2.node.signal(syscall.SIGTERM)
	h2.node.exit(t, 15*time.Second)
	runNode(t, h2, f.url(0), f.url(1))
	f.waitBeat(t, 1, "gw2", time.Now())

	step("A killed mid-run of deploys", func(t *testing.T) {
		// A, started first, holds the lease: B must take it over.
		until(t, "A holding the background lease", func() (bool, string) {
			holder := f.leaseHolder(t, 1)
			return strings.Contains(holder, f.addr[0]), holder
		})

		var (
			mu    sync.Mutex
			acked []uint64
		)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, d, _ := f.deploy(0, fmt.Sprintf("loop %d", i))
				if code == http.StatusCreated {
					mu.Lock()
					acked = append(acked, d.Number)
					mu.Unlock()
				}
			}
		}()
		waitfor.True(t, nmDeadline, "five deploys through A acknowledged", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 5
		})
		f.admin[0].signal(syscall.SIGKILL)
		killed := time.Now()
		f.admin[0].exit(t, 10*time.Second)
		close(stop)
		<-done
		mu.Lock()
		t.Logf("A acknowledged deployments %v before it was killed", acked)
		mu.Unlock()

		ds := f.deployments(t, 1)
		have := map[uint64]bool{}
		for _, d := range ds {
			have[d.Number] = true
		}
		for _, n := range acked {
			if !have[n] {
				t.Errorf("deployment #%d, acknowledged by A, is not in B's list %v", n, numbers(ds))
			}
		}
		f.checkNumbered(t, ds)
		last := ds[len(ds)-1].Number
		f.waitApplied(t, last)

		took := f.waitBeat(t, 1, "gw2", killed)
		t.Logf("h2's node manager reached B %s after A was killed", took.Round(time.Millisecond))
		if log := h2.node.out.String(); !strings.Contains(log, "moving to the next") {
			t.Errorf("h2's node manager says nothing of leaving A:\n%s", log)
		}

		// A host joins through B.
		f.addHost(t, 1, "h3", "")
		if out := f.cli[1].ok(t, "", "host", "list"); !strings.Contains(out, "h3") {
			t.Errorf("host list through B:\n%s", out)
		}

		// B holds the lease now, and an instance whose node manager dies
		// shows Lost Connection.
		until(t, "B holding the background lease", func() (bool, string) {
			holder := f.leaseHolder(t, 1)
			return strings.Contains(holder, f.addr[1]), holder
		})
		t.Logf("B holds the lease %s after A was killed", time.Since(killed).Round(time.Millisecond))
		h2.node.signal(syscall.SIGKILL)
		h2.node.exit(t, 10*time.Second)
		until(t, "gw2 Lost Connection through B", func() (bool, string) {
			in := f.instancesThrough(t, 1)["gw2"]
			return in.Status == "Lost Connection", in.Status
		})
	})
	// h2's node manager back, and A restarted, for what follows.
	runNode(t, h2, f.url(1), f.url(0))
	f.waitBeat(t, 1, "gw2", time.Now())
	f.startAdmin(t, 0)

	step("concurrent deploys through A and B", func(t *testing.T) {
		before := len(f.deployments(t, 1))
		const perSide, each = 3, 3
		var (
			mu  sync.Mutex
			got []uint64
			bad []string
			wg  sync.WaitGroup
		)
		for side := range 2 {
			for g := range perSide {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range each {
						code, d, body := f.deploy(side, fmt.Sprintf("side %d writer %d deploy %d", side, g, k))
						mu.Lock()
						if code == http.StatusCreated {
							got = append(got, d.Number)
						} else {
							bad = append(bad, fmt.Sprintf("%d %s", code, body))
						}
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if len(bad) > 0 {
			t.Errorf("refused concurrent deploys: %v", bad)
		}
		slices.Sort(got)
		for i, n := range got {
			if n != uint64(before+1+i) {
				t.Fatalf("concurrent deploys numbered %v, want %d..%d", got, before+1, before+len(got))
			}
		}
		ds := f.deployments(t, 0)
		if len(ds) != before+2*perSide*each {
			t.Errorf("%d deployments after %d concurrent deploys on %d", len(ds), 2*perSide*each, before)
		}
		f.checkNumbered(t, ds)
		f.waitApplied(t, uint64(len(ds)))
	})

	step("PostgreSQL stopped and started", func(t *testing.T) {
		before := f.deployments(t, 1)
		f.srv.Halt()
		halted := true
		t.Cleanup(func() {
			if halted {
				f.srv.Resume()
			}
		})
		// Traffic through both gateways for the whole outage.
		stopTraffic := make(chan struct{})
		trafficDone := make(chan []string)
		sentN := 0
		go func() {
			var failed []string
			for {
				select {
				case <-stopTraffic:
					trafficDone <- failed
					return
				default:
				}
				for _, h := range f.hosts {
					for name := range h.instances {
						sentN++
						if got, err := h.through(name, "/during-outage"); err != nil || got != "u1" {
							failed = append(failed, fmt.Sprintf("%s: %q %v", name, got, err))
						}
					}
				}
			}
		}()
		for i := range 2 {
			code, _, body := f.deploy(i, "during the outage")
			if code != http.StatusServiceUnavailable {
				t.Errorf("deploy through %s with the database away: %d %s, want 503", f.url(i), code, body)
			}
			code, _, read := f.api[i].do(t, "GET", "/groups/"+nmGroup+"/deployments", "")
			if code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Errorf("read through %s with the database away: %d %s, want 200 or 503", f.url(i), code, read)
			}
			if code == http.StatusServiceUnavailable && apiError(t, read).Message == "" {
				t.Errorf("503 without a message: %s", read)
			}
		}
		// The outage lasts longer than a heartbeat interval and a lease
		// check, so that each side has met the database gone.
		waitfor.Holds(t, 3*time.Second, "the admin nodes refusing deploys", func() (bool, string) {
			code, _, body := f.deploy(1, "during the outage")
			return code == http.StatusServiceUnavailable, fmt.Sprintf("%d %s", code, body)
		})
		if err := f.srv.Resume(); err != nil {
			t.Fatal(err)
		}
		halted = false
		resumed := time.Now()
		close(stopTraffic)
		if failed := <-trafficDone; len(failed) > 0 {
			t.Errorf("%d of %d requests through the gateways failed during the outage: %v", len(failed), sentN, failed[:min(5, len(failed))])
		}
		t.Logf("%d requests through the gateways during the outage, all answered", sentN)

		var d apitypes.Deployment
		until(t, "a deploy through A after the database is back", func() (bool, string) {
			code, dep, body := f.deploy(0, "after the outage")
			d = dep
			return code == http.StatusCreated, fmt.Sprintf("%d %s", code, body)
		})
		if want := uint64(len(before) + 1); d.Number != want {
			t.Errorf("the deploy after the outage is #%d, want #%d: a refused deploy left something behind", d.Number, want)
		}
		ds := f.deployments(t, 1)
		f.checkNumbered(t, ds)
		for i, old := range before {
			if ds[i].Checksum != old.Checksum || ds[i].Message != old.Message {
				t.Errorf("deployment #%d changed across the outage", old.Number)
			}
		}
		f.waitApplied(t, d.Number)
		for _, name := range []string{"gw1", "gw2"} {
			for i := range 2 {
				f.waitBeat(t, i, name, resumed)
			}
		}
	})

	// The admin nodes logged the database's absence, never its password.
	for _, p := range f.started {
		if strings.Contains(p.out.String(), pgDomainPassword) {
			t.Errorf("an admin node printed the database password:\n%s", p.out.String())
		}
	}
}
