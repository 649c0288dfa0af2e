package api

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// Hosts report what their gateways can run; validation and deploy warn
// about the instances whose host lacks what the draft needs, and a strict
// deploy refuses to sign it.
func TestRunWarnings(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	e.group("edge", nil)
	e.group("other", nil)
	for _, h := range []string{"h1", "h2"} {
		cert := e.joinAs(srv.URL, h)
		plugins := map[string][]string{"h1": {"sig", "audit"}, "h2": {"sig"}}[h]
		newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{
			Capabilities: &apitypes.HostCapabilities{GatewayVersion: "1.0.0", FeatureLevel: deploy.FeatureLevel, PluginDir: "/p", Plugins: plugins},
		}).expect(t, http.StatusOK, "heartbeat of "+h)
	}
	// h3 never reported: its instance is not judged.
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h3"}))
	for name, host := range map[string]string{"a1": "h1", "b1": "h2", "b2": "h2", "c1": "h3"} {
		must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: name, Group: "edge", Host: host}))
	}
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "x1", Group: "other", Host: "h2"}))

	var h apitypes.Host
	e.do(e.admin, "GET", "/hosts/h1", nil).expect(t, http.StatusOK, "host").decode(t, &h)
	if c := h.Capabilities; c == nil || c.GatewayVersion != "1.0.0" || c.FeatureLevel != deploy.FeatureLevel ||
		!reflect.DeepEqual(c.Plugins, []string{"audit", "sig"}) || c.Since.IsZero() {
		t.Fatalf("capabilities of h1: %+v", h.Capabilities)
	}

	// Without an external policy, nothing to warn about.
	var v apitypes.Validation
	e.do(e.admin, "POST", "/groups/edge/draft/validate", nil).expect(t, http.StatusOK, "validate").decode(t, &v)
	if !v.Valid || v.Warnings == nil || len(v.Warnings) != 0 {
		t.Fatalf("validation of a draft without plugins: %+v", v)
	}

	ext := func(plugin string) deploy.Policy {
		return deploy.Policy{Name: deploy.ExternalPolicy, Config: map[string]any{"plugin": plugin}}
	}
	e.addToDraft("edge", func(c *deploy.Config) {
		c.GlobalPolicies = append(c.GlobalPolicies, ext("audit"))
		c.Services[0].Routes[0].Policies = append(c.Services[0].Routes[0].Policies, ext("sig"))
	})
	e.addToDraft("other", func(c *deploy.Config) { c.GlobalPolicies = append(c.GlobalPolicies, ext("audit")) })
	want := []apitypes.Warning{{Field: "global_policies[0].config.plugin", Instances: []string{"b1", "b2"},
		Message: `external policy plugin "audit" is not in the plugin directory of host h2: b1, b2 would refuse this configuration`}}
	e.do(e.admin, "POST", "/groups/edge/draft/validate", nil).expect(t, http.StatusOK, "validate").decode(t, &v)
	if !v.Valid || !reflect.DeepEqual(v.Warnings, want) {
		t.Fatalf("validation:\n got %+v\nwant %+v", v, want)
	}

	// Strict: refused, nothing deployed.
	r := e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "m", Strict: true}).
		expect(t, http.StatusUnprocessableEntity, "strict deploy")
	var body apitypes.ErrorBody
	r.decode(t, &body)
	if body.Error.Code != apitypes.CodeUnrunnable || len(body.Error.Errors) != 1 || body.Error.Errors[0].Field != want[0].Field ||
		body.Error.Errors[0].Message != want[0].Message {
		t.Errorf("strict refusal %+v", body.Error)
	}
	if _, err := e.store.LatestDeployment(bg, "edge"); err == nil {
		t.Error("a strict deploy with warnings made a deployment")
	}
	// Not strict: deployed, with the warnings.
	var d apitypes.Deployment
	e.do(e.admin, "POST", "/groups/edge/deployments", apitypes.DeployRequest{Message: "m"}).
		expect(t, http.StatusCreated, "deploy").decode(t, &d)
	if d.Number != 1 || !reflect.DeepEqual(d.Warnings, want) {
		t.Errorf("deploy answer %+v", d)
	}

	// An import, dry run or not, answers them too.
	src := e.freshGroup("edge")
	e.addToDraft(src, func(c *deploy.Config) {
		c.Consumers, c.Certificates = nil, nil
		c.GlobalPolicies = append(c.GlobalPolicies, ext("audit"))
	})
	e.deployed(src)
	var imp apitypes.Import
	e.do(e.admin, "POST", "/groups/edge/import?dry_run=true", e.pkg(src)).expect(t, http.StatusOK, "import dry run").decode(t, &imp)
	if !reflect.DeepEqual(imp.Warnings, want) {
		t.Errorf("import dry run: warnings %+v, want %+v", imp.Warnings, want)
	}

	// A plugin installed on h2: the next heartbeat clears the warning.
	cert := e.joinAs(srv.URL, "h2")
	newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{
		Capabilities: &apitypes.HostCapabilities{GatewayVersion: "1.0.0", FeatureLevel: deploy.FeatureLevel, PluginDir: "/p", Plugins: []string{"sig", "audit"}},
	}).expect(t, http.StatusOK, "heartbeat of h2")
	e.do(e.admin, "POST", "/groups/edge/draft/validate", nil).expect(t, http.StatusOK, "validate").decode(t, &v)
	if len(v.Warnings) != 0 {
		t.Errorf("warnings after the plugin was installed: %+v", v.Warnings)
	}
	// A gateway of a lower feature level than the configuration needs
	// (level 0 is unknown: not judged).
	newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{
		Capabilities: &apitypes.HostCapabilities{FeatureLevel: 0, Plugins: []string{"sig", "audit"}},
	}).expect(t, http.StatusOK, "heartbeat of h2")
	e.do(e.admin, "POST", "/groups/edge/draft/validate", nil).expect(t, http.StatusOK, "validate").decode(t, &v)
	if len(v.Warnings) != 0 {
		t.Errorf("warnings for an unknown level: %+v", v.Warnings)
	}
}

func TestLacks(t *testing.T) {
	ins := []store.Instance{{Name: "a1", Host: "old"}, {Name: "b1", Host: "new"}, {Name: "b2", Host: "new"}, {Name: "c1", Host: "silent"}}
	caps := map[string]*store.HostCapabilities{
		"old":    {FeatureLevel: 1, Plugins: []string{"sig"}},
		"new":    {FeatureLevel: 2, Plugins: []string{"sig", "quota"}},
		"silent": nil,
	}
	sig := deploy.PluginUse{Field: "global_policies[0].config.plugin", Plugin: "sig"}
	quota := deploy.PluginUse{Field: "services[0].policies[0].config.plugin", Plugin: "quota"}
	for _, tc := range []struct {
		name       string
		uses       []deploy.PluginUse
		level      int
		levelField string
		want       []apitypes.Warning
	}{
		{"everything present", []deploy.PluginUse{sig}, 1, "", []apitypes.Warning{}},
		{"a plugin missing on one host", []deploy.PluginUse{sig, quota}, 1, "", []apitypes.Warning{{Field: quota.Field, Instances: []string{"a1"},
			Message: `external policy plugin "quota" is not in the plugin directory of host old: a1 would refuse this configuration`}}},
		{"a plugin missing everywhere", []deploy.PluginUse{{Field: "f", Plugin: "nope"}}, 1, "", []apitypes.Warning{{Field: "f", Instances: []string{"a1", "b1", "b2"},
			Message: `external policy plugin "nope" is not in the plugin directory of host new, old: a1, b1, b2 would refuse this configuration`}}},
		{"a level above one host's", nil, 2, "services[0].routes[0].policies[0]", []apitypes.Warning{{Field: "services[0].routes[0].policies[0]", Instances: []string{"a1"},
			Message: "services[0].routes[0].policies[0] needs configuration feature level 2, which the gateways of a1 (host old, level 1) do not have: they would refuse it"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (fleet{instances: ins, caps: caps}).lacks(tc.uses, tc.level, tc.levelField); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The level of an instance's running gateway, once reported, is judged
// rather than its host's binary's: a gateway started before an upgrade in
// place runs the old one.
func TestFleetPartial(t *testing.T) {
	ins := []store.Instance{{Name: "a1", Host: "h1"}, {Name: "a2", Host: "h1"}, {Name: "b1", Host: "h2"}, {Name: "c1", Host: "h3"}}
	f := fleet{instances: ins,
		caps:   map[string]*store.HostCapabilities{"h1": {FeatureLevel: 2}, "h2": {FeatureLevel: 1}, "h3": nil},
		levels: map[string]int{"a2": 1, "b1": 2}}
	sampled := &deploy.Config{GlobalPolicies: []deploy.Policy{{Name: deploy.HTTPLogPolicy, Config: map[string]any{"endpoint": "http://c", deploy.HTTPLogSampleKey: 5}}}}
	const field = "global_policies[0].config.sample_percent"

	if sk, err := f.partial("edge", &deploy.Config{}, false); sk != nil || err != nil {
		t.Errorf("a level-1 configuration: %v %v", sk, err)
	}
	_, err := f.partial("edge", sampled, false)
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusUnprocessableEntity || ae.body.Code != apitypes.CodeUnrunnable || ae.body.Field != field ||
		!strings.Contains(ae.body.Message, "a2 (host h1, level 1)") || strings.Contains(ae.body.Message, "b1") ||
		!strings.Contains(ae.body.Message, "allow_partial") {
		t.Fatalf("refusal: %v", err)
	}
	sk, err := f.partial("edge", sampled, true)
	want := []store.SkippedInstance{{Instance: "a2", Host: "h1", Reason: field + " needs configuration feature level 2; the gateway has level 1"}}
	if err != nil || !reflect.DeepEqual(sk, want) {
		t.Errorf("allow partial: %+v %v, want %+v", sk, err, want)
	}
	// No instance can run it: refused even with allow_partial.
	low := fleet{instances: ins[:2], levels: map[string]int{"a1": 1, "a2": 1}}
	if _, err := low.partial("edge", sampled, true); !errors.As(err, &ae) || !strings.Contains(ae.body.Message, "no instance of the group can run it") {
		t.Errorf("nobody can run it: %v", err)
	}
}

// A deployment that needs a feature level an instance's running gateway
// lacks is refused before signing, naming it; with allow_partial it is
// made, the instance skipped, reported by the deploy, the summary and the
// roll-out. A rollback to it is judged the same way; an import is refused.
func TestDeployFeatureLevel(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	e.group("edge", nil)
	cert := e.joinAs(srv.URL, "h1")
	for _, name := range []string{"a1", "a2"} {
		must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: name, Group: "edge", Host: "h1"}))
	}
	// The host's binary is new; a2 still runs an old gateway.
	newNode(t, srv.URL, e.ca, &cert).do("PUT", "/heartbeat", apitypes.AgentHeartbeat{
		Capabilities: &apitypes.HostCapabilities{GatewayVersion: "1.4.0", FeatureLevel: 2, Plugins: []string{}},
		Instances: []apitypes.AgentInstanceState{
			{Name: "a1", Ready: true, GatewayVersion: "1.4.0", FeatureLevel: 2},
			{Name: "a2", Ready: true, GatewayVersion: "1.3.0", FeatureLevel: 1}},
	}).expect(t, http.StatusOK, "heartbeat")
	e.deploy(t, "edge", apitypes.DeployRequest{Message: "plain"}, http.StatusCreated)

	e.addToDraft("edge", func(c *deploy.Config) {
		c.GlobalPolicies = append(c.GlobalPolicies, deploy.Policy{Name: deploy.HTTPLogPolicy,
			Config: map[string]any{"endpoint": "http://127.0.0.1:1/", deploy.HTTPLogSampleKey: 10}})
	})
	const field = "global_policies[0].config.sample_percent"
	var body apitypes.ErrorBody
	e.deploy(t, "edge", apitypes.DeployRequest{Message: "sampled"}, http.StatusUnprocessableEntity).decode(t, &body)
	if body.Error.Code != apitypes.CodeUnrunnable || body.Error.Field != field ||
		!strings.Contains(body.Error.Message, "a2 (host h1, level 1)") || strings.Contains(body.Error.Message, "a1") {
		t.Errorf("refusal %+v", body.Error)
	}
	if n := e.deploymentCount("edge"); n != 1 {
		t.Fatalf("%d deployments after the refusal", n)
	}
	var d apitypes.Deployment
	e.deploy(t, "edge", apitypes.DeployRequest{Message: "sampled", AllowPartial: true}, http.StatusCreated).decode(t, &d)
	want := []apitypes.SkippedInstance{{Instance: "a2", Host: "h1", Reason: field + " needs configuration feature level 2; the gateway has level 1"}}
	if d.Number != 2 || !reflect.DeepEqual(d.Skipped, want) {
		t.Fatalf("partial deployment %+v", d)
	}
	if a := e.lastAudit("deployment.create"); !strings.Contains(a.Detail, "partial, skipping a2") {
		t.Errorf("audit %+v", a)
	}
	var sum apitypes.GroupSummary
	e.do(e.admin, "GET", "/groups/edge/summary", nil).expect(t, http.StatusOK, "summary").decode(t, &sum)
	wantVersions := []apitypes.VersionCount{{Version: "1.3.0", FeatureLevel: 1, Instances: []string{"a2"}}, {Version: "1.4.0", FeatureLevel: 2, Instances: []string{"a1"}}}
	if !reflect.DeepEqual(sum.Skipped, want) || !reflect.DeepEqual(sum.Versions, wantVersions) {
		t.Errorf("summary: skipped %+v, versions %+v", sum.Skipped, sum.Versions)
	}
	var r apitypes.Rollout
	e.do(e.admin, "GET", "/groups/edge/deployments/2/rollout", nil).expect(t, http.StatusOK, "rollout").decode(t, &r)
	if r.Skipped != 1 || r.Instances[1].State != apitypes.InstanceSkipped || r.Instances[1].Reason != want[0].Reason {
		t.Errorf("roll-out %+v", r)
	}

	// Back to plain, then a rollback to the partial one.
	e.addToDraft("edge", func(c *deploy.Config) { c.GlobalPolicies = nil })
	e.deploy(t, "edge", apitypes.DeployRequest{Message: "plain again"}, http.StatusCreated)
	e.do(e.admin, "POST", "/groups/edge/deployments/2/rollback", apitypes.RollbackRequest{Message: "m"}).
		expect(t, http.StatusUnprocessableEntity, "rollback to the partial one")
	var rb apitypes.Deployment
	e.do(e.admin, "POST", "/groups/edge/deployments/2/rollback", apitypes.RollbackRequest{Message: "m", AllowPartial: true}).
		expect(t, http.StatusCreated, "partial rollback").decode(t, &rb)
	if rb.Number != 4 || !reflect.DeepEqual(rb.Skipped, want) {
		t.Errorf("partial rollback %+v", rb)
	}

	// An import of the sampled configuration is refused, nothing written.
	src := e.freshGroup("edge")
	e.addToDraft(src, func(c *deploy.Config) {
		c.Consumers, c.Certificates = nil, nil
		c.GlobalPolicies = append(c.GlobalPolicies, deploy.Policy{Name: deploy.HTTPLogPolicy,
			Config: map[string]any{"endpoint": "http://127.0.0.1:1/", deploy.HTTPLogSampleKey: 10}})
	})
	e.deployed(src)
	before := e.deploymentCount("edge")
	draft := must[store.Draft](t)(e.store.GetDraft(bg, "edge"))
	e.do(e.admin, "POST", "/groups/edge/import", e.pkg(src)).expect(t, http.StatusUnprocessableEntity, "import of a level-2 configuration")
	if n := e.deploymentCount("edge"); n != before {
		t.Errorf("the refused import made a deployment: %d, was %d", n, before)
	}
	if d := must[store.Draft](t)(e.store.GetDraft(bg, "edge")); d.Version != draft.Version {
		t.Errorf("the refused import wrote the draft: version %d, was %d", d.Version, draft.Version)
	}
}
