package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
)

// Dynamic settings (docs/gateway.md#dynamic-settings) from the console: a
// group's on its page, an instance's on the instance page, which also
// shows the instance's state live. Forms are one PUT of the API away
// (settings:write, audited), as `gatehouse settings set` is.

// logLevels are offered in the form's select; the API checks the value.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// settingsForm is a form of dynamic settings: what is set at its level,
// or what was typed when the API refused it.
type settingsForm struct {
	// Action is where the form posts, with the session's CSRF token;
	// CanWrite offers it (settings:write).
	Action, CSRF string
	CanWrite     bool
	Levels       []string
	LogLevel     string
	// AccessLog is "on", "off" or "" (not set at this level).
	AccessLog     string
	SamplePercent string
	TraceRoute    string
	TraceFor      string
	// TraceUntil (RFC 3339) is the end of the trace of TraceKept under
	// way: saving the form again without a new TraceFor keeps it.
	// TraceEnds words it.
	TraceUntil, TraceKept, TraceEnds string
	// Field and Error are the refusal of the last post.
	Field, Error string
}

// newSettingsForm fills a form with the settings set at its level.
func newSettingsForm(s *session, action string, gs apitypes.GatewaySettings, now time.Time) settingsForm {
	f := settingsForm{Action: action, CSRF: s.csrf, Levels: logLevels, LogLevel: gs.LogLevel}
	if a := gs.AccessLog; a != nil {
		f.AccessLog = "off"
		if a.Enabled {
			f.AccessLog, f.SamplePercent = "on", strconv.Itoa(a.SamplePercent)
		}
	}
	// A trace that has ended is not offered to keep: the API would refuse
	// its end, now in the past.
	if t := gs.Trace; t != nil && t.Until.After(now) {
		f.TraceRoute, f.TraceKept, f.TraceUntil = t.Route, t.Route, t.Until.UTC().Format(time.RFC3339Nano)
		f.TraceEnds = t.Until.UTC().Format(pageTime)
	}
	return f
}

// settingsOf reads the posted form, as typed, and the settings it asks
// for; an error names the field as the API would. A trace the form kept
// that has ended by now is left out: a page open past its end would
// otherwise have the API refuse the whole form for it.
func settingsOf(r *http.Request, s *session, action string, now time.Time) (settingsForm, apitypes.GatewaySettings, error) {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := settingsForm{Action: action, CSRF: s.csrf, Levels: logLevels, LogLevel: v("log_level"), AccessLog: v("access_log"),
		SamplePercent: v("sample_percent"), TraceRoute: v("trace_route"), TraceFor: v("trace_for"),
		TraceUntil: v("trace_until"), TraceKept: v("trace_kept")}
	gs := apitypes.GatewaySettings{LogLevel: f.LogLevel}
	percent := 0
	if f.SamplePercent != "" {
		n, err := strconv.Atoi(f.SamplePercent)
		if err != nil {
			return f, gs, &fieldError{"access_log.sample_percent", fmt.Sprintf("must be a whole number between 1 and 100, not %q", f.SamplePercent)}
		}
		percent = n
	}
	switch f.AccessLog {
	case "on", "off":
		gs.AccessLog = &apitypes.AccessLogSetting{Enabled: f.AccessLog == "on", SamplePercent: percent}
	case "":
		if f.SamplePercent != "" {
			return f, gs, &fieldError{"access_log.sample_percent", "is for an access log that is on"}
		}
	default:
		return f, gs, &fieldError{"access_log", fmt.Sprintf("must be on, off or not set, not %q", f.AccessLog)}
	}
	switch {
	case f.TraceFor != "":
		gs.Trace = &apitypes.TraceSetting{Route: f.TraceRoute, For: f.TraceFor}
	case f.TraceRoute != "" && f.TraceRoute == f.TraceKept && f.TraceUntil != "":
		until, err := time.Parse(time.RFC3339, f.TraceUntil)
		if err != nil {
			return f, gs, &fieldError{"trace.until", fmt.Sprintf("must be a time such as 2026-12-03T10:00:00Z, not %q", f.TraceUntil)}
		}
		if until.After(now) {
			gs.Trace = &apitypes.TraceSetting{Route: f.TraceRoute, Until: until}
		}
	case f.TraceRoute != "":
		// The API names what is missing (trace.for).
		gs.Trace = &apitypes.TraceSetting{Route: f.TraceRoute}
	}
	return f, gs, nil
}

// OtherLevel says the level typed is none of those offered (a refused
// post): the select shows it as typed.
func (f settingsForm) OtherLevel() bool {
	return f.LogLevel != "" && !slices.Contains(f.Levels, f.LogLevel)
}

// fieldError is bad input the console finds before calling the API.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// refused puts an error of a post into its form and answers the status
// to show the form with; false when the error is not the input's (the
// API's 401, 403, 404 or 5xx, shown as such).
func (f *settingsForm) refused(err error) (int, bool) {
	var fe *fieldError
	if errors.As(err, &fe) {
		f.Field, f.Error = fe.field, fe.msg
		return http.StatusBadRequest, true
	}
	var ae *apiError
	if errors.As(err, &ae) && (ae.status == http.StatusBadRequest || ae.status == http.StatusUnprocessableEntity) {
		f.Field, f.Error = ae.body.Field, ae.body.Message
		return ae.status, true
	}
	return 0, false
}

// settingsRow is one setting as each level has it, worded for the page.
type settingsRow struct {
	Key, Name string
	Group     string
	Own       string
	Effective string
	Reported  string
}

func levelWord(l, unset string) string {
	if l == "" {
		return unset
	}
	return l
}

func accessLogWord(a *apitypes.AccessLogSetting) string {
	switch {
	case a == nil:
		return "—"
	case a.Enabled:
		return fmt.Sprintf("on, %d%%", a.SamplePercent)
	}
	return "off"
}

func traceWord(t *apitypes.TraceSetting) string {
	if t == nil {
		return "—"
	}
	return t.Route + " until " + t.Until.UTC().Format(pageTime)
}

func agentAccessLog(p int) string {
	if p == 0 {
		return "off"
	}
	return fmt.Sprintf("on, %d%%", p)
}

func agentTrace(a apitypes.AgentGatewaySettings) string {
	if a.TraceRoute == "" {
		return "none"
	}
	return a.TraceRoute + " until " + a.TraceUntil.UTC().Format(pageTime)
}

// settingsRows words an instance's settings: its group's, its own, the
// merged ones and those its gateway reports ("not reported" until then).
func settingsRows(is apitypes.InstanceSettings) []settingsRow {
	rows := []settingsRow{
		{Key: "log_level", Name: "Log level", Group: levelWord(is.OfGroup.LogLevel, "—"), Own: levelWord(is.Own.LogLevel, "—"),
			Effective: levelWord(is.Effective.LogLevel, "as started")},
		{Key: "access_log", Name: "Access log", Group: accessLogWord(is.OfGroup.AccessLog), Own: accessLogWord(is.Own.AccessLog),
			Effective: agentAccessLog(is.Effective.AccessLogPercent)},
		{Key: "trace", Name: "Trace", Group: traceWord(is.OfGroup.Trace), Own: traceWord(is.Own.Trace), Effective: agentTrace(is.Effective)},
	}
	for i := range rows {
		rows[i].Reported = "not reported"
	}
	if a := is.Applied; a != nil {
		rows[0].Reported = levelWord(a.LogLevel, "as started")
		rows[1].Reported = agentAccessLog(a.AccessLogPercent)
		rows[2].Reported = agentTrace(*a)
	}
	return rows
}

// groupSettings is the settings part of a group's page.
type groupSettings struct {
	Rows []settingsRow
	Form settingsForm
}

// groupSettingsOf reads the group's settings (group:read, as the page);
// canWrite offers their form (settings:write on the group).
func (c *Console) groupSettingsOf(r *http.Request, s *session, group string, canWrite bool) (groupSettings, error) {
	var gs apitypes.GatewaySettings
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(group)+"/settings", nil, &gs); err != nil {
		return groupSettings{}, err
	}
	v := groupSettings{Rows: settingsRows(apitypes.InstanceSettings{OfGroup: gs}),
		Form: newSettingsForm(s, Prefix+"groups/"+url.PathEscape(group)+"/settings", gs, c.now())}
	v.Form.CanWrite = canWrite
	return v, nil
}

// setGroupSettings replaces the group's dynamic settings with the form's.
// Refused input shows the group's page again with the form as typed and
// the error by its field.
func (c *Console) setGroupSettings(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	f, gs, err := settingsOf(r, s, Prefix+"groups/"+url.PathEscape(name)+"/settings", c.now())
	if err == nil {
		err = c.call(r, s.bearer, http.MethodPut, groupPath(name)+"/settings", gs, nil)
	}
	if err == nil {
		http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?settings=saved", http.StatusSeeOther)
		return
	}
	status, ok := f.refused(err)
	if !ok {
		c.failAPI(w, r, s, err)
		return
	}
	p, err := c.groupData(r, s)
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	v := p.Data.(groupView)
	f.CanWrite = v.Settings.Form.CanWrite
	v.Settings.Form = f
	p.Data = v
	c.render(w, r, status, "group", p)
}

type instanceView struct {
	Instance apitypes.Instance
	Settings []settingsRow
	// Form and Done are the whole page's, not its live part's.
	Form settingsForm
	Done string
}

func (c *Console) instance(w http.ResponseWriter, r *http.Request, s *session) {
	c.show(w, r, s, "instance", c.instanceData)
}

func (c *Console) instanceData(r *http.Request, s *session) (page, error) {
	p, _, err := c.instancePage(r, s, true)
	return p, err
}

func (c *Console) instanceLive(r *http.Request, s *session) (page, error) {
	p, _, err := c.instancePage(r, s, false)
	return p, err
}

// instancePage is an instance with its settings (instance:read); the
// whole page adds the form of its own settings.
func (c *Console) instancePage(r *http.Request, s *session, whole bool) (page, *instanceView, error) {
	name := r.PathValue("instance")
	v := &instanceView{}
	if err := c.call(r, s.bearer, http.MethodGet, instancePath(name), nil, &v.Instance); err != nil {
		return page{}, nil, err
	}
	var is apitypes.InstanceSettings
	if err := c.call(r, s.bearer, http.MethodGet, instancePath(name)+"/settings", nil, &is); err != nil {
		return page{}, nil, err
	}
	v.Settings = settingsRows(is)
	if !whole {
		return page{Data: v}, v, nil
	}
	v.Form = newSettingsForm(s, Prefix+"instances/"+url.PathEscape(name)+"/settings", is.Own, c.now())
	var err error
	if v.Form.CanWrite, err = c.allowed(r, s, rbac.SettingsWrite, v.Instance.Group); err != nil {
		return page{}, nil, err
	}
	if r.URL.Query().Get("settings") == "saved" {
		v.Done = "Settings saved."
	}
	return page{Title: "Instance " + v.Instance.Name, Nav: "topology", User: s.user, CSRF: s.csrf,
		Live: Prefix + "live" + instancePath(v.Instance.Name), Data: v}, v, nil
}

// setInstanceSettings replaces the instance's own dynamic settings with
// the form's; refused input shows the page again as typed.
func (c *Console) setInstanceSettings(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("instance")
	f, gs, err := settingsOf(r, s, Prefix+"instances/"+url.PathEscape(name)+"/settings", c.now())
	if err == nil {
		err = c.call(r, s.bearer, http.MethodPut, instancePath(name)+"/settings", gs, nil)
	}
	if err == nil {
		http.Redirect(w, r, Prefix+"instances/"+url.PathEscape(name)+"?settings=saved", http.StatusSeeOther)
		return
	}
	status, ok := f.refused(err)
	if !ok {
		c.failAPI(w, r, s, err)
		return
	}
	p, v, err := c.instancePage(r, s, true)
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	f.CanWrite = v.Form.CanWrite
	v.Form = f
	c.render(w, r, status, "instance", p)
}

// settingsRoutes adds the pages and forms of this file to m.
func (c *Console) settingsRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /ui/groups/{group}/settings", c.signedIn(c.setGroupSettings))
	m.HandleFunc("GET /ui/instances/{instance}", c.signedIn(c.instance))
	m.HandleFunc("GET /ui/live/instances/{instance}", c.live(c.instanceLive, "instance"))
	m.HandleFunc("POST /ui/instances/{instance}/settings", c.signedIn(c.setInstanceSettings))
}
