package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/gateway/gossip"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// The gossip end-to-end tests (docs/gossip.md): the gateways of a group,
// started by real node managers, find each other, see a peer die or
// leave, and the admin node shows what they see.
//
// A gateway killed under a running node manager is started again within
// about 100 ms, before its peers can declare it dead (0.8 to 1.4 s). To
// keep one down, as a crashed host would, the victim is alone on a second
// host whose node manager is killed first; starting that node manager
// again brings the victim back.

// gossipHost is a node manager standing for a host of its own: its data
// dir, local API and gateways are its own.
type gossipHost struct {
	name string
	dir  string
	addr string
	node *proc
	gw   *gatewayPids
	opts hostOpts
}

// hostOpts are how a host differs from the usual one.
type hostOpts struct {
	// admin is the admin node's URL for the node manager; empty, the
	// domain's.
	admin string
	// netns runs the node manager, and so its gateways, in this network
	// namespace.
	netns string
	// run are more flags of node run.
	run []string
}

// gossipDomain is an nmDomain with several hosts and groups.
type gossipDomain struct {
	*nmDomain
	hosts map[string]*gossipHost
	// members: instance → its group.
	members map[string]string
}

// newGossipDomain makes a domain with groups g1 and the others named.
func newGossipDomain(t *testing.T, adminArgs []string, groups ...string) *gossipDomain {
	t.Helper()
	d := &gossipDomain{nmDomain: newNMDomain(t, adminArgs...), hosts: map[string]*gossipHost{}, members: map[string]string{}}
	for _, g := range groups {
		d.cli.ok(t, "", "group", "create", g)
	}
	return d
}

// joinHost joins a host into its own node data dir. As in joinNode, the
// cleanup that kills the host's gateways is registered before its node
// manager starts, so that it runs once the node manager is gone.
func (d *gossipDomain) joinHost(t *testing.T, name string, o hostOpts) *gossipHost {
	t.Helper()
	h := &gossipHost{name: name, dir: filepath.Join(d.work, "node-"+name), addr: freeAddr(t), opts: o}
	h.gw = &gatewayPids{pids: map[int]bool{}, nodeDir: h.dir}
	t.Cleanup(h.gw.killAll)
	if o.admin == "" {
		o.admin = d.url
	}
	tok := d.joinToken(t, name)
	out := d.cli.ok(t, "", "node", "join", "--admin", o.admin, "--token", tok, "--ca-fingerprint", d.fingerprint, "--data-dir", h.dir)
	if !strings.Contains(out, "Joined domain e2e as host "+name) {
		t.Fatalf("node join said %q", out)
	}
	d.hosts[name] = h
	return h
}

// start runs the host's node manager and waits for its ready line.
func (h *gossipHost) start(t *testing.T) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	args := append([]string{binary, "node", "run", "--data-dir", h.dir, "--listen", h.addr, "--ready-file", ready,
		"--heartbeat", "1s", "--wait", "5s", "--drain-timeout", "5s", "--log-level", "debug"}, h.opts.run...)
	if h.opts.netns != "" {
		// ip execs the node manager in the namespace, without a fork: the
		// process is the node manager.
		args = append([]string{"ip", "netns", "exec", h.opts.netns}, args...)
	}
	p := startCmd(t, exec.Command(args[0], args[1:]...))
	p.waitReadyFile(t, ready)
	h.node = p
}

// stop ends the host's node manager with sig; its gateways keep running.
func (h *gossipHost) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	h.views(t) // records the pids for the cleanup
	h.node.signal(sig)
	h.node.exit(t, 15*time.Second)
}

// views reads the node manager's GET /v1/instances by name, and records
// the pids.
func (h *gossipHost) views(t *testing.T) map[string]localapi.InstanceView {
	t.Helper()
	resp, err := http.Get("http://" + h.addr + localapi.PathInstances)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var list localapi.InstanceList
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&list) != nil {
		return nil
	}
	out := map[string]localapi.InstanceView{}
	for _, v := range list.Instances {
		out[v.Name] = v
		h.gw.add(v.PID)
	}
	return out
}

// member declares an instance of group on host, its gossip on a free
// loopback port.
func (d *gossipDomain) member(t *testing.T, name, group string, h *gossipHost) {
	t.Helper()
	d.memberAt(t, name, group, h, freeAddr(t), freeAddr(t), freeGossipAddr(t))
}

// memberAt is member on the addresses given.
func (d *gossipDomain) memberAt(t *testing.T, name, group string, h *gossipHost, listen, status, gossipAddr string) {
	t.Helper()
	d.cli.ok(t, "", "instance", "create", name, "--group", group, "--host", h.name,
		"--listen", listen, "--status-listen", status, "--gossip-listen", gossipAddr)
	d.instances[name] = [2]string{listen, status}
	d.members[name] = group
}

// freeGossipAddr is freeAddr for a gossip address, which memberlist binds
// for TCP and UDP. The TCP side is reserved as freeAddr's is; the UDP side
// cannot be held (memberlist's UDP socket would not share the port), so
// the port is one free for UDP when handed out: only a UDP socket binding
// port 0 in the meantime (none of the processes under test does) could
// take it.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	return freeGossipAddrOn(t, "127.0.0.1")
}

// freeGossipAddrOn is freeGossipAddr on the IPv4 address ip.
func freeGossipAddrOn(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		addr := reserveAddr(t, ip)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatalf("no port on %s free for both TCP and UDP", ip)
	return ""
}

// deployGroup applies a configuration routing to upstreamAddr to group
// and deploys it; it returns the deployment's number.
func (d *gossipDomain) deployGroup(t *testing.T, group, upstreamAddr, message string) uint64 {
	t.Helper()
	f := filepath.Join(d.work, group+".yaml")
	writeFile(t, f, routeConfig(upstreamAddr))
	d.cli.ok(t, "", "config", "apply", "-f", f, "--group", group)
	out := d.cli.ok(t, "", "deploy", "--group", group, "-m", message, "--no-wait")
	m := regexp.MustCompile(`^deployed ` + regexp.QuoteMeta(group) + ` #(\d+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deploy said %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// peersAt reads the gossip peers of the gateway whose status address is
// status, by name.
func peersAt(status string) (map[string]gossip.Peer, error) {
	resp, err := noKeepAlive.Get("http://" + status + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Gossip *struct {
			Error string        `json:"error"`
			Peers []gossip.Peer `json:"peers"`
		} `json:"gossip"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Gossip == nil {
		return nil, fmt.Errorf("/status of %s has no gossip", status)
	}
	out := map[string]gossip.Peer{}
	for _, p := range r.Gossip.Peers {
		out[p.Name] = p
	}
	return out, nil
}

// peers reads an instance's gossip peers from its /status.
func (d *gossipDomain) peers(name string) (map[string]gossip.Peer, error) {
	return peersAt(d.instances[name][1])
}

// peersJSON renders a gossip view for failure messages.
func peersJSON[P gossip.Peer | localapi.Peer | apitypes.GossipPeer](peers []P) string {
	b, _ := json.Marshal(peers)
	return string(b)
}

// waitPeers waits until the gossip view of every instance in observers,
// in its /status, satisfies ok.
func (d *gossipDomain) waitPeers(t *testing.T, what string, observers []string, ok func(observer string, peers map[string]gossip.Peer) bool) {
	t.Helper()
	until(t, what, func() (bool, string) {
		state := ""
		all := true
		for _, o := range observers {
			ps, err := d.peers(o)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", o, err)
			}
			state += fmt.Sprintf("%s sees %s; ", o, peersJSON(slices.Collect(maps.Values(ps))))
			all = all && ok(o, ps)
		}
		return all, state
	})
}

// formed says whether an observer lists exactly the other members of its
// group, alive, on deployment n.
func (d *gossipDomain) formed(n uint64) func(string, map[string]gossip.Peer) bool {
	return func(observer string, ps map[string]gossip.Peer) bool {
		want := 0
		for name, g := range d.members {
			if name == observer || g != d.members[observer] {
				continue
			}
			want++
			if p, ok := ps[name]; !ok || p.State != gossip.StateAlive || p.Deployment != n || p.Group != g {
				return false
			}
		}
		return len(ps) == want
	}
}

// groupMembers lists the instances of group, sorted.
func (d *gossipDomain) groupMembers(group string) []string {
	var out []string
	for name, g := range d.members {
		if g == group {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// localPeer finds peer in the view a node manager has of instance.
func localPeer(v map[string]localapi.InstanceView, instance, peer string) (localapi.Peer, bool) {
	i := slices.IndexFunc(v[instance].Peers, func(p localapi.Peer) bool { return p.Name == peer })
	if i < 0 {
		return localapi.Peer{}, false
	}
	return v[instance].Peers[i], true
}

// adminPeer finds peer in the admin node's view of instance.
func adminPeer(in apitypes.Instance, peer string) (apitypes.GossipPeer, bool) {
	if in.Observed == nil {
		return apitypes.GossipPeer{}, false
	}
	i := slices.IndexFunc(in.Observed.Peers, func(p apitypes.GossipPeer) bool { return p.Name == peer })
	if i < 0 {
		return apitypes.GossipPeer{}, false
	}
	return in.Observed.Peers[i], true
}

// threeOnTwoHosts sets up g1 with gw-a and gw-b on h1 and gw-c alone on
// h2, deployment #1 applied and gossiped everywhere, and the admin node
// showing every instance Healthy, none unreachable.
func threeOnTwoHosts(t *testing.T, up *upstream, adminArgs ...string) *gossipDomain {
	t.Helper()
	d := newGossipDomain(t, adminArgs)
	h1, h2 := d.joinHost(t, "h1", hostOpts{}), d.joinHost(t, "h2", hostOpts{})
	d.member(t, "gw-a", nmGroup, h1)
	d.member(t, "gw-b", nmGroup, h1)
	d.member(t, "gw-c", nmGroup, h2)
	if n := d.deployGroup(t, nmGroup, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	h1.start(t)
	h2.start(t)
	d.waitPeers(t, "the three members alive in each other's gossip on #1", d.groupMembers(nmGroup), d.formed(1))
	d.waitAdminClear(t, "every instance Healthy, none unreachable", 1, time.Time{})
	return d
}

// waitAdminClear waits until the admin node shows every instance Healthy
// on deployment n, none unreachable, and each one's peers alive, all from
// heartbeats that came after since.
func (d *gossipDomain) waitAdminClear(t *testing.T, what string, n uint64, since time.Time) {
	t.Helper()
	until(t, what, func() (bool, string) {
		ins := d.adminInstances(t)
		s := d.summary(t)
		ok := len(ins) == len(d.members) && len(s.Unreachable) == 0 && len(s.Drift) == 0
		state := fmt.Sprintf("summary unreachable %v drift %v; ", s.Unreachable, s.Drift)
		for name, in := range ins {
			state += fmt.Sprintf("%s: %s unreachable_by %v", name, in.Status, in.UnreachableBy)
			ok = ok && in.Status == "Healthy" && !in.Unreachable && in.Observed != nil && in.Observed.AppliedDeployment == n &&
				in.Observed.LastHeartbeat.After(since)
			if in.Observed != nil {
				state += " peers " + peersJSON(in.Observed.Peers)
				for _, p := range in.Observed.Peers {
					ok = ok && p.State == gossip.StateAlive
				}
				ok = ok && len(in.Observed.Peers) == len(d.groupMembers(d.members[name]))-1
			}
			state += "; "
		}
		return ok, state
	})
}

// TestGossipFailureDetection: a gateway killed with SIGKILL, and kept
// down, is declared dead by its two peers, which their node manager and
// the admin node show; started again, it rejoins and the mark clears.
func TestGossipFailureDetection(t *testing.T) {
	t.Parallel()
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := threeOnTwoHosts(t, up)
	h1, h2 := d.hosts["h1"], d.hosts["h2"]
	victim := h2.views(t)["gw-c"]
	if victim.PID == 0 {
		t.Fatalf("h2 shows no pid for gw-c: %+v", victim)
	}

	h2.stop(t, syscall.SIGKILL)
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	survivors := []string{"gw-a", "gw-b"}
	d.waitPeers(t, "gw-c dead in the gossip of gw-a and gw-b", survivors, func(_ string, ps map[string]gossip.Peer) bool {
		return ps["gw-c"].State == gossip.StateDead
	})
	seen := time.Since(killed)
	until(t, "h1's node manager showing gw-c dead in gw-a's and gw-b's views", func() (bool, string) {
		v := h1.views(t)
		ok := true
		for _, s := range survivors {
			p, found := localPeer(v, s, "gw-c")
			ok = ok && found && p.State == gossip.StateDead
		}
		return ok, peersJSON(v["gw-a"].Peers) + " / " + peersJSON(v["gw-b"].Peers)
	})
	until(t, "the admin node showing gw-c unreachable by gw-a and gw-b", func() (bool, string) {
		ins := d.adminInstances(t)
		c := ins["gw-c"]
		return c.Unreachable && slices.Equal(sorted(c.UnreachableBy), survivors) && !ins["gw-a"].Unreachable && !ins["gw-b"].Unreachable,
			fmt.Sprintf("gw-c: %s unreachable=%v by %v", c.Status, c.Unreachable, c.UnreachableBy)
	})
	shown := time.Since(killed)
	if s := d.summary(t); !slices.Equal(s.Unreachable, []string{"gw-c"}) {
		t.Errorf("summary: unreachable %v, want [gw-c]", s.Unreachable)
	}
	t.Logf("gw-c killed: dead in both peers' /status after %s, unreachable at the admin node after %s",
		seen.Round(time.Millisecond), shown.Round(time.Millisecond))

	restarted := time.Now()
	h2.start(t)
	until(t, "gw-c started again by h2's node manager", func() (bool, string) {
		c := h2.views(t)["gw-c"]
		return c.PID != 0 && c.PID != victim.PID && c.Process == localapi.ProcessRunning && c.AppliedDeployment == 1 && freshlyReported(c),
			fmt.Sprintf("%+v", c)
	})
	d.waitPeers(t, "gw-c back in everyone's gossip", d.groupMembers(nmGroup), d.formed(1))
	d.waitAdminClear(t, "gw-c's unreachable mark cleared at the admin node", 1, restarted)
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// TestGossipGracefulLeave: a gateway stopped with SIGTERM leaves: its
// peers list it as left, which is no failure, and the admin node does not
// show it unreachable.
func TestGossipGracefulLeave(t *testing.T) {
	t.Parallel()
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := threeOnTwoHosts(t, up)
	h2 := d.hosts["h2"]
	victim := h2.views(t)["gw-c"]

	h2.stop(t, syscall.SIGKILL)
	if err := syscall.Kill(victim.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	until(t, "gw-c's process gone after SIGTERM", func() (bool, string) {
		return !alive(victim.PID), fmt.Sprintf("pid %d alive", victim.PID)
	})
	survivors := []string{"gw-a", "gw-b"}
	d.waitPeers(t, "gw-c left in the gossip of gw-a and gw-b", survivors, func(_ string, ps map[string]gossip.Peer) bool {
		return ps["gw-c"].State == gossip.StateLeft
	})
	// Once the admin node has the views that say "left", gw-c must not be
	// unreachable: a departure is not a failure.
	until(t, "the admin node having gw-a's and gw-b's views of gw-c's departure", func() (bool, string) {
		ins := d.adminInstances(t)
		ok := true
		state := ""
		for _, s := range survivors {
			p, found := adminPeer(ins[s], "gw-c")
			ok = ok && found && p.State == gossip.StateLeft
			state += fmt.Sprintf("%s sees %+v; ", s, p)
		}
		return ok, state
	})
	if c := d.adminInstances(t)["gw-c"]; c.Unreachable || len(c.UnreachableBy) != 0 {
		t.Errorf("gw-c left gracefully but the admin node shows it unreachable by %v", c.UnreachableBy)
	}
	if s := d.summary(t); len(s.Unreachable) != 0 {
		t.Errorf("summary after a graceful leave: unreachable %v", s.Unreachable)
	}
	for _, s := range survivors {
		if p := mustGet(t, d.peers)(s)["gw-c"]; p.State != gossip.StateLeft {
			t.Errorf("%s sees gw-c %s after its departure, want left for good", s, p.State)
		}
	}

	restarted := time.Now()
	h2.start(t)
	d.waitPeers(t, "gw-c back in everyone's gossip", d.groupMembers(nmGroup), d.formed(1))
	d.waitAdminClear(t, "every instance Healthy again", 1, restarted)
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// mustGet calls f and fails the test on its error.
func mustGet[A, R any](t *testing.T, f func(A) (R, error)) func(A) R {
	return func(a A) R {
		t.Helper()
		r, err := f(a)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// TestGossipGroupsIsolated: two groups on one host form two clusters;
// neither lists a member of the other, in /status, at the node manager
// or at the admin node. A gateway of g1 with a key that is not the
// group's cannot join it.
func TestGossipGroupsIsolated(t *testing.T) {
	t.Parallel()
	began := time.Now()
	up := startUpstream(t, "u1", nil)
	d := newGossipDomain(t, nil, "g2")
	h1 := d.joinHost(t, "h1", hostOpts{})
	d.member(t, "gw-a", nmGroup, h1)
	d.member(t, "gw-b", nmGroup, h1)
	d.member(t, "gw-x", "g2", h1)
	d.member(t, "gw-y", "g2", h1)
	d.deployGroup(t, nmGroup, up.addr, "g1 first")
	d.deployGroup(t, "g2", up.addr, "g2 first")
	h1.start(t)
	all := []string{"gw-a", "gw-b", "gw-x", "gw-y"}
	d.waitPeers(t, "each group formed, alone", all, d.formed(1))
	v := h1.views(t)
	for _, name := range all {
		for _, p := range v[name].Peers {
			if d.members[p.Name] != d.members[name] {
				t.Errorf("the node manager shows %s (%s) seeing %s of another group", name, d.members[name], p.Name)
			}
		}
	}
	until(t, "the admin node with each instance's view of its own group only", func() (bool, string) {
		ins := d.adminInstances(t)
		ok := true
		state := ""
		for _, name := range all {
			in := ins[name]
			if in.Observed == nil {
				return false, name + " not observed yet"
			}
			state += fmt.Sprintf("%s: %s; ", name, peersJSON(in.Observed.Peers))
			ok = ok && len(in.Observed.Peers) == 1
			for _, p := range in.Observed.Peers {
				ok = ok && d.members[p.Name] == d.members[name] && p.State == gossip.StateAlive
			}
		}
		return ok, state
	})

	// A gateway that says it is of g1 but has a key of its own: a
	// stand-in node manager gives it the key and gw-a as its seed.
	key := make([]byte, 32)
	rand.Read(key)
	rogue := startRogueGateway(t, h1, "gw-rogue", nmGroup, []string{d.gossipAddr(t, "gw-a")}, base64.StdEncoding.EncodeToString(key))
	// Its first join attempts failing is what makes the peers' views
	// below mean something: it tried.
	rogue.waitFor(t, nmDeadline, "the rogue's joins failing three times", func() bool {
		return strings.Count(rogue.out.String(), "cannot join seed") >= 3
	})
	for _, name := range all {
		if _, ok := mustGet(t, d.peers)(name)["gw-rogue"]; ok {
			t.Errorf("%s lists the gateway with the wrong key", name)
		}
	}
	if ps := mustGet(t, peersAt)(rogue.status); len(ps) != 0 {
		t.Errorf("the gateway with the wrong key lists %s", peersJSON(slices.Collect(maps.Values(ps))))
	}
	d.waitPeers(t, "the groups unchanged", all, d.formed(1))
	t.Logf("the rogue's log says: %s", lineWith(rogue.out.String(), "cannot join seed"))
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// gossipAddr is an instance's gossip address as the admin node has it.
func (d *gossipDomain) gossipAddr(t *testing.T, name string) string {
	t.Helper()
	var in apitypes.Instance
	d.cli.json(t, &in, "instance", "get", name)
	if in.GossipListen == "" {
		t.Fatalf("instance %s has no gossip address", name)
	}
	return in.GossipListen
}

// lineWith is the first line of s containing a string.
func lineWith(s, containing string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, containing) {
			return line
		}
	}
	return ""
}

// startRogueGateway runs a gateway under a stand-in node manager that
// hands it seeds and a gossip key but no deployment, as the real one does
// for a group without one. It takes the real domain key from h's
// identity: only its gossip key is wrong.
func startRogueGateway(t *testing.T, h *gossipHost, name, group string, seeds []string, key string) *proc {
	t.Helper()
	var id struct {
		SigningKey string `json:"signing_key"`
	}
	data, err := os.ReadFile(filepath.Join(h.dir, "node.json"))
	if err != nil || json.Unmarshal(data, &id) != nil {
		t.Fatalf("read %s's node.json: %v", h.name, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+localapi.PathDeployment, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get(localapi.QueryIndex) == "1" {
			// Nothing new: hold the query, as a node manager does.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
		json.NewEncoder(w).Encode(localapi.DeploymentAnswer{Index: 1, Gossip: &localapi.Gossip{Seeds: seeds, Keys: []string{key}}})
	})
	mux.HandleFunc("PUT "+localapi.PathInstances+"/{name}/report", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	nm := httptest.NewServer(mux)
	t.Cleanup(nm.Close)
	// Nobody seeds the rogue: all its ports are its own choice.
	ready := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(binary, "gateway",
		"--node-manager", nm.URL, "--domain-key", id.SigningKey, "--group", group, "--instance", name,
		"--gossip-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0", "--tls-listen", "",
		"--ready-file", ready, "--log-level", "debug")
	cmd.Env = append(os.Environ(), localapi.EnvInstanceSecret+"=rogue")
	p := startCmd(t, cmd)
	p.status = p.waitReadyFile(t, ready)["status_listen"]
	p.waitFor(t, 10*time.Second, "the rogue gateway's gossip", func() bool {
		_, err := peersAt(p.status)
		return err == nil
	})
	return p
}

// TestGossipDrift: an instance held on an older deployment (its node
// manager stopped, so it never gets the new one) is flagged on the
// group's summary, through its peers' gossip, once the grace period is
// over; its node manager back, it applies the deployment and the flag
// clears.
func TestGossipDrift(t *testing.T) {
	t.Parallel()
	began := time.Now()
	u1, u2 := startUpstream(t, "u1", nil), startUpstream(t, "u2", nil)
	d := threeOnTwoHosts(t, u1, "--drift-grace", "1s")
	h1, h2 := d.hosts["h1"], d.hosts["h2"]

	h2.stop(t, syscall.SIGTERM)
	if n := d.deployGroup(t, nmGroup, u2.addr, "second"); n != 2 {
		t.Fatalf("second deployment is #%d", n)
	}
	until(t, "gw-a and gw-b running #2", func() (bool, string) {
		v := h1.views(t)
		return v["gw-a"].AppliedDeployment == 2 && v["gw-b"].AppliedDeployment == 2, fmt.Sprintf("%+v", v)
	})
	d.waitPeers(t, "gw-a and gw-b seeing gw-c alive on #1", []string{"gw-a", "gw-b"}, func(_ string, ps map[string]gossip.Peer) bool {
		return ps["gw-c"].State == gossip.StateAlive && ps["gw-c"].Deployment == 1
	})
	var s apitypes.GroupSummary
	until(t, "the summary flagging gw-c's drift on #1, and only it", func() (bool, string) {
		s = d.summary(t)
		return len(s.Drift) == 1 && s.Drift[0].Instance == "gw-c" && s.Drift[0].Deployment == 1 && s.CurrentDeployment == 2,
			fmt.Sprintf("%+v", s)
	})
	if !slices.Equal(s.Deployments["1"], []string{"gw-c"}) || !slices.Equal(sorted(s.Deployments["2"]), []string{"gw-a", "gw-b"}) || s.Complete {
		t.Errorf("summary with gw-c behind: deployments %v, complete %v", s.Deployments, s.Complete)
	}
	if len(s.Unreachable) != 0 {
		t.Errorf("gw-c is up, yet unreachable: %v", s.Unreachable)
	}
	t.Logf("drift flagged: %+v", s.Drift)
	// Held back, it still serves what it has.
	d.mustRouteTo(t, "u1", "gw-c")
	d.mustRouteTo(t, "u2", "gw-a", "gw-b")

	restarted := time.Now()
	h2.start(t)
	until(t, "gw-c running #2", func() (bool, string) {
		c := h2.views(t)["gw-c"]
		return c.AppliedDeployment == 2 && c.Ready, fmt.Sprintf("%+v", c)
	})
	d.waitAdminClear(t, "drift cleared, #2 everywhere", 2, restarted)
	d.waitRolledOut(t, 2)
	d.mustRouteTo(t, "u2", "gw-a", "gw-b", "gw-c")
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}

// netnsLink is a network namespace joined to the test's by a veth pair:
// its side is addr, the test's side peer, a /30 of 198.18.0.0/15, the
// range set aside for tests of networks (RFC 2544), which no real network
// of the machine should use.
type netnsLink struct {
	name, dev  string // namespace, and the veth end inside it
	addr, peer string
}

// newNetns makes a network namespace linked to the test's, or skips the
// test where that is not allowed (it needs CAP_NET_ADMIN and iproute2).
func newNetns(t *testing.T) *netnsLink {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("partition test: no ip command (iproute2) to make a network namespace")
	}
	b := make([]byte, 3)
	rand.Read(b)
	suffix := fmt.Sprintf("%x", b)
	n := &netnsLink{name: "gh-e2e-" + suffix, dev: "ghb" + suffix,
		peer: fmt.Sprintf("198.%d.%d.%d", 18+b[0]%2, b[1], b[2]&^3+1), addr: fmt.Sprintf("198.%d.%d.%d", 18+b[0]%2, b[1], b[2]&^3+2)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("partition test: cannot make a network namespace here (ip netns add: %v: %s)", err, bytes.TrimSpace(out))
	}
	// Deleting the namespace deletes the veth pair with it.
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	host := "gha" + suffix
	for _, args := range [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", n.dev},
		{"link", "set", n.dev, "netns", n.name},
		{"addr", "add", n.peer + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"-n", n.name, "addr", "add", n.addr + "/30", "dev", n.dev},
		{"-n", n.name, "link", "set", n.dev, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("partition test: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
	}
	return n
}

// setLink brings the namespace's side of the link up or down: the
// namespace is cut off, while the test's side keeps its address.
func (n *netnsLink) setLink(t *testing.T, state string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", n.name, "link", "set", n.dev, state).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s %s: %v: %s", n.dev, state, err, out)
	}
}

// forward relays TCP connections from listen to to, so that a node
// manager in a namespace reaches the admin node on the test's loopback;
// it returns the address it listens on.
func forward(t *testing.T, listen, to string) string {
	t.Helper()
	return relayTCP(t, listen, to, func(client io.Writer, target io.Reader) { io.Copy(client, target) })
}

// relayTCP accepts connections on listen and joins each to a connection
// it dials to target: what the client sends is copied as it is, what the
// target sends is given to back (io.Copy for a plain relay). Either side
// ending ends both. It returns the address it listens on; everything is
// closed when the test ends.
func relayTCP(t *testing.T, listen, target string, back func(client io.Writer, target io.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { back(c, u); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// TestGossipPartition: gw-c's host is cut off the network (its own
// network namespace, whose link goes down): its peers declare it dead and
// the admin node shows it unreachable; the link back, it is alive again
// everywhere, by memberlist's own repair, and the mark clears.
func TestGossipPartition(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ns := newNetns(t)
	up := startUpstream(t, "u1", nil)
	d := newGossipDomain(t, []string{"--server-name", ns.peer})
	// h1 gossips on the test's side of the link; h2 reaches the admin
	// node there too (the relay), and says which address its gateways
	// have, since the admin node sees the relay's.
	adminRelay := forward(t, net.JoinHostPort(ns.peer, "0"), d.adminAddr)
	h1 := d.joinHost(t, "h1", hostOpts{run: []string{"--advertise", ns.peer}})
	h2 := d.joinHost(t, "h2", hostOpts{admin: "https://" + adminRelay, netns: ns.name, run: []string{"--advertise", ns.addr}})
	d.memberAt(t, "gw-a", nmGroup, h1, freeAddr(t), freeAddr(t), freeGossipAddrOn(t, ns.peer))
	d.memberAt(t, "gw-b", nmGroup, h1, freeAddr(t), freeAddr(t), freeGossipAddrOn(t, ns.peer))
	// The namespace is gw-c's alone: any port is free there.
	d.memberAt(t, "gw-c", nmGroup, h2, "127.0.0.1:8080", ns.addr+":8085", ns.addr+":7946")
	if n := d.deployGroup(t, nmGroup, up.addr, "first"); n != 1 {
		t.Fatalf("first deployment is #%d", n)
	}
	h1.start(t)
	h2.start(t)
	all := d.groupMembers(nmGroup)
	d.waitPeers(t, "the three members alive in each other's gossip, across the link", all, d.formed(1))
	d.waitAdminClear(t, "every instance Healthy, none unreachable", 1, time.Time{})

	ns.setLink(t, "down")
	cut := time.Now()
	survivors := []string{"gw-a", "gw-b"}
	d.waitPeers(t, "gw-c dead in the gossip of gw-a and gw-b", survivors, func(_ string, ps map[string]gossip.Peer) bool {
		return ps["gw-c"].State == gossip.StateDead
	})
	until(t, "the admin node showing gw-c unreachable by gw-a and gw-b", func() (bool, string) {
		c := d.adminInstances(t)["gw-c"]
		return c.Unreachable && slices.Equal(sorted(c.UnreachableBy), survivors), fmt.Sprintf("%+v", c.UnreachableBy)
	})
	t.Logf("gw-c cut off: unreachable at the admin node after %s", time.Since(cut).Round(time.Millisecond))

	ns.setLink(t, "up")
	healed := time.Now()
	d.waitPeers(t, "everyone alive in everyone's gossip again", all, d.formed(1))
	mended := time.Since(healed)
	// The mark is gw-a's and gw-b's word, which their node manager sends
	// at once. h2's own heartbeats are left out: its connection to the
	// admin node, cut mid-stream, comes back at the pace of TCP's
	// retransmissions, which say nothing about gossip.
	until(t, "the admin node clearing the mark on gw-a's and gw-b's word", func() (bool, string) {
		ins := d.adminInstances(t)
		ok := !ins["gw-c"].Unreachable && len(d.summary(t).Unreachable) == 0
		state := fmt.Sprintf("gw-c unreachable_by %v; ", ins["gw-c"].UnreachableBy)
		for _, s := range survivors {
			p, found := adminPeer(ins[s], "gw-c")
			ok = ok && found && p.State == gossip.StateAlive && ins[s].Observed.LastHeartbeat.After(healed)
			state += fmt.Sprintf("%s sees %+v; ", s, p)
		}
		return ok, state
	})
	t.Logf("link back: the group whole again after %s, the mark cleared after %s",
		mended.Round(time.Millisecond), time.Since(healed).Round(time.Millisecond))
	t.Logf("wall time %s", time.Since(began).Round(time.Millisecond))
}
