package api

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Dynamic settings are checked field by field, kept on the group and the
// instance, merged (the instance's fields winning) into what the node
// manager is told to deliver, audited, and cleared by an empty body.
func TestGatewaySettings(t *testing.T) {
	e := newEnv(t)
	srv := e.agentServer()
	e.group("edge", nil)
	cert := e.joinAs(srv.URL, "h1")
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "a1", Group: "edge", Host: "h1"}))
	must[store.Instance](t)(e.store.CreateInstance(bg, store.Instance{Name: "a2", Group: "edge", Host: "h1"}))

	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"log_level": "verbose"}`, "log_level"},
		{`{"access_log": {"enabled": true, "sample_percent": 101}}`, "access_log.sample_percent"},
		{`{"access_log": {"enabled": false, "sample_percent": 5}}`, "access_log.sample_percent"},
		{`{"trace": {"route": "", "for": "1m"}}`, "trace.route"},
		{`{"trace": {"route": "orders", "for": "25h"}}`, "trace.for"},
		{`{"trace": {"route": "orders", "for": "soon"}}`, "trace.for"},
		{`{"trace": {"route": "orders", "for": "1m", "until": "2030-01-01T00:00:00Z"}}`, "trace.for"},
		{`{"trace": {"route": "orders", "until": "2020-01-01T00:00:00Z"}}`, "trace.until"},
		{`{"trace": {"route": "orders"}}`, "trace.for"},
		{`{"log_levels": "debug"}`, ""},
	} {
		r := e.do(e.admin, "PUT", "/groups/edge/settings", tc.body).expect(t, http.StatusBadRequest, tc.body)
		var body apitypes.ErrorBody
		r.decode(t, &body)
		if tc.field != "" && body.Error.Field != tc.field {
			t.Errorf("%s: error on field %q (%s), want %q", tc.body, body.Error.Field, body.Error.Message, tc.field)
		}
	}

	var gs apitypes.GatewaySettings
	e.do(e.admin, "PUT", "/groups/edge/settings", `{"log_level": "debug", "access_log": {"enabled": true, "sample_percent": 10}}`).
		expect(t, http.StatusOK, "group settings").decode(t, &gs)
	if gs.LogLevel != "debug" || gs.AccessLog == nil || !gs.AccessLog.Enabled || gs.AccessLog.SamplePercent != 10 {
		t.Errorf("group settings answered %+v", gs)
	}
	if a := e.lastAudit("settings.group.set"); a.Group != "edge" || a.Detail != "log level debug, access log on, 10%" {
		t.Errorf("audit %+v", a)
	}
	start := e.clockNow()
	var is apitypes.InstanceSettings
	e.do(e.admin, "PUT", "/instances/a1/settings", `{"access_log": {"enabled": false}, "trace": {"route": "api/orders", "for": "5m"}}`).
		expect(t, http.StatusOK, "instance settings").decode(t, &is)
	until := start.Add(5 * time.Minute).UTC()
	want := apitypes.AgentGatewaySettings{LogLevel: "debug", TraceRoute: "api/orders", TraceUntil: until}
	if !reflect.DeepEqual(is.Effective, want) || is.OfGroup.LogLevel != "debug" || is.Own.Trace == nil || !is.Own.Trace.Until.Equal(until) {
		t.Errorf("instance settings: %+v, want effective %+v", is, want)
	}

	// What the node manager is told: a1 merged, a2 the group's.
	n := newNode(t, srv.URL, e.ca, &cert)
	var ans apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "desired instances").decode(t, &ans)
	got := map[string]*apitypes.AgentGatewaySettings{}
	for _, in := range ans.Instances {
		got[in.Name] = in.Settings
	}
	if !reflect.DeepEqual(got["a1"], &want) || !reflect.DeepEqual(got["a2"], &apitypes.AgentGatewaySettings{LogLevel: "debug", AccessLogPercent: 10}) {
		t.Errorf("agent settings: a1 %+v, a2 %+v", got["a1"], got["a2"])
	}
	// The trace ends by itself: once past, it is no longer delivered.
	e.advance(6 * time.Minute)
	var later apitypes.AgentInstances
	n.do("GET", "/instances", nil).expect(t, http.StatusOK, "desired instances").decode(t, &later)
	for _, in := range later.Instances {
		if in.Name == "a1" && (in.Settings == nil || in.Settings.TraceRoute != "" || in.Settings.LogLevel != "debug") {
			t.Errorf("a1 after its trace ended: %+v", in.Settings)
		}
	}

	// The gateway's report comes back through the heartbeat.
	applied := apitypes.AgentGatewaySettings{LogLevel: "debug"}
	n.do("PUT", "/heartbeat", apitypes.AgentHeartbeat{Instances: []apitypes.AgentInstanceState{{Name: "a1", Ready: true, Settings: &applied}}}).
		expect(t, http.StatusOK, "heartbeat")
	var got1 apitypes.InstanceSettings
	e.do(e.admin, "GET", "/instances/a1/settings", nil).expect(t, http.StatusOK, "get").decode(t, &got1)
	if got1.Applied == nil || *got1.Applied != applied {
		t.Errorf("applied settings %+v", got1.Applied)
	}
	var in apitypes.Instance
	e.do(e.admin, "GET", "/instances/a1", nil).expect(t, http.StatusOK, "instance").decode(t, &in)
	if in.Observed == nil || in.Observed.Settings == nil || *in.Observed.Settings != applied {
		t.Errorf("instance observed %+v", in.Observed)
	}

	// An empty body clears.
	var cleared apitypes.GatewaySettings
	e.do(e.admin, "PUT", "/groups/edge/settings", "").expect(t, http.StatusOK, "clear").decode(t, &cleared)
	if !reflect.DeepEqual(cleared, apitypes.GatewaySettings{}) {
		t.Errorf("cleared group settings answered %+v", cleared)
	}
	if a := e.lastAudit("settings.group.set"); a.Detail != "cleared" {
		t.Errorf("audit of a clear %+v", a)
	}
	if g := must[store.Group](t)(e.store.GetGroup(bg, "edge")); g.Settings != nil {
		t.Errorf("stored after a clear: %+v", g.Settings)
	}
	r := e.do(e.admin, "GET", "/instances/nope/settings", nil).expect(t, http.StatusNotFound, "missing instance")
	if !strings.Contains(string(r.body), "nope") {
		t.Errorf("missing instance: %s", r.body)
	}
}
