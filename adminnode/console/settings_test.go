package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// auditedOnce checks that user's action was audited once with result.
func (f *fixture) auditedOnce(t *testing.T, action, user, result string) {
	t.Helper()
	entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{Action: action, User: user})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Result != result {
		t.Errorf("audit of %s's %s: %+v, want one %s", user, action, entries, result)
	}
}

// TestGroupSettingsFromThePage: who may set the group's dynamic settings
// changes them from its page (audited), a trace under way kept when the
// form is saved again; bad input is named by its field with the form as
// typed and nothing changed; a viewer is offered no form and its forged
// post is refused (403, audited); a post without the CSRF token never
// reaches the API.
func TestGroupSettingsFromThePage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin, csrf := f.signedIn(t, "admin")
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown", nil)
	contains(t, "the group page", page, `<form method="post" action="/ui/groups/shown/settings" id="settings-form"`,
		`<tr data-setting="log_level"><th>Log level</th><td class="value">—</td></tr>`)

	code, page := f.post(t, admin, csrf, "/ui/groups/shown/settings", url.Values{"log_level": {"debug"}, "access_log": {"on"},
		"sample_percent": {"10"}, "trace_route": {"api/orders"}, "trace_for": {"10m"}})
	if code != http.StatusSeeOther {
		t.Fatalf("set the settings: %d\n%s", code, page)
	}
	contains(t, "the page after the settings", page, `<p class="done" id="done">Dynamic settings saved.</p>`,
		`<tr data-setting="log_level"><th>Log level</th><td class="value">debug</td></tr>`,
		`<tr data-setting="access_log"><th>Access log</th><td class="value">on, 10%</td></tr>`,
		`<tr data-setting="trace"><th>Trace</th><td class="value">api/orders until `,
		`<option value="debug" selected>debug</option>`, `<option value="on" selected>on</option>`, `value="10"`,
		`<input type="hidden" name="trace_kept" value="api/orders">`)
	g, err := f.store.GetGroup(ctx, "shown")
	if err != nil || g.Settings == nil || g.Settings.LogLevel != "debug" || g.Settings.AccessLog == nil || g.Settings.AccessLog.SamplePercent != 10 ||
		g.Settings.Trace == nil || g.Settings.Trace.Route != "api/orders" {
		t.Fatalf("the group's settings: %+v, %v", g.Settings, err)
	}
	until := g.Settings.Trace.Until
	f.auditedOnce(t, "settings.group.set", "admin", store.AuditOK)

	// Saved again as the form comes: the trace keeps its end.
	m := regexp.MustCompile(`name="trace_until" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no trace_until in the form:\n%s", page)
	}
	code, page = f.post(t, admin, csrf, "/ui/groups/shown/settings", url.Values{"log_level": {"warn"}, "access_log": {"off"},
		"trace_route": {"api/orders"}, "trace_kept": {"api/orders"}, "trace_until": {m[1]}})
	if code != http.StatusSeeOther {
		t.Fatalf("set the settings again: %d\n%s", code, page)
	}
	if g, err = f.store.GetGroup(ctx, "shown"); err != nil || g.Settings.LogLevel != "warn" || g.Settings.AccessLog.Enabled ||
		g.Settings.Trace == nil || !g.Settings.Trace.Until.Equal(until) {
		t.Errorf("the settings saved again: %+v (trace %+v, until %s before), %v", g.Settings, g.Settings.Trace, until, err)
	}

	// A page left open past the trace's end: its form still carries the
	// trace, which has ended; the rest is saved and the trace stays ended.
	ended := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	code, page = f.post(t, admin, csrf, "/ui/groups/shown/settings", url.Values{"log_level": {"warn"}, "access_log": {"on"},
		"trace_route": {"api/orders"}, "trace_kept": {"api/orders"}, "trace_until": {ended}})
	if code != http.StatusSeeOther {
		t.Fatalf("a form whose trace has ended: %d\n%s", code, page)
	}
	if g, err = f.store.GetGroup(ctx, "shown"); err != nil || g.Settings.AccessLog == nil || !g.Settings.AccessLog.Enabled || g.Settings.Trace != nil {
		t.Errorf("the settings saved with a trace that had ended: %+v (trace %+v), %v", g.Settings, g.Settings.Trace, err)
	}

	// Bad input: 400, the field named, the form as typed, nothing changed.
	const markup = `<img src=x onerror=alert(1)>`
	for _, tt := range []struct {
		name  string
		form  url.Values
		field string
		kept  []string
	}{
		{"an unknown level", url.Values{"log_level": {"loud"}, "trace_route": {markup}, "trace_for": {"5m"}}, "log_level",
			[]string{`<option value="loud" selected>loud</option>`, `value="&lt;img src=x onerror=alert(1)&gt;"`, `value="5m"`}},
		{"a percentage that is not a number", url.Values{"access_log": {"on"}, "sample_percent": {"lots"}}, "access_log.sample_percent",
			[]string{`value="lots"`, `<option value="on" selected>on</option>`}},
		{"a percentage out of range", url.Values{"access_log": {"on"}, "sample_percent": {"150"}}, "access_log.sample_percent", []string{`value="150"`}},
		{"a percentage for an access log off", url.Values{"access_log": {"off"}, "sample_percent": {"50"}}, "access_log.sample_percent", nil},
		{"a trace without duration", url.Values{"trace_route": {"orders"}}, "trace.for", []string{`value="orders"`}},
		{"a bad duration", url.Values{"trace_route": {"orders"}, "trace_for": {"forever"}}, "trace.for", []string{`value="forever"`}},
		{"a duration without route", url.Values{"trace_for": {"10m"}}, "trace.route", nil},
	} {
		code, page := f.post(t, admin, csrf, "/ui/groups/shown/settings", tt.form)
		want := `<p class="error" id="settings-error" data-field="` + tt.field + `"><code>` + tt.field + `</code>: `
		if code != http.StatusBadRequest || !strings.Contains(page, want) {
			t.Errorf("%s: %d, want 400 with %q\n%s", tt.name, code, want, page)
		}
		contains(t, tt.name, page, tt.kept...)
		if strings.Contains(page, markup) {
			t.Errorf("%s: the form shows the typed markup unescaped", tt.name)
		}
	}
	if g, err := f.store.GetGroup(ctx, "shown"); err != nil || g.Settings.LogLevel != "warn" {
		t.Errorf("the settings after bad input: %+v, %v", g.Settings, err)
	}

	viewer, viewerCSRF := f.signedIn(t, "viewer")
	_, page = do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown", nil)
	contains(t, "the viewer's group page", page, `<p id="no-settings">`, `<td class="value">warn</td>`)
	if strings.Contains(page, `id="settings-form"`) {
		t.Error("the viewer is offered the settings form")
	}
	if code, _ := f.post(t, viewer, viewerCSRF, "/ui/groups/shown/settings", url.Values{"log_level": {"trace"}}); code != http.StatusForbidden {
		t.Errorf("the viewer's forged settings: %d, want 403", code)
	}
	f.auditedOnce(t, "settings.group.set", "viewer", store.AuditDenied)
	if resp, _ := do(t, admin, "POST", f.srv.URL+"/ui/groups/shown/settings", url.Values{"log_level": {"trace"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("settings without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if g, err := f.store.GetGroup(ctx, "shown"); err != nil || g.Settings.LogLevel != "warn" {
		t.Errorf("the settings after the refused posts: %+v, %v", g.Settings, err)
	}
}

// TestInstancePage: the instance page (linked from the group page and
// the topology) shows the instance's state and its settings at each
// level, live too; its own settings are set from its form (audited), bad
// input named by its field; a viewer reads the page without the form and
// its forged post is refused (403, audited); an instance of a group it
// may not read is refused.
func TestInstancePage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []store.Instance{{Name: "web-1", Group: "shown", Host: "h1"}, {Name: "dev-1", Group: "hidden", Host: "h1"}} {
		if _, err := f.store.CreateInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.SetGroupSettings(ctx, "shown", &store.GatewaySettings{LogLevel: "debug"}); err != nil {
		t.Fatal(err)
	}
	admin, csrf := f.signedIn(t, "admin")
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown", nil)
	contains(t, "the group page", page, `<a href="/ui/instances/web-1" class="instance">web-1</a>`)
	_, page = do(t, admin, "GET", f.srv.URL+"/ui/topology", nil)
	contains(t, "the topology", page, `<b><a href="/ui/instances/web-1">web-1</a></b>`)

	resp, page := do(t, admin, "GET", f.srv.URL+"/ui/instances/web-1", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the instance page: %d\n%s", resp.StatusCode, page)
	}
	contains(t, "the instance page", page, `<title>Instance web-1 · Gatehouse</title>`, `<a href="/ui/groups/shown" id="group-link">shown</a>`,
		`<table id="instance" class="facts" data-instance="web-1" data-status="Pending">`, `<div id="live" data-src="/ui/live/instances/web-1">`,
		`<tr data-setting="log_level"><th>Log level</th><td class="group">debug</td><td class="own">—</td><td class="effective">debug</td><td class="reported">not reported</td></tr>`,
		`<form method="post" action="/ui/instances/web-1/settings" id="settings-form"`)

	code, page := f.post(t, admin, csrf, "/ui/instances/web-1/settings", url.Values{"log_level": {"error"}, "access_log": {"on"}, "sample_percent": {"25"}})
	if code != http.StatusSeeOther {
		t.Fatalf("set the instance's settings: %d\n%s", code, page)
	}
	contains(t, "the instance page after its settings", page, `<p class="done" id="done">Settings saved.</p>`,
		`<tr data-setting="log_level"><th>Log level</th><td class="group">debug</td><td class="own">error</td><td class="effective">error</td>`,
		`<tr data-setting="access_log"><th>Access log</th><td class="group">—</td><td class="own">on, 25%</td><td class="effective">on, 25%</td>`,
		`<option value="error" selected>error</option>`, `value="25"`)
	if in, err := f.store.GetInstance(ctx, "web-1"); err != nil || in.Settings == nil || in.Settings.LogLevel != "error" || in.Settings.AccessLog.SamplePercent != 25 {
		t.Errorf("the instance's settings: %+v, %v", in.Settings, err)
	}
	f.auditedOnce(t, "settings.instance.set", "admin", store.AuditOK)
	resp, body := do(t, admin, "GET", f.srv.URL+"/ui/live/instances/web-1", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<td class=\"own\">on, 25%</td>`) || strings.Contains(body, "settings-form") {
		t.Errorf("the live part: %d\n%s", resp.StatusCode, body)
	}

	code, page = f.post(t, admin, csrf, "/ui/instances/web-1/settings", url.Values{"access_log": {"maybe"}, "trace_route": {"orders"}})
	if want := `data-field="access_log"><code>access_log</code>: must be on, off or not set`; code != http.StatusBadRequest || !strings.Contains(page, want) {
		t.Errorf("a bad access log: %d, want 400 with %q\n%s", code, want, page)
	}
	contains(t, "the form refused", page, `<input type="text" name="trace_route" id="settings-trace-route" maxlength="255" placeholder="route or service/route" value="orders">`)
	code, page = f.post(t, admin, csrf, "/ui/instances/web-1/settings", url.Values{"trace_route": {"orders"}, "trace_for": {"48h"}})
	if want := `data-field="trace.for"><code>trace.for</code>: must be a duration between`; code != http.StatusBadRequest || !strings.Contains(page, want) {
		t.Errorf("a trace too long: %d, want 400 with %q\n%s", code, want, page)
	}
	if resp, _ := do(t, admin, "GET", f.srv.URL+"/ui/instances/nowhere", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown instance: %d, want 404", resp.StatusCode)
	}

	viewer, viewerCSRF := f.signedIn(t, "viewer")
	resp, page = do(t, viewer, "GET", f.srv.URL+"/ui/instances/web-1", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<p id="no-settings">`) || strings.Contains(page, `id="settings-form"`) {
		t.Errorf("the viewer's instance page: %d, want the settings without their form\n%s", resp.StatusCode, page)
	}
	if code, _ := f.post(t, viewer, viewerCSRF, "/ui/instances/web-1/settings", url.Values{"log_level": {"trace"}}); code != http.StatusForbidden {
		t.Errorf("the viewer's forged settings: %d, want 403", code)
	}
	f.auditedOnce(t, "settings.instance.set", "viewer", store.AuditDenied)
	if resp, _ := do(t, admin, "POST", f.srv.URL+"/ui/instances/web-1/settings", url.Values{"log_level": {"trace"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("settings without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if in, err := f.store.GetInstance(ctx, "web-1"); err != nil || in.Settings.LogLevel != "error" {
		t.Errorf("the instance's settings after the refused posts: %+v, %v", in.Settings, err)
	}
	for _, p := range []string{"/ui/instances/dev-1", "/ui/live/instances/dev-1"} {
		if resp, _ := do(t, viewer, "GET", f.srv.URL+p, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the viewer's GET %s (group hidden): %d, want 403", p, resp.StatusCode)
		}
	}
}
