package api

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/ca"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/waitfor"
	"github.com/gatehouse/gatehouse/pki"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// agentServer serves the API over TLS with the domain CA, as admin run
// does, asking for (not requiring) client certificates.
func (e *env) agentServer() *httptest.Server {
	cert, err := e.ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.srv.Handler())
	srv.TLS = e.ca.ServerTLS(cert)
	srv.StartTLS()
	e.t.Cleanup(srv.Close)
	return srv
}

// node is a node manager's HTTPS client, with its certificate once it has
// one.
type node struct {
	t    testing.TB
	url  string
	http *http.Client
}

func newNode(t testing.TB, url string, root *ca.CA, cert *tls.Certificate) *node {
	cfg, err := ca.ClientTLS(root.CertPEM(), cert)
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, url: url, http: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: time.Minute}}
}

func (n *node) do(method, path string, in any) reply {
	n.t.Helper()
	var body io.Reader
	if in != nil {
		data, _ := json.Marshal(in)
		body = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, n.url+apitypes.AgentPrefix+path, body)
	resp, err := n.http.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// joinAs makes a join token for host and joins with it, returning the
// node's certificate.
func (e *env) joinAs(url, host string) tls.Certificate {
	e.t.Helper()
	var jt apitypes.JoinTokenCreated
	e.do(e.admin, "POST", "/join-tokens", apitypes.JoinTokenCreate{Host: host}).expect(e.t, http.StatusCreated, "join token").decode(e.t, &jt)
	csr, key := newCSR(e.t, host)
	var out apitypes.AgentJoinResponse
	newNode(e.t, url, e.ca, nil).do("POST", "/join", apitypes.AgentJoinRequest{Token: jt.Token, CSR: string(csr)}).
		expect(e.t, http.StatusOK, "join").decode(e.t, &out)
	cert, err := tls.X509KeyPair([]byte(out.Certificate), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return cert
}

func TestJoin(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	anon := newNode(t, srv.URL, e.ca, nil)

	var jt apitypes.JoinTokenCreated
	e.do(e.admin, "POST", "/join-tokens", apitypes.JoinTokenCreate{Host: "web-1", TTL: "10m"}).
		expect(t, http.StatusCreated, "join token").decode(t, &jt)
	if jt.CAFingerprint != e.ca.Fingerprint() || jt.Host != "web-1" {
		t.Fatalf("join token %+v", jt)
	}
	must[store.Host](t)(e.store.GetHost(bg, "web-1")) // made with the token
	csr, _ := newCSR(t, "web-1")
	var joined apitypes.AgentJoinResponse
	anon.do("POST", "/join", apitypes.AgentJoinRequest{Token: jt.Token, CSR: string(csr)}).
		expect(t, http.StatusOK, "join").decode(t, &joined)
	if joined.Host != "web-1" || joined.Domain != "test" || joined.SigningKey != deploy.EncodePublicKey(e.pub) ||
		!strings.Contains(joined.Certificate, "BEGIN CERTIFICATE") {
		t.Fatalf("join answer %+v", joined)
	}
	for _, tc := range []struct{ name, token, want string }{
		{"reused token", jt.Token, "already used"},
		{"malformed token", "nonsense", "malformed"},
		{"unknown token", "gh_0123456789abcdef_" + strings.Repeat("A", 43), "invalid join token"},
	} {
		r := anon.do("POST", "/join", apitypes.AgentJoinRequest{Token: tc.token, CSR: string(csr)}).expect(t, http.StatusUnauthorized, tc.name)
		if !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s, want %q", tc.name, r.body, tc.want)
		}
	}
	e.do(e.admin, "POST", "/join-tokens", apitypes.JoinTokenCreate{Host: "web-2", TTL: "1m"}).
		expect(t, http.StatusCreated, "short token").decode(t, &jt)
	e.advance(2 * time.Minute)
	r := anon.do("POST", "/join", apitypes.AgentJoinRequest{Token: jt.Token, CSR: string(csr)}).expect(t, http.StatusUnauthorized, "expired token")
	if !strings.Contains(string(r.body), "expired") {
		t.Errorf("expired token: %s", r.body)
	}
	// Agent routes without a client certificate are refused.
	anon.do("GET", "/instances", nil).expect(t, http.StatusUnauthorized, "no client certificate")
	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=node.join", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != 5 || entries[4].Result != store.AuditOK || entries[4].User != "node:web-1" {
		t.Errorf("join audit %+v", entries)
	}
}

func TestAgentAPI(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	e.group("other", nil)

	var ins apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
	if len(ins.Instances) != 0 || ins.Index == 0 {
		t.Fatalf("instances of an empty host %+v", ins)
	}
	// A blocking query answers when the host's instances change.
	answer := make(chan reply, 1)
	go func() { answer <- n.do("GET", "/instances?wait=20s&index="+jsonIndex(ins.Index), nil) }()
	// Nothing changed: the query stays open (and meanwhile reaches the
	// server, so that the change below is one it waits for).
	waitfor.Holds(t, 200*time.Millisecond, "the blocking query open", func() (bool, string) {
		select {
		case r := <-answer:
			answer <- r
			return false, fmt.Sprintf("answered %d before any change", r.status)
		default:
			return true, ""
		}
	})
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1"}).expect(t, http.StatusCreated, "instance")
	r := <-answer
	r.expect(t, http.StatusOK, "blocking instances").decode(t, &ins)
	if len(ins.Instances) != 1 || ins.Instances[0].Name != "i1" || ins.Instances[0].Group != "edge" {
		t.Fatalf("instances after the change %+v", ins)
	}
	// An unchanged resource answers after the wait with the same index.
	var same apitypes.AgentInstances
	n.do("GET", "/instances?wait=100ms&index="+jsonIndex(ins.Index), nil).expect(t, http.StatusOK, "timeout").decode(t, &same)
	if same.Index != ins.Index {
		t.Errorf("index moved without a change: %d → %d", ins.Index, same.Index)
	}

	n.do("GET", "/groups/other/deployment", nil).expect(t, http.StatusForbidden, "group without an instance on the host")
	var dep apitypes.AgentDeployment
	n.do("GET", "/groups/edge/deployment", nil).expect(t, http.StatusOK, "no deployment yet").decode(t, &dep)
	if dep.Index != 0 || dep.Deployment != nil {
		t.Fatalf("deployment of a group without one %+v", dep)
	}
	go func() { answer <- n.do("GET", "/groups/edge/deployment?wait=20s&index=0", nil) }()
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "m"}).expect(t, http.StatusCreated, "deploy")
	(<-answer).expect(t, http.StatusOK, "deployment").decode(t, &dep)
	if dep.Index != 1 || dep.Deployment == nil || dep.Deployment.Number != 1 {
		t.Fatalf("deployment %+v", dep)
	}
	if err := dep.Deployment.Verify(e.pub, catalog.Checker{}); err != nil {
		t.Fatalf("relayed deployment does not verify: %v", err)
	}

	// Heartbeats make the instance Healthy; states of other hosts'
	// instances are ignored.
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h2"}))
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "elsewhere", Group: "edge", Host: "h2"}))
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: "i1", Process: "running", PID: 42, AppliedDeployment: 1, AppliedChecksum: dep.Deployment.Checksum, Ready: true},
		{Name: "elsewhere", AppliedDeployment: 1, AppliedChecksum: dep.Deployment.Checksum, Ready: true},
	}}).expect(t, http.StatusOK, "heartbeat")
	var views []apitypes.Instance
	e.do(e.admin, "GET", "/groups/edge/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &views)
	got := map[string]string{}
	for _, v := range views {
		got[v.Name] = v.Status
	}
	if got["i1"] != status.Healthy || got["elsewhere"] != status.Pending {
		t.Errorf("statuses after a heartbeat %v", got)
	}

	// Renewal gives a working certificate.
	csr, key := newCSR(t, "h1")
	var renewed apitypes.AgentRenewResponse
	n.do("POST", "/renew", apitypes.AgentRenewRequest{CSR: string(csr)}).expect(t, http.StatusOK, "renew").decode(t, &renewed)
	cert2, err := tls.X509KeyPair([]byte(renewed.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	n2 := newNode(t, srv.URL, e.ca, &cert2)
	n2.do("GET", "/instances?wait=0s", nil).expect(t, http.StatusOK, "renewed certificate")

	// A certificate of another domain is refused.
	other := must[*ca.CA](t)(ca.New("test", time.Now()))
	csr3, key3 := newCSR(t, "h1")
	pem3, _, err := other.SignCSR(csr3, "h1", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert3, _ := tls.X509KeyPair(pem3, key3)
	if _, err := newNode(t, srv.URL, e.ca, &cert3).http.Get(srv.URL + apitypes.AgentPrefix + "/instances"); err == nil {
		t.Error("a certificate of another CA passed the handshake")
	}

	// Deleting the host revokes its certificates.
	e.do(e.admin, "DELETE", "/instances/i1", nil).expect(t, http.StatusNoContent, "delete instance")
	e.do(e.admin, "DELETE", "/hosts/h1", nil).expect(t, http.StatusNoContent, "delete host")
	for i, c := range []*node{n, n2} {
		r := c.do("GET", "/instances?wait=0s", nil).expect(t, http.StatusForbidden, "revoked certificate")
		if !strings.Contains(string(r.body), "revoked") && !strings.Contains(string(r.body), "no longer") {
			t.Errorf("certificate %d after host deletion: %s", i, r.body)
		}
	}
}

func jsonIndex(n uint64) string { return strconv.FormatUint(n, 10) }

func newCSR(t testing.TB, host string) (csr, key []byte) {
	t.Helper()
	csr, key, err := pki.NewCSR(host)
	if err != nil {
		t.Fatal(err)
	}
	return csr, key
}

// Heartbeats live in memory and reach the store by Flush: a restarted
// admin node shows the statuses it had.
func TestObservedStateSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	e.group("edge", nil)
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1"}).expect(t, http.StatusCreated, "instance")
	newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: "i1", Process: "running", Ready: true}}}).expect(t, http.StatusOK, "heartbeat")
	if got, _ := e.store.ListInstanceStates(bg); len(got) != 0 {
		t.Errorf("a heartbeat was written at once: %+v", got)
	}
	if err := e.srv.Flush(bg); err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{Store: e.store, Domain: must[store.Domain](t)(e.store.GetDomain(bg)), SigningKey: e.srv.key, SettingsKey: e.settingsKey, CA: e.ca, Now: e.clockNow})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := again.states()["i1"]
	if !ok || st.Process != "running" || !st.Ready {
		t.Fatalf("state after a restart: %+v %t", st, ok)
	}
}

func TestGossipSettingsAndViews(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	var i1, i2 apitypes.Instance
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1", Listen: ":8080", StatusListen: ":8085"}).
		expect(t, http.StatusCreated, "i1").decode(t, &i1)
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i2", Group: "edge", Host: "h1", Listen: ":8081", StatusListen: ":8086"}).
		expect(t, http.StatusCreated, "i2").decode(t, &i2)
	if i1.GossipListen != ":7946" || i2.GossipListen != ":7947" {
		t.Fatalf("gossip ports %q %q, want :7946 and :7947", i1.GossipListen, i2.GossipListen)
	}
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i3", Group: "edge", Host: "h1", Listen: ":8082", StatusListen: ":8087", GossipListen: ":7947"}).
		expect(t, http.StatusConflict, "gossip port clash")
	if r := e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i4", Group: "edge", Host: "ghost"}).
		expect(t, http.StatusBadRequest, "a host not in the domain"); !strings.Contains(string(r.body), `"field":"host"`) {
		t.Errorf("a host not in the domain is refused without naming the field: %s", r.body)
	}
	if r := e.do(e.admin, "GET", "/groups/edge", nil).expect(t, http.StatusOK, "group"); strings.Contains(string(r.body), "gossip") {
		t.Errorf("the group shows its gossip keys: %s", r.body)
	}

	// Seeds need the host's address, which the first heartbeat gives.
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{}).expect(t, http.StatusOK, "heartbeat")
	var ins apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &ins)
	byName := map[string]apitypes.AgentInstance{}
	for _, in := range ins.Instances {
		byName[in.Name] = in
	}
	g1 := byName["i1"].Gossip
	if g1 == nil || g1.Listen != ":7946" || len(g1.Keys) != 1 || len(g1.Seeds) != 1 || g1.Seeds[0] != "127.0.0.1:7947" {
		t.Fatalf("gossip of i1 %+v", g1)
	}
	oldKey := g1.Keys[0]
	var rot apitypes.GossipKeyRotation
	e.do(e.admin, "POST", "/groups/edge/gossip-key", nil).expect(t, http.StatusOK, "rotate").decode(t, &rot)
	if rot.Keys != 2 {
		t.Errorf("rotation %+v", rot)
	}
	var rotated apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &rotated)
	if g := rotated.Instances[0].Gossip; len(g.Keys) != 2 || g.Keys[1] != oldKey || g.Keys[0] == oldKey {
		t.Errorf("keys after a rotation: new primary first, old one kept: %+v (was %s)", g.Keys, oldKey)
	}

	// i2's peers say i1 is dead: i1 is unreachable by its peers at once.
	e.deployed("edge")
	beat := func(i1State string, i2Applied uint64) {
		n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
			{Name: "i1", Ready: true, AppliedDeployment: 1, Peers: []apitypes.GossipPeer{{Name: "i2", State: "alive"}}},
			{Name: "i2", Ready: true, AppliedDeployment: i2Applied, Peers: []apitypes.GossipPeer{{Name: "i1", State: i1State}}},
		}}).expect(t, http.StatusOK, "heartbeat")
	}
	beat("dead", 0)
	var views []apitypes.Instance
	e.do(e.admin, "GET", "/groups/edge/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &views)
	if !views[0].Unreachable || len(views[0].UnreachableBy) != 1 || views[0].UnreachableBy[0] != "i2" || views[1].Unreachable {
		t.Fatalf("unreachable %+v / %+v", views[0], views[1])
	}
	// peers=false: the same instances, their status still from the
	// gossip views, the views themselves left out; the views kept.
	var brief []apitypes.Instance
	e.do(e.admin, "GET", "/instances?group=edge&peers=false", nil).expect(t, http.StatusOK, "instances without peers").decode(t, &brief)
	if len(brief) != 2 || brief[0].Observed == nil || brief[0].Observed.Peers != nil || brief[1].Observed.Peers != nil || !brief[0].Unreachable {
		t.Errorf("instances with peers=false: %+v", brief)
	}
	e.do(e.admin, "GET", "/groups/edge/instances", nil).expect(t, http.StatusOK, "instances").decode(t, &views)
	if len(views[0].Observed.Peers) != 1 || len(views[1].Observed.Peers) != 1 {
		t.Errorf("the gossip views after a peers=false listing: %+v / %+v", views[0].Observed, views[1].Observed)
	}
	if r := e.do(e.admin, "GET", "/instances?peers=some", nil).expect(t, http.StatusBadRequest, "peers=some"); !strings.Contains(string(r.body), `"field":"peers"`) {
		t.Errorf("peers=some refused without naming the field: %s", r.body)
	}
	var sum apitypes.GroupSummary
	e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
	if len(sum.Unreachable) != 1 || len(sum.Drift) != 0 {
		t.Errorf("summary right after: %+v", sum)
	}
	// i2 has run no deployment for longer than the grace period: drift.
	e.advance(DefaultDriftGrace + time.Second)
	beat("alive", 0)
	e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
	if len(sum.Unreachable) != 0 || len(sum.Drift) != 1 || sum.Drift[0].Instance != "i2" || sum.Drift[0].Deployment != 0 {
		t.Errorf("summary after the grace period: %+v", sum)
	}
	beat("alive", 1)
	e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
	if len(sum.Drift) != 0 {
		t.Errorf("drift after i2 applied the deployment: %+v", sum.Drift)
	}
}

// TestDriftFromPeers: an instance whose node manager has gone silent is
// known only through its peers' gossip, which says what it runs: left on
// an older deployment, it is flagged once the grace period is over, and
// cleared when its peers see it catch up.
func TestDriftFromPeers(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	c1, c2 := e.joinAs(srv.URL, "h1"), e.joinAs(srv.URL, "h2")
	n1, n2 := newNode(t, srv.URL, e.ca, &c1), newNode(t, srv.URL, e.ca, &c2)
	e.group("edge", nil)
	e.group("other", nil)
	for _, in := range []apitypes.Instance{
		{Name: "i1", Group: "edge", Host: "h1", Listen: ":8080", StatusListen: ":8085"},
		{Name: "i2", Group: "edge", Host: "h2", Listen: ":8080", StatusListen: ":8085"},
		{Name: "o1", Group: "other", Host: "h1", Listen: ":8081", StatusListen: ":8086"},
	} {
		e.do(e.admin, "POST", "/instances", in).expect(t, http.StatusCreated, in.Name)
	}
	e.deployed("edge")
	beat := func(n *node, states ...apitypes.AgentInstanceState) {
		t.Helper()
		n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: states}).expect(t, http.StatusOK, "heartbeat")
	}
	i1 := func(peers ...apitypes.GossipPeer) apitypes.AgentInstanceState {
		return apitypes.AgentInstanceState{Name: "i1", Ready: true, AppliedDeployment: 2, Peers: peers}
	}
	drift := func() []apitypes.Drift {
		t.Helper()
		var sum apitypes.GroupSummary
		e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
		return sum.Drift
	}
	beat(n2, apitypes.AgentInstanceState{Name: "i2", Ready: true, AppliedDeployment: 1})

	// h2's node manager falls silent; #2 reaches i1 only. i1 sees i2
	// alive on #1; o1, of another group, cannot speak for i2.
	e.addToDraft("edge", func(c *deploy.Config) { c.Services[0].Routes[0].Paths = []string{"/b"} })
	e.deployed("edge")
	beat(n1, i1(apitypes.GossipPeer{Name: "i2", State: "alive", Deployment: 1}),
		apitypes.AgentInstanceState{Name: "o1", Peers: []apitypes.GossipPeer{{Name: "i2", State: "alive", Deployment: 2}}})
	if d := drift(); len(d) != 0 {
		t.Errorf("drift within the grace period: %+v", d)
	}
	e.advance(DefaultDriftGrace + time.Second)
	beat(n1, i1(apitypes.GossipPeer{Name: "i2", State: "alive", Deployment: 1}))
	if d := drift(); len(d) != 1 || d[0].Instance != "i2" || d[0].Deployment != 1 {
		t.Fatalf("drift of i2, silent but seen on #1 by its peer: %+v", d)
	}
	// A dead peer says nothing of what it runs.
	beat(n1, i1(apitypes.GossipPeer{Name: "i2", State: "dead", Deployment: 2}))
	if d := drift(); len(d) != 1 || d[0].Instance != "i2" {
		t.Errorf("drift after i2 was seen dead: %+v", d)
	}
	beat(n1, i1(apitypes.GossipPeer{Name: "i2", State: "alive", Deployment: 2}))
	if d := drift(); len(d) != 0 {
		t.Errorf("drift after i2's peer saw it on #2: %+v", d)
	}
}
