package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// TestErrorRates: a soak fails the batch when its new processes answer 5xx
// clearly more often than the instances still on the old release, over
// the same time, and only with enough requests to say; a process that
// changed during the soak counts for nothing.
func TestErrorRates(t *testing.T) {
	names := []string{"a", "b", "c"}
	start := map[string]store.SoakTotal{
		"a": {Boot: "a1", Requests: 100, Errors: 0},
		"b": {Boot: "b1", Requests: 1000, Errors: 10},
		"c": {Boot: "c1", Requests: 1000, Errors: 10},
	}
	at := func(boot string, req, errs uint64) store.InstanceState {
		return store.InstanceState{Boot: boot, Requests: req, Errors: errs}
	}
	tests := []struct {
		name   string
		states map[string]store.InstanceState
		fail   bool
		said   string
	}{
		{"same rate", map[string]store.InstanceState{"a": at("a1", 200, 1), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			false, "5xx over the soak: 1.0% of 100 requests"},
		{"new errs more", map[string]store.InstanceState{"a": at("a1", 200, 30), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			true, "30.0% of 100 requests on \"B\", 1.0% of 200 on \"A\": the new release errs more"},
		{"slightly more is fine", map[string]store.InstanceState{"a": at("a1", 200, 3), "b": at("b1", 1100, 11), "c": at("c1", 1100, 11)},
			false, "3.0% of 100"},
		{"too few requests", map[string]store.InstanceState{"a": at("a1", 110, 10), "b": at("b1", 1100, 11)},
			false, ""},
		{"restarted during the soak", map[string]store.InstanceState{"a": at("a2", 500, 400), "b": at("b1", 1100, 11)},
			false, ""},
		{"old ones idle", map[string]store.InstanceState{"a": at("a1", 200, 50), "b": at("b1", 1000, 10), "c": at("c1", 1000, 10)},
			true, "50.0% of 100 requests on \"B\", 0.0% of 0 on \"A\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// a is the batch, b and c still run the old release.
			r := &store.ReleaseRollout{From: "A", To: "B", Batch: []string{"a"}, SoakTotals: start}
			why, summary := errorRates(r, names, tc.states)
			if (why != "") != tc.fail {
				t.Fatalf("errorRates: failed %q, want failure %v", why, tc.fail)
			}
			want := strings.TrimSuffix(tc.said, ": the new release errs more")
			if !strings.Contains(summary, want) || (tc.said == "" && summary != "") {
				t.Errorf("summary %q, want it to say %q", summary, tc.said)
			}
			if tc.fail && !strings.Contains(why, tc.said) {
				t.Errorf("reason %q, want it to say %q", why, tc.said)
			}
		})
	}
}

// A node manager still on an older desired state — trying the release a
// rollout moved away from, its heartbeat saying pending — keeps a batch
// from passing and a rollback from ending: the next rollout would start
// while that try could still end, and fail on its error.
func TestRolloutWaitsForPendingInstances(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: "i1", Group: "edge", Host: "h1"}).expect(t, http.StatusCreated, "instance")
	heartbeat := func(release string, pending bool) {
		t.Helper()
		n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
			{Name: "i1", Process: "running", PID: 42, Ready: true, Release: release, Pending: pending},
		}}).expect(t, http.StatusOK, "heartbeat")
	}
	setRollout := func(r store.ReleaseRollout) {
		t.Helper()
		if _, err := e.store.UpdateGroupGateway(bg, "edge", func(gw *store.GroupGateway) error {
			gw.Version, gw.Rollout = r.From, &r
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	step := func() *store.ReleaseRollout {
		t.Helper()
		g, err := e.store.GetGroup(bg, "edge")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.srv.stepRollout(bg, g); err != nil {
			t.Fatal(err)
		}
		if g, err = e.store.GetGroup(bg, "edge"); err != nil {
			t.Fatal(err)
		}
		return g.Gateway.Rollout
	}

	setRollout(store.ReleaseRollout{ID: 1, From: "", To: "b", State: store.RolloutRollingBack, BatchAt: e.clockNow().Add(-time.Second)})
	heartbeat("", true)
	if r := step(); r.State != store.RolloutRollingBack {
		t.Fatalf("rolled back while the instance is pending: %+v", r)
	}
	heartbeat("", false)
	if r := step(); r.State != store.RolloutRolledBack {
		t.Fatalf("not rolled back once the instance is settled: %+v", r)
	}

	setRollout(store.ReleaseRollout{ID: 2, From: "", To: "b", State: store.RolloutRunning, MaxUnavailable: 1,
		Batch: []string{"i1"}, BatchAt: e.clockNow().Add(-time.Second)})
	heartbeat("b", true)
	if r := step(); !r.SoakSince.IsZero() {
		t.Fatalf("soaking while the instance is pending: %+v", r)
	}
	heartbeat("b", false)
	if r := step(); r.SoakSince.IsZero() || r.SoakPIDs["i1"] != 42 {
		t.Fatalf("not soaking once the instance runs the new release, settled: %+v", r)
	}
}

// A rollout asked to pause on failure stops where it is: the instances
// done stay on the new release, the failed batch's go back to the old
// one; the new release resumes it, the old one rolls it back, another is
// refused.
func TestRolloutPausesOnFailure(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	cert := e.joinAs(srv.URL, "h1")
	n := newNode(t, srv.URL, e.ca, &cert)
	e.group("edge", nil)
	for i, name := range []string{"i1", "i2"} {
		e.do(e.admin, "POST", "/instances", apitypes.Instance{Name: name, Group: "edge", Host: "h1",
			Listen: fmt.Sprintf(":%d", 8080+i), StatusListen: fmt.Sprintf(":%d", 8090+i)}).expect(t, http.StatusCreated, "instance")
	}
	for _, v := range []string{"a", "b"} {
		if _, err := e.store.PutRelease(bg, store.Release{Version: v, SHA256: "00", Size: 1, UploadedBy: "admin"}, []byte{0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.UpdateGroupGateway(bg, "edge", func(gw *store.GroupGateway) error {
		gw.Version = "a"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.do(e.admin, "PUT", "/groups/edge/gateway", apitypes.GroupGatewayUpdate{Version: "b", OnFailure: "sometimes"}).
		expect(t, http.StatusBadRequest, "on_failure")
	var gw apitypes.GroupGateway
	e.do(e.admin, "PUT", "/groups/edge/gateway", apitypes.GroupGatewayUpdate{Version: "b", OnFailure: "pause"}).
		expect(t, http.StatusOK, "start").decode(t, &gw)
	if gw.Rollout == nil || gw.Rollout.OnFailure != "pause" {
		t.Fatalf("rollout %+v", gw.Rollout)
	}
	// i1 is done on b; i2's replacement fails.
	if _, err := e.store.UpdateGroupGateway(bg, "edge", func(gw *store.GroupGateway) error {
		gw.Rollout.Done, gw.Rollout.Batch, gw.Rollout.BatchAt = []string{"i1"}, []string{"i2"}, e.clockNow().Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{
		{Name: "i1", Process: "running", PID: 41, Ready: true, Release: "b"},
		{Name: "i2", Process: "running", PID: 42, Ready: true, Release: "a", Pending: true,
			LastError: "replace instance i2: the new process (pid 43) was not ready within 1m0s; pid 42 serves on"},
	}}).expect(t, http.StatusOK, "heartbeat")
	g, err := e.store.GetGroup(bg, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.stepRollout(bg, g); err != nil {
		t.Fatal(err)
	}
	e.do(e.admin, "GET", "/groups/edge/gateway", nil).expect(t, http.StatusOK, "gateway").decode(t, &gw)
	if r := gw.Rollout; r == nil || r.State != "paused" || gw.Version != "b" || !strings.Contains(r.Error, "pid 42 serves on") {
		t.Fatalf("after the failed batch: %+v", gw)
	}
	if g, err = e.store.GetGroup(bg, "edge"); err != nil {
		t.Fatal(err)
	}
	if a, b := desiredRelease(g, "i1"), desiredRelease(g, "i2"); a != "b" || b != "a" {
		t.Errorf("paused: i1 to run %q, i2 %q; want b, a", a, b)
	}
	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=group.gateway.pause", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != 1 || entries[0].Result != store.AuditError {
		t.Errorf("audit of the pause: %+v", entries)
	}

	e.do(e.admin, "PUT", "/groups/edge/gateway", apitypes.GroupGatewayUpdate{Version: ""}).expect(t, http.StatusConflict, "another release while paused")
	var resumed apitypes.GroupGateway
	e.do(e.admin, "PUT", "/groups/edge/gateway", apitypes.GroupGatewayUpdate{Version: "b"}).expect(t, http.StatusOK, "resume").decode(t, &resumed)
	if r := resumed.Rollout; r.State != "rolling" || r.Error != "" || r.ID != 1 {
		t.Fatalf("resumed: %+v", r)
	}
	if _, err := e.store.UpdateGroupGateway(bg, "edge", func(gw *store.GroupGateway) error {
		gw.Rollout.State = store.RolloutPaused
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var back apitypes.GroupGateway
	e.do(e.admin, "PUT", "/groups/edge/gateway", apitypes.GroupGatewayUpdate{Version: "a"}).expect(t, http.StatusOK, "roll back").decode(t, &back)
	if r := back.Rollout; r.State != "rolling-back" || back.Version != "a" || r.ID != 1 {
		t.Fatalf("rolling back: %+v", back)
	}
}
