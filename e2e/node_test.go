package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// The node manager's end-to-end tests (docs/node-manager.md): an admin
// node, a node manager joined to it and the gateways it starts, all real
// processes on loopback, driven through the CLI, the node manager's local
// API and the gateways' traffic ports.

// nmDeadline bounds every wait for the domain to converge. Generous: it is
// a limit for a hung test, never a timing assertion.
const nmDeadline = 20 * time.Second

const nmGroup = "g1"

// nmDomain is an admin node with a logged-in CLI, and at most one node
// manager (host h1) joined to it.
type nmDomain struct {
	work        string
	adminDir    string
	adminAddr   string
	url         string
	fingerprint string
	caFile      string
	admin       *proc
	cli         *adminCLI

	nodeDir  string
	nodeAddr string
	node     *proc

	// instances: name → traffic address, status address.
	instances map[string][2]string
	gw        *gatewayPids
}

// gatewayPids remembers every gateway pid the test saw, so that cleanup
// can end them: gateways outlive their node manager on purpose.
type gatewayPids struct {
	mu      sync.Mutex
	pids    map[int]bool
	nodeDir string
}

func (g *gatewayPids) add(pid int) {
	if pid <= 0 {
		return
	}
	g.mu.Lock()
	g.pids[pid] = true
	g.mu.Unlock()
}

// killAll SIGKILLs the gateways still alive: those seen and those named by
// the pid files, each only after /proc says it is a gateway of this test's
// node data dir, so that a reused pid is never signalled.
func (g *gatewayPids) killAll() {
	files, _ := filepath.Glob(filepath.Join(g.nodeDir, "instances", "*", "gateway.pid"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			PID int `json:"pid"`
		}
		if json.Unmarshal(data, &rec) == nil {
			g.add(rec.PID)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for pid := range g.pids {
		if isOurGateway(pid, g.nodeDir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isOurGateway says whether pid is a live gatehouse gateway with a data dir
// under nodeDir.
func isOurGateway(pid int, nodeDir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "gateway" && strings.Contains(string(cmdline), nodeDir) && alive(pid)
}

// alive says whether pid runs: it exists and is not a zombie (a gateway
// whose node manager died is reparented, and nobody may reap it here).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// newNMDomain initialises a domain "e2e", starts its admin node (with
// adminArgs added to admin run's flags), logs the CLI in and creates group
// g1.
func newNMDomain(t *testing.T, adminArgs ...string) *nmDomain {
	t.Helper()
	d := &nmDomain{work: t.TempDir(), instances: map[string][2]string{}}
	d.adminDir = filepath.Join(d.work, "admin")
	d.cli = newAdminCLI(t, &transcript{})
	out := d.cli.ok(t, "", "admin", "init", "--data-dir", d.adminDir, "--domain", "e2e")
	m := regexp.MustCompile(`Generated password for admin \(shown once\): (\S+)`).FindStringSubmatch(out)
	f := regexp.MustCompile(`Node managers pin this CA: (SHA256:[0-9a-fA-F]{64})\n`).FindStringSubmatch(out)
	if m == nil || f == nil {
		t.Fatalf("admin init printed no password or fingerprint:\n%s", out)
	}
	d.fingerprint = f[1]
	d.caFile = filepath.Join(d.adminDir, "ca.crt")
	d.adminAddr = freeAddr(t)
	d.url = "https://" + d.adminAddr
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint, adminArgs...)
	d.cli.ok(t, m[1]+"\n", "login", "--addr", d.url, "--ca-fingerprint", d.fingerprint, "--user", "admin", "--password-stdin")
	d.cli.ok(t, "", "group", "create", nmGroup)
	return d
}

// joinToken makes a join token for host with the CLI and returns it.
func (d *nmDomain) joinToken(t *testing.T, host string, extra ...string) string {
	t.Helper()
	out := d.cli.ok(t, "", append([]string{"token", "create", "--host", host}, extra...)...)
	tok := strings.TrimSpace(out)
	if tok == "" || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token create --host %s printed %q, want the token alone", host, out)
	}
	return tok
}

// joinNode joins host h1 into a node data dir and arranges for every
// gateway of that dir to be killed at the end. The cleanup is registered
// before the node manager starts, so that it runs after the node manager
// is gone and cannot restart what it kills.
func (d *nmDomain) joinNode(t *testing.T) {
	t.Helper()
	d.nodeDir = filepath.Join(d.work, "node")
	d.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: d.nodeDir}
	t.Cleanup(d.gw.killAll)
	tok := d.joinToken(t, "h1")
	out := d.cli.ok(t, "", "node", "join", "--admin", d.url, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", d.nodeDir)
	if !strings.Contains(out, "Joined domain e2e as host h1") {
		t.Errorf("node join said %q", out)
	}
	d.nodeAddr = freeAddr(t)
}

// startNode runs the node manager on the joined data dir, with extra
// flags, and waits for its ready line.
func (d *nmDomain) startNode(t *testing.T, extra ...string) *proc {
	t.Helper()
	p, addrs := startReady(t, append([]string{"node", "run", "--data-dir", d.nodeDir, "--listen", d.nodeAddr,
		"--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s", "--log-level", "debug"}, extra...)...)
	if addrs["listen"] != d.nodeAddr || addrs["url"] != "http://"+d.nodeAddr {
		t.Errorf("the node manager's ready file names %v, want its address %s", addrs, d.nodeAddr)
	}
	p.listen = d.nodeAddr
	d.node = p
	return p
}

// createInstance declares an instance of g1 on h1 on free ports.
func (d *nmDomain) createInstance(t *testing.T, name string) {
	t.Helper()
	listen, status := freeAddr(t), freeAddr(t)
	d.createInstanceAt(t, name, listen, status)
}

func (d *nmDomain) createInstanceAt(t *testing.T, name, listen, status string) {
	t.Helper()
	// The gossip port too, or the admin node picks one from 7946 up, on
	// every address, which any other process may hold.
	d.cli.ok(t, "", "instance", "create", name, "--group", nmGroup, "--host", "h1", "--listen", listen, "--status-listen", status,
		"--gossip-listen", freeGossipAddr(t))
	d.instances[name] = [2]string{listen, status}
}

// routeConfig sends every path to one upstream.
func routeConfig(upstreamAddr string) string {
	return fmt.Sprintf(`upstreams:
  - name: api
    targets:
      - address: %s
services:
  - name: api
    upstream: api
    routes:
      - name: all
        paths: ["/*"]
`, upstreamAddr)
}

var deployedRE = regexp.MustCompile(`^deployed ` + nmGroup + ` #(\d+) (sha256:[0-9a-f]{64})\n$`)

// deployTo applies a configuration routing to upstreamAddr and deploys it;
// it returns the deployment's number.
func (d *nmDomain) deployTo(t *testing.T, upstreamAddr, message string) uint64 {
	t.Helper()
	f := filepath.Join(d.work, "config.yaml")
	writeFile(t, f, routeConfig(upstreamAddr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", nmGroup)
	out := d.cli.ok(t, "", "deploy", "--group", nmGroup, "-m", message, "--no-wait")
	m := deployedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deploy said %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// localInstances reads the node manager's GET /v1/instances, and records
// the pids.
func (d *nmDomain) localInstances(t *testing.T) (map[string]localapi.InstanceView, error) {
	t.Helper()
	resp, err := http.Get("http://" + d.nodeAddr + localapi.PathInstances)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /v1/instances: %d %s", resp.StatusCode, body)
	}
	var list localapi.InstanceList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := map[string]localapi.InstanceView{}
	for _, v := range list.Instances {
		out[v.Name] = v
		d.gw.add(v.PID)
	}
	return out, nil
}

// until polls cond for at most nmDeadline and fails the test with the
// last state described when it never holds.
func until(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	waitfor.Cond(t, nmDeadline, what, cond)
}

// waitLocal waits until the node manager's view of the instances
// satisfies ok, and returns it.
func (d *nmDomain) waitLocal(t *testing.T, what string, ok func(map[string]localapi.InstanceView) bool) map[string]localapi.InstanceView {
	t.Helper()
	var views map[string]localapi.InstanceView
	until(t, what, func() (bool, string) {
		v, err := d.localInstances(t)
		if err != nil {
			return false, err.Error()
		}
		views = v
		b, _ := json.Marshal(v)
		return ok(v), string(b)
	})
	return views
}

// freshlyReported says whether the instance's last report is of its
// current process.
func freshlyReported(in localapi.InstanceView) bool {
	return in.PID != 0 && !in.ReportedAt.Before(in.StartedAt)
}

// appliedEverywhere says whether every declared instance runs deployment
// n, ready, without error.
func (d *nmDomain) appliedEverywhere(n uint64) func(map[string]localapi.InstanceView) bool {
	return func(v map[string]localapi.InstanceView) bool {
		for name := range d.instances {
			in, ok := v[name]
			if !ok || in.Process != localapi.ProcessRunning || in.AppliedDeployment != n || in.DesiredDeployment != n ||
				!in.Ready || in.LastError != "" {
				return false
			}
		}
		return true
	}
}

// summary reads the admin node's summary of g1.
func (d *nmDomain) summary(t *testing.T) apitypes.GroupSummary {
	t.Helper()
	var s apitypes.GroupSummary
	d.cli.json(t, &s, "group", "summary", nmGroup)
	return s
}

// waitRolledOut waits until the admin node says deployment n is rolled out
// to every instance, all Healthy.
func (d *nmDomain) waitRolledOut(t *testing.T, n uint64) {
	t.Helper()
	until(t, fmt.Sprintf("deployment #%d rolled out and all Healthy", n), func() (bool, string) {
		s := d.summary(t)
		ok := s.CurrentDeployment == n && s.Complete && s.Instances == len(d.instances) &&
			s.ByStatus["Healthy"] == len(d.instances)
		return ok, fmt.Sprintf("%+v", s)
	})
}

// adminInstances reads `gatehouse instance list -o json`, by name.
func (d *nmDomain) adminInstances(t *testing.T) map[string]apitypes.Instance {
	t.Helper()
	var list []apitypes.Instance
	d.cli.json(t, &list, "instance", "list")
	out := map[string]apitypes.Instance{}
	for _, in := range list {
		out[in.Name] = in
	}
	return out
}

// setUp makes the usual domain: a node manager with the named instances of
// g1 and deployment #1 routing to up, rolled out.
func setUpNode(t *testing.T, up *upstream, names ...string) *nmDomain {
	t.Helper()
	d := newNMDomain(t)
	d.joinNode(t)
	for _, name := range names {
		d.createInstance(t, name)
	}
	if n := d.deployTo(t, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	d.startNode(t)
	d.waitLocal(t, "every instance running deployment #1", d.appliedEverywhere(1))
	d.waitRolledOut(t, 1)
	return d
}

// noKeepAlive is a client that opens a connection per request, so that
// gateways being stopped never wait on the test's idle connections.
var noKeepAlive = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// through sends a GET through an instance's gateway and returns the
// upstream that answered, or an error.
func (d *nmDomain) through(instance, path string) (string, error) {
	resp, err := noKeepAlive.Get("http://" + d.instances[instance][0] + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s via %s: %d %s", path, instance, resp.StatusCode, body)
	}
	return resp.Header.Get("X-Upstream"), nil
}

// gatewayStatus reads an instance's /status.
func (d *nmDomain) gatewayStatus(t *testing.T, instance string) statusReport {
	t.Helper()
	p := &proc{status: d.instances[instance][1]}
	return p.report(t)
}

// mustRouteTo checks that requests through each instance reach want.
func (d *nmDomain) mustRouteTo(t *testing.T, want string, instances ...string) {
	t.Helper()
	for _, name := range instances {
		for i := range 5 {
			got, err := d.through(name, fmt.Sprintf("/check/%d", i))
			if err != nil {
				t.Fatalf("through %s: %v", name, err)
			}
			if got != want {
				t.Fatalf("through %s: answered by %q, want %q", name, got, want)
			}
		}
	}
}

// TestNodeJoin: a join token joins once, an expired one never, a wrong CA
// pin is refused before the token is sent, and the agent API wants a
// client certificate.
func TestNodeJoin(t *testing.T) {
	began := time.Now()
	d := newNMDomain(t)
	// Asked first, so that its second of life passes while the rest runs.
	expired := d.joinToken(t, "h2", "--ttl", "1s")
	expiredAt := time.Now().Add(time.Second)

	good := d.joinToken(t, "h1")
	dir1 := filepath.Join(d.work, "node1")
	out := d.cli.ok(t, "", "node", "join", "--admin", d.url, "--token", good, "--ca-fingerprint", d.fingerprint, "--data-dir", dir1)
	if !strings.Contains(out, "Joined domain e2e as host h1") {
		t.Errorf("node join said %q", out)
	}
	for name, mode := range map[string]os.FileMode{"node.key": 0o600, "node.crt": 0, "ca.crt": 0, "node.json": 0} {
		if mode != 0 {
			if m := permOf(t, filepath.Join(dir1, name)); m != mode {
				t.Errorf("%s: mode %v, want %v", name, m, mode)
			}
		} else if _, err := os.Stat(filepath.Join(dir1, name)); err != nil {
			t.Errorf("after the join: %v", err)
		}
	}
	var id struct {
		Admin      string `json:"admin"`
		Domain     string `json:"domain"`
		Host       string `json:"host"`
		SigningKey string `json:"signing_key"`
	}
	if data, err := os.ReadFile(filepath.Join(dir1, "node.json")); err != nil || json.Unmarshal(data, &id) != nil ||
		id.Admin != d.url || id.Domain != "e2e" || id.Host != "h1" || !strings.HasPrefix(id.SigningKey, "ed25519:") {
		t.Errorf("node.json: %+v (%v)", id, err)
	}

	refused := func(name, token, fingerprint, want string) {
		t.Helper()
		dir := filepath.Join(d.work, name)
		_, errOut := d.cli.fail(t, "", "node", "join", "--admin", d.url, "--token", token, "--ca-fingerprint", fingerprint, "--data-dir", dir)
		if !strings.Contains(errOut, want) {
			t.Errorf("join with %s: stderr %q, want %q", name, errOut, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "node.json")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("join with %s left a node identity: %v", name, err)
		}
	}
	refused("a used token", good, d.fingerprint, "join token already used")

	// A wrong pin: refused before the token is sent, so the token still
	// works with the right one.
	fresh := d.joinToken(t, "h3")
	wrong := "SHA256:" + strings.Repeat("ab", 32)
	refused("a wrong CA fingerprint", fresh, wrong, wrong)
	d.cli.ok(t, "", "node", "join", "--admin", d.url, "--token", fresh, "--ca-fingerprint", d.fingerprint, "--data-dir", filepath.Join(d.work, "node3"))

	// The expired token: the TTL's one second, and one more, so that the
	// admin node's clock is past it too.
	time.Sleep(time.Until(expiredAt.Add(time.Second)))
	refused("an expired token", expired, d.fingerprint, "join token expired")

	// The agent API: a plain HTTPS client trusting the CA, without a
	// client certificate, is 401; with the joined node's certificate, 200.
	pemData, err := os.ReadFile(d.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	agentGET := func(certs []tls.Certificate) (int, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(d.url + apitypes.AgentPrefix + "/instances")
		if err != nil {
			t.Fatalf("GET /agent/v1/instances: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := agentGET(nil); code != http.StatusUnauthorized || !strings.Contains(body, "client certificate") {
		t.Errorf("agent API without a client certificate: %d %s, want 401 naming the client certificate", code, body)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir1, "node.crt"), filepath.Join(dir1, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := agentGET([]tls.Certificate{cert}); code != http.StatusOK {
		t.Errorf("agent API with the node's certificate: %d %s, want 200", code, body)
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestNodeDeployTwoInstances: a deployment reaches both instances of a
// group on a host, which report it applied, and traffic through both
// follows it.
func TestNodeDeployTwoInstances(t *testing.T) {
	began := time.Now()
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	d := setUpNode(t, u1, "gw-a", "gw-b")
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")

	n := d.deployTo(t, u2.addr, "to u2")
	if n != 2 {
		t.Fatalf("second deployment is #%d", n)
	}
	views := d.waitLocal(t, "both instances running deployment #2", d.appliedEverywhere(2))
	d.waitRolledOut(t, 2)
	s := d.summary(t)
	if s.Rollout != "2/2" || !slices.Equal(sorted(s.Deployments["2"]), []string{"gw-a", "gw-b"}) || len(s.Deployments) != 1 {
		t.Errorf("summary after deployment #2: %+v", s)
	}
	ins := d.adminInstances(t)
	for _, name := range []string{"gw-a", "gw-b"} {
		in := ins[name]
		if in.Status != "Healthy" || in.Observed == nil || in.Observed.AppliedDeployment != 2 ||
			in.Observed.AppliedChecksum != s.CurrentChecksum || in.Observed.PID != views[name].PID || in.Observed.Process != "running" {
			t.Errorf("admin's view of %s: %+v observed %+v; node manager: %+v", name, in, in.Observed, views[name])
		}
	}
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestNodeGatewayRestarts: a gateway killed with SIGKILL is started again;
// one that exits at once every time ends in a crash loop, still retried.
func TestNodeGatewayRestarts(t *testing.T) {
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := setUpNode(t, up, "gw-a")
	old := d.waitLocal(t, "gw-a running", d.appliedEverywhere(1))["gw-a"]

	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	now := d.waitLocal(t, "gw-a restarted with a new pid", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.PID != 0 && in.PID != old.PID && in.Restarts >= 1 && in.Process == localapi.ProcessRunning &&
			in.AppliedDeployment == 1 && in.Ready && freshlyReported(in)
	})["gw-a"]
	if alive(old.PID) {
		t.Errorf("the killed gateway %d still runs", old.PID)
	}
	until(t, "the admin node showing gw-a's restart", func() (bool, string) {
		in := d.adminInstances(t)["gw-a"]
		return in.Observed != nil && in.Observed.Restarts >= 1 && in.Observed.PID == now.PID && in.Status == "Healthy",
			fmt.Sprintf("%s %+v", in.Status, in.Observed)
	})
	d.mustRouteTo(t, "u1", "gw-a")

	// gw-bad's traffic port is held by the test: the gateway cannot bind
	// it and exits at once, every time.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	d.createInstanceAt(t, "gw-bad", held.Addr().String(), freeAddr(t))
	var seen []string
	loop := d.waitLocal(t, "gw-bad in a crash loop", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-bad"]
		if in.Process != "" && (len(seen) == 0 || seen[len(seen)-1] != string(in.Process)) {
			seen = append(seen, string(in.Process))
		}
		return in.Process == "crash-loop" && in.Restarts >= 5
	})["gw-bad"]
	t.Logf("gw-bad went through %v; %d restarts, last error %q", seen, loop.Restarts, loop.LastError)
	if log, _ := os.ReadFile(filepath.Join(d.nodeDir, "instances", "gw-bad", "gateway.log")); !strings.Contains(string(log), "address already in use") {
		t.Errorf("gw-bad's log does not say why it exits (its port is taken):\n%s", log)
	}
	// Still retried, at the backoff's pace.
	d.waitLocal(t, "gw-bad retried in its crash loop", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-bad"]
		return in.Restarts > loop.Restarts && in.Process == "crash-loop"
	})
	until(t, "the admin node showing gw-bad's crash loop", func() (bool, string) {
		in := d.adminInstances(t)["gw-bad"]
		return in.Observed != nil && in.Observed.Process == "crash-loop" && in.Observed.Restarts >= 5 && in.Status != "Healthy",
			fmt.Sprintf("%s %+v", in.Status, in.Observed)
	})
	// The crash loop of one instance leaves the other alone.
	if in := d.waitLocal(t, "gw-a still running", d.appliedEverywhereBut("gw-bad", 1))["gw-a"]; in.PID != now.PID {
		t.Errorf("gw-a's pid changed from %d to %d during gw-bad's crash loop", now.PID, in.PID)
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// appliedEverywhereBut is appliedEverywhere ignoring one instance.
func (d *nmDomain) appliedEverywhereBut(skip string, n uint64) func(map[string]localapi.InstanceView) bool {
	return func(v map[string]localapi.InstanceView) bool {
		for name := range d.instances {
			if name == skip {
				continue
			}
			in := v[name]
			if in.Process != localapi.ProcessRunning || in.AppliedDeployment != n || !in.Ready || in.LastError != "" {
				return false
			}
		}
		return true
	}
}

// TestNodeManagerKilled: the gateways keep serving while the node manager
// is dead, and the next one adopts them (same pids) and supervises them.
func TestNodeManagerKilled(t *testing.T) {
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := setUpNode(t, up, "gw-a", "gw-b")
	before := d.waitLocal(t, "both running", d.appliedEverywhere(1))

	d.node.cmd.Process.Signal(syscall.SIGKILL)
	d.node.exit(t, 10*time.Second)
	for name, in := range before {
		if !alive(in.PID) {
			t.Errorf("%s (pid %d) died with its node manager", name, in.PID)
		}
	}
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")

	restarted := time.Now()
	d.startNode(t)
	after := d.waitLocal(t, "the gateways adopted", func(v map[string]localapi.InstanceView) bool {
		for name, b := range before {
			if in := v[name]; in.PID != b.PID || in.Process != localapi.ProcessRunning {
				return false
			}
		}
		return true
	})
	// The node manager learns what they run from their next report.
	after = d.waitLocal(t, "the adopted gateways reporting deployment #1", d.appliedEverywhere(1))
	t.Logf("the adopted gateways' reports reached the new node manager %s after its start", time.Since(restarted).Round(time.Millisecond))
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")

	// Supervision resumed: an adopted gateway killed is started again.
	if err := syscall.Kill(after["gw-a"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.waitLocal(t, "gw-a restarted by the new node manager", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.PID != 0 && in.PID != before["gw-a"].PID && in.Restarts >= 1 && in.Process == localapi.ProcessRunning &&
			in.AppliedDeployment == 1 && in.Ready && freshlyReported(in) && v["gw-b"].PID == before["gw-b"].PID
	})
	d.waitRolledOut(t, 1)
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestNodeAdminNodeDown: with the admin node stopped the gateways keep
// serving, a gateway restarted meanwhile serves its last deployment, and
// heartbeats resume when the admin node is back.
func TestNodeAdminNodeDown(t *testing.T) {
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := setUpNode(t, up, "gw-a", "gw-b")
	before := d.waitLocal(t, "both running", d.appliedEverywhere(1))

	d.admin.signal(syscall.SIGTERM)
	if code := d.admin.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("admin node exited with %d after SIGTERM", code)
	}
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")

	if code, body := localRequest(t, d.nodeAddr, "POST", localapi.PathInstances+"/gw-a/restart", "Authorization: Bearer "+readLocalToken(t, d.nodeDir)); code != http.StatusAccepted {
		t.Fatalf("POST /v1/instances/gw-a/restart: %d %s, want 202", code, body)
	}
	// The new process is started when the answer comes, and has not
	// reported yet: what /v1/instances (and so the heartbeat) says it runs
	// must not be the report of the process it replaced.
	if v, err := d.localInstances(t); err != nil {
		t.Fatal(err)
	} else if in := v["gw-a"]; in.PID != before["gw-a"].PID && (in.Ready || in.AppliedDeployment != 0) && !freshlyReported(in) {
		t.Errorf("BUG (nodemanager/agent.go views): right after its restart /v1/instances shows gw-a (pid %d, started %s) "+
			"ready=%v applied=%d, from the report of the replaced process %d (%s), before the new one reported",
			in.PID, in.StartedAt.Format(time.StampMicro), in.Ready, in.AppliedDeployment, before["gw-a"].PID,
			in.ReportedAt.Format(time.StampMicro))
	}
	d.waitLocal(t, "gw-a restarted and serving deployment #1 with the admin node down", func(v map[string]localapi.InstanceView) bool {
		in := v["gw-a"]
		return in.PID != before["gw-a"].PID && in.Process == localapi.ProcessRunning && in.AppliedDeployment == 1 &&
			in.Ready && in.LastError == "" && freshlyReported(in)
	})
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")
	// It serves its stored deployment, from its gateway.db.
	if r := d.gatewayStatus(t, "gw-a"); r.Configuration == nil || !strings.HasPrefix(r.Configuration.Origin, "store:") ||
		!strings.Contains(r.Configuration.Origin, "deployment:1") || !r.Ready {
		t.Errorf("gw-a after its restart: %+v, want ready with the configuration of its store, deployment:1", r)
	}
	if !alive(before["gw-b"].PID) {
		t.Errorf("gw-b died")
	}

	back := time.Now()
	d.admin = startAdminNode(t, d.adminDir, d.adminAddr, d.fingerprint)
	until(t, "heartbeats resumed and every instance Healthy", func() (bool, string) {
		ins := d.adminInstances(t)
		state := ""
		ok := len(ins) == 2
		for _, name := range []string{"gw-a", "gw-b"} {
			in := ins[name]
			state += fmt.Sprintf("%s: %s %+v; ", name, in.Status, in.Observed)
			ok = ok && in.Status == "Healthy" && in.Observed != nil && in.Observed.LastHeartbeat.After(back) &&
				in.Observed.AppliedDeployment == 1
		}
		return ok, state
	})
	if pid := d.adminInstances(t)["gw-a"].Observed.PID; pid == before["gw-a"].PID {
		t.Errorf("the admin node shows gw-a's old pid %d", pid)
	}
	d.waitRolledOut(t, 1)
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestNodeTamperedDeployment: a deployment whose signature does not verify
// is refused by the gateways, which keep serving the last good one and
// report the refusal, shown by the admin node as Only Heartbeat.
func TestNodeTamperedDeployment(t *testing.T) {
	began := time.Now()
	u1, u2, u3 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil), startUpstream(t, "u3", nil)
	d := setUpNode(t, u1, "gw-a", "gw-b")

	// Stop the node manager (the gateways keep running), deploy #2 while
	// it is away, and replace the group's deployment in its store by a
	// forgery of #2: #1 renumbered with another message, the rest,
	// signature included, as signed for #1. The node manager then asks the
	// admin node for news after #2, which has none for it: the forgery is
	// what it serves until the next deployment.
	d.node.signal(syscall.SIGTERM)
	if code := d.node.exit(t, 15*time.Second); code != 0 {
		t.Fatalf("node manager exited with %d after SIGTERM", code)
	}
	if n := d.deployTo(t, u2.addr, "real #2"); n != 2 {
		t.Fatalf("deployment is #%d, want #2", n)
	}
	db, err := bolt.Open(filepath.Join(d.nodeDir, "node.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte("deployments"))
		if bk == nil {
			return errors.New("no bucket deployments")
		}
		var dep deploy.Deployment
		if err := json.Unmarshal(bk.Get([]byte(nmGroup)), &dep); err != nil {
			return err
		}
		if dep.Number != 1 {
			return fmt.Errorf("stored deployment is #%d, want #1", dep.Number)
		}
		dep.Number++
		dep.Message = "forged"
		data, err := json.Marshal(&dep)
		if err != nil {
			return err
		}
		return bk.Put([]byte(nmGroup), data)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("tamper with node.db: %v", err)
	}

	d.startNode(t)
	views := d.waitLocal(t, "both gateways refusing the forged #2", func(v map[string]localapi.InstanceView) bool {
		for _, name := range []string{"gw-a", "gw-b"} {
			in := v[name]
			if in.DesiredDeployment != 2 || in.AppliedDeployment != 1 || !in.Ready ||
				!strings.Contains(in.LastError, "deployment 2 refused") || !strings.Contains(in.LastError, deploy.ErrBadSignature.Error()) {
				return false
			}
		}
		return true
	})
	t.Logf("gw-a reports: %q", views["gw-a"].LastError)
	d.mustRouteTo(t, "u1", "gw-a", "gw-b")
	until(t, "the admin node showing both instances Only Heartbeat", func() (bool, string) {
		ins := d.adminInstances(t)
		state := ""
		ok := true
		for _, name := range []string{"gw-a", "gw-b"} {
			in := ins[name]
			state += fmt.Sprintf("%s: %s %+v; ", name, in.Status, in.Observed)
			ok = ok && in.Status == "Only Heartbeat" && in.Observed != nil && in.Observed.AppliedDeployment == 1 &&
				strings.Contains(in.Observed.LastError, "deployment 2 refused")
		}
		return ok, state
	})
	if s := d.summary(t); s.CurrentDeployment != 2 || s.ByStatus["Only Heartbeat"] != 2 || s.Complete {
		t.Errorf("summary with the forgery refused: %+v", s)
	}

	// The next deployment replaces the forgery, and the gateways apply it.
	if n := d.deployTo(t, u3.addr, "real #3"); n != 3 {
		t.Fatalf("deployment is #%d, want #3", n)
	}
	d.waitLocal(t, "both gateways running #3", d.appliedEverywhere(3))
	d.waitRolledOut(t, 3)
	d.mustRouteTo(t, "u3", "gw-a", "gw-b")
	for _, name := range []string{"gw-a", "gw-b"} {
		log, _ := os.ReadFile(filepath.Join(d.nodeDir, "instances", name, "gateway.log"))
		t.Logf("%s: %d lines name the forged #2 refused", name, strings.Count(string(log), "deployment 2 refused"))
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestNodeDeployUnderTraffic: a deployment that moves a route to another
// upstream fails no request of clients sending all along.
func TestNodeDeployUnderTraffic(t *testing.T) {
	began := time.Now()
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	d := setUpNode(t, u1, "gw-a")
	target := "http://" + d.instances["gw-a"][0]

	const clients = 8
	var (
		total, failed, toU1, toU2 atomic.Int64
		firstErr                  atomic.Value
		wg                        sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range clients {
		wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/c%d/%d", target, i, j), nil)
				resp, err := hc.Do(req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch up := resp.Header.Get("X-Upstream"); {
				case resp.StatusCode != http.StatusOK:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
				case up == "u1":
					toU1.Add(1)
				case up == "u2":
					toU2.Add(1)
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	until(t, "traffic flowing to u1", func() (bool, string) { return toU1.Load() >= 200, fmt.Sprint(toU1.Load()) })
	if n := d.deployTo(t, u2.addr, "to u2"); n != 2 {
		t.Fatalf("deployment is #%d", n)
	}
	d.waitLocal(t, "gw-a running #2", d.appliedEverywhere(2))
	switched := toU2.Load()
	until(t, "traffic flowing to u2", func() (bool, string) {
		return toU2.Load() >= switched+200, fmt.Sprint(toU2.Load())
	})
	d.waitRolledOut(t, 2)
	stop()
	wg.Wait()
	t.Logf("%d requests by %d clients during the deployment: %d to u1, %d to u2, %d failed",
		total.Load(), clients, toU1.Load(), toU2.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the deployment; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	if toU1.Load()+toU2.Load() != total.Load() {
		t.Errorf("%d requests answered by neither upstream", total.Load()-toU1.Load()-toU2.Load())
	}
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}
