package api

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Dynamic settings of gateways (docs/gateway.md#dynamic-settings): kept
// on the group and on the instance records, merged into each instance's
// desired state (apitypes.AgentInstance.Settings), which its node manager
// delivers to the running gateway. Writing them wakes the node managers'
// blocking queries like any change.

// Bounds of dynamic settings.
const (
	maxTraceFor   = 24 * time.Hour
	minTraceFor   = time.Second
	maxTraceRoute = 255
)

// logLevels are the levels a gateway's log can be set to.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

func dynamicRoutes() []*route {
	return []*route{
		{method: "GET", path: "/groups/{group}/settings", action: "settings.group.get", summary: "The dynamic settings of the group's gateways (log level, access log, request tracing)",
			perm: rbac.GroupRead, scope: scopeGroup, out: apitypes.GatewaySettings{}, handle: (*Server).getGroupSettings},
		{method: "PUT", path: "/groups/{group}/settings", action: "settings.group.set", summary: "Replace the dynamic settings of the group's gateways; applied at run time, with no restart and no redeploy",
			perm: rbac.SettingsWrite, scope: scopeGroup, in: apitypes.GatewaySettings{}, out: apitypes.GatewaySettings{}, handle: (*Server).putGroupSettings},
		{method: "GET", path: "/instances/{instance}/settings", action: "settings.instance.get", summary: "An instance's dynamic settings: its group's, its own, the merged ones it is to run and the ones its gateway reports",
			out: apitypes.InstanceSettings{}, handle: (*Server).getInstanceSettings},
		{method: "PUT", path: "/instances/{instance}/settings", action: "settings.instance.set", summary: "Replace an instance's own dynamic settings, which win over its group's; applied at run time",
			in: apitypes.GatewaySettings{}, out: apitypes.InstanceSettings{}, handle: (*Server).putInstanceSettings},
	}
}

func (s *Server) getGroupSettings(q *request) (any, error) {
	return settingsOut(q.group.Settings), nil
}

func (s *Server) putGroupSettings(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name + "/settings"
	gs, err := s.readSettings(q)
	if err != nil {
		return nil, err
	}
	g, err := s.store.SetGroupSettings(q.ctx, q.group.Name, gs)
	if err != nil {
		return nil, fmt.Errorf("set the settings of group %q: %w", q.group.Name, err)
	}
	q.auditDetail = describeSettings(g.Settings)
	return settingsOut(g.Settings), nil
}

func (s *Server) getInstanceSettings(q *request) (any, error) {
	in, err := s.instanceAccess(q, rbac.InstanceRead)
	if err != nil {
		return nil, err
	}
	return s.instanceSettingsOut(q, in)
}

func (s *Server) putInstanceSettings(q *request) (any, error) {
	in, err := s.instanceAccess(q, rbac.SettingsWrite)
	if err != nil {
		return nil, err
	}
	q.auditTarget = "instance/" + in.Name + "/settings"
	gs, err := s.readSettings(q)
	if err != nil {
		return nil, err
	}
	if in, err = s.store.SetInstanceSettings(q.ctx, in.Name, gs); err != nil {
		return nil, fmt.Errorf("set the settings of instance %q: %w", in.Name, err)
	}
	q.auditDetail = describeSettings(in.Settings)
	return s.instanceSettingsOut(q, in)
}

func (s *Server) instanceSettingsOut(q *request, in store.Instance) (apitypes.InstanceSettings, error) {
	g, err := s.store.GetGroup(q.ctx, in.Group)
	if err != nil {
		return apitypes.InstanceSettings{}, err
	}
	out := apitypes.InstanceSettings{Instance: in.Name, Group: in.Group,
		OfGroup: settingsOut(g.Settings), Own: settingsOut(in.Settings)}
	if e := effectiveSettings(g.Settings, in.Settings, s.now()); e != nil {
		out.Effective = *e
	}
	if st, ok := s.states()[in.Name]; ok && st.Settings != nil {
		a := apitypes.AgentGatewaySettings(*st.Settings)
		out.Applied = &a
	}
	return out, nil
}

// readSettings decodes and checks a body of settings, every error naming
// its field, and turns a trace's duration into its end. An empty body, or
// one without any setting, clears them (nil).
func (s *Server) readSettings(q *request) (*store.GatewaySettings, error) {
	var in apitypes.GatewaySettings
	if err := optionalJSON(q, &in); err != nil {
		return nil, err
	}
	out := &store.GatewaySettings{LogLevel: in.LogLevel}
	if in.LogLevel != "" && !slices.Contains(logLevels, in.LogLevel) {
		return nil, badRequest("log_level", "must be one of %s, not %q", strings.Join(logLevels, ", "), in.LogLevel)
	}
	if a := in.AccessLog; a != nil {
		switch {
		case a.SamplePercent < 0 || a.SamplePercent > 100:
			return nil, badRequest("access_log.sample_percent", "must be between 1 and 100 (0: 100), not %d", a.SamplePercent)
		case !a.Enabled && a.SamplePercent != 0:
			return nil, badRequest("access_log.sample_percent", "is for an access log that is enabled")
		}
		out.AccessLog = &store.AccessLogSetting{Enabled: a.Enabled, SamplePercent: a.SamplePercent}
		if a.Enabled && a.SamplePercent == 0 {
			out.AccessLog.SamplePercent = 100
		}
	}
	if t := in.Trace; t != nil {
		if t.Route == "" || len(t.Route) > maxTraceRoute || strings.ContainsFunc(t.Route, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, badRequest("trace.route", "must name a route (\"route\" or \"service/route\", at most %d bytes, no control characters)", maxTraceRoute)
		}
		now := s.now()
		until := t.Until
		switch {
		case t.For != "" && !t.Until.IsZero():
			return nil, badRequest("trace.for", "give trace.for (how long) or trace.until (till when), not both")
		case t.For != "":
			d, err := time.ParseDuration(t.For)
			if err != nil || d < minTraceFor || d > maxTraceFor {
				return nil, badRequest("trace.for", "must be a duration between %s and %s (\"10m\"), not %q", minTraceFor, maxTraceFor, t.For)
			}
			until = now.Add(d)
		case t.Until.IsZero():
			return nil, badRequest("trace.for", "required: how long to trace (\"10m\"), or trace.until")
		case !t.Until.After(now) || t.Until.Sub(now) > maxTraceFor:
			return nil, badRequest("trace.until", "must be in the next %s, not %s", maxTraceFor, t.Until.UTC().Format(time.RFC3339))
		}
		out.Trace = &store.TraceSetting{Route: t.Route, Until: until.UTC().Truncate(time.Millisecond)}
	}
	if *out == (store.GatewaySettings{}) {
		return nil, nil
	}
	return out, nil
}

func settingsOut(gs *store.GatewaySettings) apitypes.GatewaySettings {
	if gs == nil {
		return apitypes.GatewaySettings{}
	}
	out := apitypes.GatewaySettings{LogLevel: gs.LogLevel}
	if a := gs.AccessLog; a != nil {
		out.AccessLog = &apitypes.AccessLogSetting{Enabled: a.Enabled, SamplePercent: a.SamplePercent}
	}
	if t := gs.Trace; t != nil {
		out.Trace = &apitypes.TraceSetting{Route: t.Route, Until: t.Until.UTC()}
	}
	return out
}

// effectiveSettings merges an instance's settings over its group's, field
// by field; a trace that has ended is left out. Nil when nothing is set.
func effectiveSettings(group, own *store.GatewaySettings, now time.Time) *apitypes.AgentGatewaySettings {
	var out apitypes.AgentGatewaySettings
	for _, gs := range []*store.GatewaySettings{group, own} {
		if gs == nil {
			continue
		}
		if gs.LogLevel != "" {
			out.LogLevel = gs.LogLevel
		}
		if a := gs.AccessLog; a != nil {
			out.AccessLogPercent = 0
			if a.Enabled {
				out.AccessLogPercent = a.SamplePercent
			}
		}
		if t := gs.Trace; t != nil {
			out.TraceRoute, out.TraceUntil = "", time.Time{}
			if t.Until.After(now) {
				out.TraceRoute, out.TraceUntil = t.Route, t.Until.UTC()
			}
		}
	}
	if out == (apitypes.AgentGatewaySettings{}) {
		return nil
	}
	return &out
}

// describeSettings words settings for the audit log.
func describeSettings(gs *store.GatewaySettings) string {
	if gs == nil {
		return "cleared"
	}
	var parts []string
	if gs.LogLevel != "" {
		parts = append(parts, "log level "+gs.LogLevel)
	}
	if a := gs.AccessLog; a != nil {
		if a.Enabled {
			parts = append(parts, fmt.Sprintf("access log on, %d%%", a.SamplePercent))
		} else {
			parts = append(parts, "access log off")
		}
	}
	if t := gs.Trace; t != nil {
		parts = append(parts, fmt.Sprintf("trace route %q until %s", t.Route, t.Until.UTC().Format(time.RFC3339)))
	}
	return strings.Join(parts, ", ")
}
