package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// The overview gathers, for what the caller may read, each group's
// roll-out, each host's last heartbeat and version, and one attention
// item per problem, with the reason an operator acts on.
func TestOverview(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("dev", map[string]string{"env": "dev"})
	e.group("prod", map[string]string{"env": "prod"})
	e.deployed("dev")
	e.deployed("prod")
	cur := must[store.Deployment](t)(e.store.LatestDeployment(bg, "dev"))
	healthy, refusing, looping, lost, pending := e.instance("dev"), e.instance("dev"), e.instance("dev"), e.instance("dev"), e.instance("dev")
	prodOne := e.instance("prod")

	// A real heartbeat gives the host's contact, version and certificate.
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Version: "1.2.3", Instances: []apitypes.AgentInstanceState{
		{Name: healthy, Process: "running", Ready: true, AppliedDeployment: cur.Number, AppliedChecksum: cur.Checksum},
		{Name: refusing, Process: "running", Ready: true, AppliedDeployment: cur.Number, AppliedChecksum: cur.Checksum,
			LastError: `apply deployment 1: policy external: plugin "sig" not found in /var/lib/plugins`},
		{Name: looping, Process: processCrashLoop, Restarts: 6, LastError: "exit status 1"},
	}}).expect(t, http.StatusOK, "heartbeat")
	e.srv.observe([]store.InstanceState{{Instance: lost, LastHeartbeat: e.now.Add(-time.Minute), Ready: true,
		AppliedDeployment: cur.Number, AppliedChecksum: cur.Checksum}})
	// h2 was heard from before the admin node started: its instance's
	// stored state says when.
	e.do(e.admin, "POST", "/hosts", apitypes.Host{Name: "h2"}).expect(t, http.StatusCreated, "host h2")
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "on-h2", Group: "prod", Host: "h2", Listen: ":1", StatusListen: ":2"}).
		expect(t, http.StatusCreated, "instance on h2")
	e.srv.observe([]store.InstanceState{{Instance: "on-h2", LastHeartbeat: e.now.Add(-time.Second), Ready: true}})
	// A gap in the host's traffic batches: one lost.
	n.do("POST", "/traffic", batchOf("h1", 1, e.now, nil)).expect(t, http.StatusOK, "batch 1")
	n.do("POST", "/traffic", batchOf("h1", 3, e.now, nil)).expect(t, http.StatusOK, "batch 3")

	var o apitypes.Overview
	e.do(e.admin, "GET", "/overview", nil).expect(t, http.StatusOK, "overview").decode(t, &o)
	if want := (apitypes.OverviewDatabase{Kind: "bbolt", Reachable: true}); o.Database != want {
		t.Errorf("database %+v, want %+v", o.Database, want)
	}
	if o.Domain != "test" || len(o.Groups) != 2 || o.Groups[0].Name != "dev" || o.Groups[1].Name != "prod" {
		t.Fatalf("groups %+v", o.Groups)
	}
	dev := o.Groups[0]
	if dev.Instances != 5 || dev.ByStatus[status.Healthy] != 1 || dev.ByStatus[status.OnlyHeartbeat] != 2 ||
		dev.ByStatus[status.LostConnection] != 1 || dev.ByStatus[status.Pending] != 1 || dev.Rollout != "1/5" || dev.Complete {
		t.Errorf("dev %+v", dev)
	}
	if len(o.Hosts) != 2 || o.Hosts[1].Name != "h2" || !o.Hosts[1].LastContact.Equal(e.now.Add(-time.Second)) || o.Hosts[1].Version != "" {
		t.Errorf("host h2 %+v", o.Hosts[1])
	}
	if o.Hosts[0].Name != "h1" || o.Hosts[0].Version != "1.2.3" || !o.Hosts[0].LastContact.Equal(e.now) ||
		o.Hosts[0].Instances != 6 || o.Hosts[0].CertNotAfter.Before(e.now) || o.Hosts[0].Traffic == nil {
		t.Errorf("hosts %+v", o.Hosts)
	}
	type item struct{ kind, instance, host string }
	var got []item
	for _, a := range o.Attention {
		got = append(got, item{a.Kind, a.Instance, a.Host})
	}
	want := []item{
		{apitypes.AttentionLostConnection, lost, "h1"},
		{apitypes.AttentionCrashLoop, looping, "h1"},
		{apitypes.AttentionOnlyHeartbeat, refusing, "h1"},
		{apitypes.AttentionSpoolDrops, "", "h1"},
		{apitypes.AttentionPending, pending, "h1"},
		{apitypes.AttentionPending, prodOne, "h1"},
	}
	// on-h2 runs no deployment of prod's.
	want = slices.Insert(want, 3, item{apitypes.AttentionOnlyHeartbeat, "on-h2", "h2"})
	if !slices.Equal(got, want) {
		t.Fatalf("attention %v\nwant %v", got, want)
	}
	reasons := map[string]string{}
	for _, a := range o.Attention {
		if _, ok := reasons[a.Kind]; !ok { // the first of each kind
			reasons[a.Kind] = a.Reason
		}
	}
	for kind, part := range map[string]string{
		apitypes.AttentionOnlyHeartbeat:  `plugin "sig" not found`,
		apitypes.AttentionCrashLoop:      "(6 restarts): exit status 1",
		apitypes.AttentionLostConnection: "no heartbeat for 1m0s",
		apitypes.AttentionSpoolDrops:     "1 lost",
	} {
		if !strings.Contains(reasons[kind], part) {
			t.Errorf("%s reason %q does not say %q", kind, reasons[kind], part)
		}
	}

	// A viewer bound to env=dev sees dev and its instances, no host.
	viewer := e.user("val", rbac.RoleViewer, store.Scope{Selector: map[string]string{"env": "dev"}})
	e.do(viewer, "GET", "/overview", nil).expect(t, http.StatusOK, "overview as a viewer").decode(t, &o)
	if len(o.Groups) != 1 || o.Groups[0].Name != "dev" || len(o.Hosts) != 0 || !o.HostsHidden {
		t.Errorf("viewer of env=dev: groups %+v, hosts %+v, hidden %v", o.Groups, o.Hosts, o.HostsHidden)
	}
	for _, a := range o.Attention {
		if a.Group != "dev" {
			t.Errorf("viewer of env=dev sees %+v", a)
		}
	}

	// Drift: an instance on another deployment past the grace period.
	e.do(e.admin, "POST", "/groups/dev/deployments", apitypes.DeployRequest{Message: "m", Force: true}).expect(t, http.StatusCreated, "deploy")
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: healthy, Process: "running", Ready: true, AppliedDeployment: cur.Number, AppliedChecksum: cur.Checksum}}}).
		expect(t, http.StatusOK, "heartbeat")
	e.advance(DefaultDriftGrace + time.Second)
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: healthy, Process: "running", Ready: true, AppliedDeployment: cur.Number, AppliedChecksum: cur.Checksum}}}).
		expect(t, http.StatusOK, "heartbeat")
	e.do(e.admin, "GET", "/overview", nil).expect(t, http.StatusOK, "overview").decode(t, &o)
	var drift []apitypes.Attention
	for _, a := range o.Attention {
		if a.Kind == apitypes.AttentionDrift {
			drift = append(drift, a)
		}
	}
	if len(drift) != 1 || drift[0].Instance != healthy || !strings.Contains(drift[0].Reason, "runs deployment #1, the group's current deployment is #2") {
		t.Errorf("drift %+v", drift)
	}
}

func TestOnlyHeartbeatReason(t *testing.T) {
	cur := status.Current{Number: 3, Checksum: "sha256:c"}
	for _, tc := range []struct {
		obs  apitypes.InstanceState
		want string
	}{
		{apitypes.InstanceState{LastError: "refused", Ready: true}, "refused"},
		{apitypes.InstanceState{Process: processBackoff, Restarts: 2}, "the gateway exited and is being restarted (2 restarts)"},
		{apitypes.InstanceState{Process: "starting"}, "the gateway is not ready (process starting)"},
		{apitypes.InstanceState{Ready: true, AppliedDeployment: 2}, "runs deployment #2, the group's current deployment is #3"},
		{apitypes.InstanceState{Ready: true}, "runs no deployment, the group's current deployment is #3"},
		{apitypes.InstanceState{Ready: true, AppliedDeployment: 3, AppliedChecksum: "sha256:x"}, "runs deployment #3 with checksum sha256:x, not the current one's"},
	} {
		if got := onlyHeartbeatReason(&tc.obs, cur); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.obs, got, tc.want)
		}
	}
}
