package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

func (e *env) deploy(t *testing.T, group string, req apitypes.DeployRequest, want int) reply {
	t.Helper()
	return e.do(e.admin, "POST", "/groups/"+group+"/deployments", req).expect(t, want, "deploy "+req.Message)
}

func (e *env) deploymentCount(group string) int {
	return len(must[[]store.Deployment](e.t)(e.store.ListDeployments(bg, group)))
}

// A draft that is the current deployment is not deployed again: 409
// nothing_to_deploy, no new number, unless force. The configuration as
// written and as resolved are both compared: a changed environment value
// is something to deploy.
func TestNothingToDeploy(t *testing.T) {
	e := newEnv(t)
	e.group("g", nil)
	e.addToDraft("g", func(c *deploy.Config) { c.Upstreams[0].Targets[0].Address = "${HOST}:80" })
	env := e.environment(map[string]string{"HOST": "10.0.0.1"})
	e.do(e.admin, "PUT", "/groups/g", apitypes.Group{Environment: env}).expect(t, http.StatusOK, "set the environment")
	e.deploy(t, "g", apitypes.DeployRequest{Message: "first"}, http.StatusCreated)

	var fail apitypes.ErrorBody
	e.deploy(t, "g", apitypes.DeployRequest{Message: "again"}, http.StatusConflict).decode(t, &fail)
	if fail.Error.Code != apitypes.CodeNothingToDeploy || !strings.Contains(fail.Error.Message, "deployment 1") {
		t.Errorf("answer %+v, want nothing_to_deploy naming deployment 1", fail.Error)
	}
	if n := e.deploymentCount("g"); n != 1 {
		t.Fatalf("%d deployments after deploying an unchanged draft, want 1", n)
	}

	// The same template resolving to another value is a change.
	must[store.Environment](t)(e.store.UpdateEnvironment(bg, env, "admin", func(en *store.Environment) error {
		en.Values["HOST"] = "10.0.0.2"
		return nil
	}))
	var d2 apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "new host"}, http.StatusCreated).decode(t, &d2)
	e.deploy(t, "g", apitypes.DeployRequest{Message: "again"}, http.StatusConflict)

	// A literal where a placeholder of the same value was changes the
	// template only: something to deploy too (what an export carries).
	e.addToDraft("g", func(c *deploy.Config) { c.Upstreams[0].Targets[0].Address = "10.0.0.2:80" })
	var d3 apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "literal"}, http.StatusCreated).decode(t, &d3)
	if d3.Checksum != d2.Checksum {
		t.Errorf("the same resolved configuration has another checksum: %s, %s", d3.Checksum, d2.Checksum)
	}

	var forced apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "force", Force: true}, http.StatusCreated).decode(t, &forced)
	if forced.Number != 4 || forced.Checksum != d3.Checksum {
		t.Errorf("forced deployment %+v, want #4 of %s", forced, d3.Checksum)
	}

	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?group=g&action=deployment.create", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != 6 || entries[1].Result != "ok" || entries[2].Result != "error" || !strings.Contains(entries[2].Detail, "nothing to deploy") {
		t.Errorf("audit %+v, want the refused deploy recorded as nothing to deploy", entries)
	}
}

// After a rollback the draft is the configuration rolled back to, as
// written, so that deploying it is nothing to deploy; keep_draft leaves
// it as it was.
func TestRollbackResetsDraft(t *testing.T) {
	e := newEnv(t)
	e.group("g", nil)
	e.addToDraft("g", func(c *deploy.Config) { c.Upstreams[0].Targets[0].Address = "${HOST}:80" })
	env := e.environment(map[string]string{"HOST": "10.0.0.1"})
	e.do(e.admin, "PUT", "/groups/g", apitypes.Group{Environment: env}).expect(t, http.StatusOK, "set the environment")
	e.deploy(t, "g", apitypes.DeployRequest{Message: "v1"}, http.StatusCreated)
	e.addToDraft("g", func(c *deploy.Config) { c.Services[0].Routes[0].Paths = []string{"/broken"} })
	e.deploy(t, "g", apitypes.DeployRequest{Message: "v2"}, http.StatusCreated)

	var back apitypes.Deployment
	e.do(e.admin, "POST", "/groups/g/deployments/1/rollback", apitypes.RollbackRequest{Message: "v2 breaks"}).
		expect(t, http.StatusCreated, "rollback").decode(t, &back)
	if back.Number != 3 || back.Draft != apitypes.DraftReset {
		t.Fatalf("rollback %+v, want #3 with the draft reset", back)
	}
	draft := must[store.Draft](t)(e.store.GetDraft(bg, "g"))
	if got := draft.Config.Services[0].Routes[0].Paths[0]; got != "/a" {
		t.Errorf("draft path %q after the rollback, want deployment 1's /a", got)
	}
	if got := draft.Config.Upstreams[0].Targets[0].Address; got != "${HOST}:80" {
		t.Errorf("draft address %q, want the placeholder as written", got)
	}
	var diff apitypes.Diff
	e.do(e.admin, "GET", "/groups/g/draft/diff", nil).expect(t, http.StatusOK, "draft diff").decode(t, &diff)
	if len(diff.Changes) != 0 {
		t.Errorf("draft diff after the rollback: %+v, want none", diff.Changes)
	}
	e.deploy(t, "g", apitypes.DeployRequest{Message: "unrelated"}, http.StatusConflict)

	// keep_draft: the draft's work in progress stays.
	e.addToDraft("g", func(c *deploy.Config) { c.Services[0].Routes[0].Paths = []string{"/wip"} })
	e.do(e.admin, "POST", "/groups/g/deployments/2/rollback", apitypes.RollbackRequest{Message: "v2 again", KeepDraft: true}).
		expect(t, http.StatusCreated, "rollback keeping the draft").decode(t, &back)
	if back.Number != 4 || back.Draft != apitypes.DraftKept {
		t.Fatalf("rollback %+v, want #4 with the draft kept", back)
	}
	if got := must[store.Draft](t)(e.store.GetDraft(bg, "g")).Config.Services[0].Routes[0].Paths[0]; got != "/wip" {
		t.Errorf("draft path %q, want /wip kept", got)
	}
}

// The roll-out query: instances pending, applying, applied, refused and
// unreachable; a blocking query answered when a heartbeat changes the
// roll-out, and not before.
func TestRolloutQuery(t *testing.T) {
	e := newEnv(t)
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h1"}))
	e.group("g", nil)
	a, b := e.instance("g"), e.instance("g")
	var d1 apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "v1"}, http.StatusCreated).decode(t, &d1)
	beat := func(name string, n uint64, sum, lastErr string) {
		e.srv.observe([]store.InstanceState{{Instance: name, LastHeartbeat: e.clockNow(),
			AppliedDeployment: n, AppliedChecksum: sum, Ready: true, LastError: lastErr}})
	}
	get := func(query string) apitypes.Rollout {
		t.Helper()
		var r apitypes.Rollout
		e.do(e.admin, "GET", "/groups/g/deployments/1/rollout"+query, nil).expect(t, http.StatusOK, "rollout"+query).decode(t, &r)
		return r
	}
	states := func(r apitypes.Rollout) string {
		var s []string
		for _, in := range r.Instances {
			s = append(s, in.Name+"="+in.State)
		}
		return strings.Join(s, " ")
	}

	r := get("")
	if r.State != apitypes.RolloutInProgress || r.Done || r.Total != 2 || states(r) != a+"=pending "+b+"=pending" || r.Instances[0].Host != "h1" {
		t.Fatalf("fresh roll-out %+v", r)
	}

	// Nothing changes: the blocking query waits its whole wait.
	began := time.Now()
	if same := get("?index=" + strconv.FormatUint(r.Index, 10) + "&wait=300ms"); same.Index != r.Index {
		t.Errorf("answered with index %d, want %d: nothing changed", same.Index, r.Index)
	}
	if waited := time.Since(began); waited < 300*time.Millisecond {
		t.Errorf("answered after %s with nothing changed, want the whole 300ms", waited)
	}

	// A heartbeat wakes it.
	// The blocking query runs in its own goroutine, which must not fail
	// the test itself: it hands over what it got.
	answered := make(chan apitypes.Rollout, 1)
	go func() {
		var r2 apitypes.Rollout
		req, _ := http.NewRequest("GET", e.http.URL+"/api/v1/groups/g/deployments/1/rollout?wait=1m&index="+strconv.FormatUint(r.Index, 10), nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		if resp, err := e.http.Client().Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&r2)
			resp.Body.Close()
		}
		answered <- r2
	}()
	select {
	case r2 := <-answered:
		t.Fatalf("answered before anything changed: %+v", r2)
	case <-time.After(200 * time.Millisecond):
	}
	beat(a, 1, d1.Checksum, "")
	select {
	case r2 := <-answered:
		if states(r2) != a+"=applied "+b+"=pending" || r2.Applied != 1 || r2.Index == r.Index {
			t.Errorf("after %s applied: %+v", a, r2)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a heartbeat applying the deployment did not answer the blocking query")
	}

	beat(b, 1, d1.Checksum, "")
	if r = get(""); r.State != apitypes.RolloutComplete || !r.Done || r.Applied != 2 {
		t.Fatalf("both applied: %+v", r)
	}

	// Deployment 2 is refused by both gateways, with the gateway's words.
	e.addToDraft("g", func(c *deploy.Config) { c.Services[0].Routes[0].Paths = []string{"/b"} })
	var d2 apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "v2"}, http.StatusCreated).decode(t, &d2)
	if r = get(""); r.State != apitypes.RolloutSuperseded || !r.Done || r.CurrentDeployment != 2 {
		t.Errorf("deployment 1 once 2 is made: %+v", r)
	}
	const why = `deployment 2 refused: validate configuration: policy "external": plugin "sig" not found`
	beat(a, 1, d1.Checksum, why)
	var r2 apitypes.Rollout
	e.do(e.admin, "GET", "/groups/g/deployments/latest/rollout", nil).expect(t, http.StatusOK, "rollout of latest").decode(t, &r2)
	if r2.Deployment != 2 || r2.State != apitypes.RolloutInProgress || states(r2) != a+"=refused "+b+"=applying" || r2.Instances[0].Reason != why {
		t.Fatalf("one refused: %+v", r2)
	}
	beat(b, 1, d1.Checksum, why)
	e.do(e.admin, "GET", "/groups/g/deployments/2/rollout", nil).expect(t, http.StatusOK, "rollout 2").decode(t, &r2)
	if r2.State != apitypes.RolloutFailed || !r2.Done || r2.Applied != 0 || states(r2) != a+"=refused "+b+"=refused" {
		t.Fatalf("both refused: %+v", r2)
	}

	// Silent for longer than the lost threshold: unreachable, which
	// settles the roll-out as failed.
	e.addToDraft("g", func(c *deploy.Config) { c.Services[0].Routes[0].Paths = []string{"/c"} })
	var d3 apitypes.Deployment
	e.deploy(t, "g", apitypes.DeployRequest{Message: "v3"}, http.StatusCreated).decode(t, &d3)
	beat(a, 3, d3.Checksum, "")
	e.advance(time.Minute)
	beat(a, 3, d3.Checksum, "")
	e.do(e.admin, "GET", "/groups/g/deployments/3/rollout", nil).expect(t, http.StatusOK, "rollout 3").decode(t, &r2)
	if r2.State != apitypes.RolloutFailed || states(r2) != a+"=applied "+b+"=unreachable" || !strings.Contains(r2.Instances[1].Reason, "Lost Connection") {
		t.Fatalf("one lost: %+v", r2)
	}

	e.do(e.admin, "GET", "/groups/g/deployments/9/rollout", nil).expect(t, http.StatusNotFound, "rollout of a missing deployment")
	e.do(e.admin, "GET", "/groups/g/deployments/3/rollout?index=x", nil).expect(t, http.StatusBadRequest, "bad index")
}
