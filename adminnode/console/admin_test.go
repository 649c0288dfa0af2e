package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// post sends a console form with the session's CSRF token and answers
// the status and, after a redirect, the page it leads to.
func (f *fixture) post(t *testing.T, c *http.Client, csrf, path string, form url.Values) (int, string) {
	t.Helper()
	form.Set("csrf", csrf)
	resp, body := do(t, c, "POST", f.srv.URL+path, form)
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, body
	}
	_, body = do(t, c, "GET", f.srv.URL+resp.Header.Get("Location"), nil)
	return resp.StatusCode, body
}

// signedIn signs user in and answers its CSRF token.
func (f *fixture) signedIn(t *testing.T, user string) (*http.Client, string) {
	t.Helper()
	c := f.browser(t)
	f.signIn(t, c, user, password)
	_, page := do(t, c, "GET", f.srv.URL+"/ui/", nil)
	return c, csrfOf(t, page)
}

func TestAdministrationPages(t *testing.T) {
	f := newFixture(t)
	admin, csrf := f.signedIn(t, "admin")
	pub, _, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	const markup = `<img src=x onerror=alert(1)>`
	const secret = "the secret value itself"
	steps := []struct {
		name, path string
		form       url.Values
		// want are in the page after the action, absent never are.
		want, absent []string
	}{
		{"create a user", "/ui/admin/users", url.Values{"op": {"create"}, "name": {"bob"}, "password": {"bob's long password"}},
			[]string{`<p class="done" id="done">User bob created.</p>`, `<tr data-user="bob" data-disabled="false">`}, nil},
		{"disable it", "/ui/admin/users", url.Values{"op": {"disable"}, "name": {"bob"}},
			[]string{`<tr data-user="bob" data-disabled="true">`, `value="enable"`}, nil},
		{"set its password", "/ui/admin/users", url.Values{"op": {"password"}, "name": {"bob"}, "password": {"another long password"}},
			[]string{"Password of bob set."}, []string{"another long password"}},
		{"bind it to groups", "/ui/admin/bindings", url.Values{"op": {"add"}, "user": {"bob"}, "role": {"operator"}, "scope": {"groups"}, "groups": {"shown, hidden"}},
			[]string{`Role binding added for bob.`, `<td>bob</td><td>operator</td><td class="scope">groups shown, hidden</td>`}, nil},
		{"bind it by labels", "/ui/admin/bindings", url.Values{"op": {"add"}, "user": {"bob"}, "role": {"viewer"}, "scope": {"selector"}, "selector": {"env=prod"}},
			[]string{`<td class="scope">groups labelled env=prod</td>`}, nil},
		{"create a custom role", "/ui/admin/roles", url.Values{"op": {"create"}, "name": {"releaser"}, "description": {markup}, "permission": {"draft:read", "deployment:create"}},
			[]string{"Role releaser created.", `<tr data-role="releaser"><td>releaser</td><td>custom</td><td class="permissions">draft:read, deployment:create</td><td>&lt;img src=x onerror=alert(1)&gt;</td>`}, []string{markup}},
		{"change it", "/ui/admin/roles", url.Values{"op": {"update"}, "name": {"releaser"}, "description": {"ships"}, "permission": {"draft:read"}},
			[]string{"Role releaser changed.", `<td class="permissions">draft:read</td><td>ships</td>`}, nil},
		{"delete it", "/ui/admin/roles", url.Values{"op": {"delete"}, "name": {"releaser"}},
			[]string{"Role releaser deleted."}, []string{`<tr data-role="releaser">`}},
		{"set a value", "/ui/admin/environments", url.Values{"op": {"value.set"}, "env": {"prod"}, "name": {"HOST"}, "value": {markup}},
			[]string{`data-env="prod"`, `<code>&lt;img src=x onerror=alert(1)&gt;</code>`}, []string{markup}},
		{"set a secret", "/ui/admin/environments", url.Values{"op": {"secret.set"}, "env": {"prod"}, "name": {"KEY"}, "value": {secret}},
			[]string{"Secret prod.KEY set.", `<tr data-name="KEY"><td>KEY</td><td class="value">set</td>`}, []string{secret}},
		{"trust a domain", "/ui/admin/trust", url.Values{"op": {"add"}, "name": {"dev"}, "public_key": {deploy.EncodePublicKey(pub)}},
			[]string{"Domain dev trusted.", `<tr data-domain="dev">`, deploy.KeyFingerprint(pub)}, nil},
		{"stop trusting it", "/ui/admin/trust", url.Values{"op": {"remove"}, "name": {"dev"}},
			[]string{"Domain dev no longer trusted."}, []string{`<tr data-domain="dev">`}},
		{"unset the secret", "/ui/admin/environments", url.Values{"op": {"secret.unset"}, "env": {"prod"}, "name": {"KEY"}},
			[]string{"Secret prod.KEY removed."}, []string{`<tr data-name="KEY">`}},
		{"set a value of another environment", "/ui/admin/environments", url.Values{"op": {"value.set"}, "env": {"dev"}, "name": {"HOST"}, "value": {"dev.local"}},
			[]string{`data-env="dev"`, `<code>dev.local</code>`}, nil},
		{"delete it", "/ui/admin/environments", url.Values{"op": {"delete"}, "env": {"dev"}},
			[]string{"Environment dev deleted, with its values and secrets.", `data-env="prod"`}, []string{`data-env="dev"`}},
	}
	for _, s := range steps {
		code, page := f.post(t, admin, csrf, s.path, s.form)
		if code != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", s.name, code, page)
		}
		for _, w := range s.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the page has no %q:\n%s", s.name, w, page)
			}
		}
		for _, a := range s.absent {
			if strings.Contains(page, a) {
				t.Errorf("%s: the page shows %q", s.name, a)
			}
		}
	}
	// The secret was stored: only the page never shows it.
	if env, err := f.store.GetEnvironment(context.Background(), "prod"); err != nil || env.Values["HOST"] != markup {
		t.Errorf("environment prod: %+v, %v", env, err)
	}

	_, page := do(t, admin, "GET", f.srv.URL+"/ui/admin/access", nil)
	id := regexp.MustCompile(`data-user="bob" data-role="operator" data-id="([^"]+)"`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("no binding of bob in:\n%s", page)
	}
	if code, page := f.post(t, admin, csrf, "/ui/admin/bindings", url.Values{"op": {"remove"}, "id": {id[1]}}); code != http.StatusSeeOther ||
		strings.Contains(page, `data-role="operator" data-id="`+id[1]) {
		t.Errorf("remove the binding: %d\n%s", code, page)
	}
	if code, page := f.post(t, admin, csrf, "/ui/admin/users", url.Values{"op": {"delete"}, "name": {"bob"}}); code != http.StatusSeeOther ||
		strings.Contains(page, `data-user="bob"`) {
		t.Errorf("delete the user: %d\n%s", code, page)
	}

	// Bad input: the field named, nothing done.
	for _, tt := range []struct {
		name, path string
		form       url.Values
		want       string
	}{
		{"binding without scope", "/ui/admin/bindings", url.Values{"op": {"add"}, "user": {"viewer"}, "role": {"viewer"}}, "scope: domain, groups or selector"},
		{"binding with a bad selector", "/ui/admin/bindings", url.Values{"op": {"add"}, "user": {"viewer"}, "role": {"viewer"}, "scope": {"selector"}, "selector": {"prod"}}, `selector: &#34;prod&#34; is not key=value`},
		{"value without environment", "/ui/admin/environments", url.Values{"op": {"value.set"}, "name": {"X"}}, "env: an environment name is required"},
		{"role with an unknown permission", "/ui/admin/roles", url.Values{"op": {"create"}, "name": {"odd"}, "permission": {"draft:fly"}}, "permissions[0]"},
		{"user with a short password", "/ui/admin/users", url.Values{"op": {"create"}, "name": {"carol"}, "password": {"x"}}, "password"},
	} {
		code, page := f.post(t, admin, csrf, tt.path, tt.form)
		if code != http.StatusBadRequest || !strings.Contains(page, tt.want) {
			t.Errorf("%s: %d, want 400 with %q\n%s", tt.name, code, tt.want, page)
		}
	}
	if code, page := f.post(t, admin, csrf, "/ui/admin/roles", url.Values{"op": {"update"}, "name": {"viewer"}, "permission": {"draft:read"}}); code != http.StatusConflict ||
		!strings.Contains(page, "built in and cannot be changed") {
		t.Errorf("change the built-in role viewer: %d, want 409 saying it is built in\n%s", code, page)
	}
	// The form to change a custom role comes checked with what it holds.
	f.post(t, admin, csrf, "/ui/admin/roles", url.Values{"op": {"create"}, "name": {"auditor"}, "permission": {"audit:read"}})
	_, page = do(t, admin, "GET", f.srv.URL+"/ui/admin/access?edit=auditor", nil)
	for _, w := range []string{`<input type="hidden" name="op" value="update"><input type="hidden" name="name" value="auditor">`,
		`value="audit:read" checked>`, `value="draft:read">`} {
		if !strings.Contains(page, w) {
			t.Errorf("the form to change role auditor has no %q", w)
		}
	}
}

// TestAdministrationRefusedToAViewer: a viewer of one group is offered
// none of the administration pages, is refused them (403), and its forged
// forms are refused by the API and audited; a form without the CSRF
// token never reaches the API.
func TestAdministrationRefusedToAViewer(t *testing.T) {
	f := newFixture(t)
	viewer, csrf := f.signedIn(t, "viewer")
	_, page := do(t, viewer, "GET", f.srv.URL+"/ui/", nil)
	for _, nav := range []string{"nav-users", "nav-access", "nav-environments", "nav-trust"} {
		if strings.Contains(page, nav) {
			t.Errorf("the viewer is offered %s", nav)
		}
	}
	for _, p := range []string{"/ui/admin/users", "/ui/admin/access", "/ui/admin/environments", "/ui/admin/trust"} {
		if resp, _ := do(t, viewer, "GET", f.srv.URL+p, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("the viewer's GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	forged := []struct {
		path, action string
		form         url.Values
	}{
		{"/ui/admin/users", "user.create", url.Values{"op": {"create"}, "name": {"mallory"}, "password": {"a long enough password"}}},
		{"/ui/admin/users", "user.update", url.Values{"op": {"password"}, "name": {"admin"}, "password": {"a long enough password"}}},
		{"/ui/admin/bindings", "binding.create", url.Values{"op": {"add"}, "user": {"viewer"}, "role": {"domain-admin"}, "scope": {"domain"}}},
		{"/ui/admin/roles", "role.create", url.Values{"op": {"create"}, "name": {"everything"}, "permission": {"*"}}},
		{"/ui/admin/environments", "environment.secret.set", url.Values{"op": {"secret.set"}, "env": {"prod"}, "name": {"K"}, "value": {"v"}}},
		{"/ui/admin/trust", "trust.add", url.Values{"op": {"add"}, "name": {"evil"}, "public_key": {"ed25519:AAAA"}}},
	}
	for _, fg := range forged {
		if code, _ := f.post(t, viewer, "", fg.path, fg.form); code != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d, want 403", fg.action, code)
		}
		if code, _ := f.post(t, viewer, csrf, fg.path, fg.form); code != http.StatusForbidden {
			t.Errorf("the viewer's forged %s: %d, want 403", fg.action, code)
		}
		entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{Action: fg.action, User: "viewer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Result != store.AuditDenied || entries[0].Status != http.StatusForbidden {
			t.Errorf("audit of the viewer's %s: %+v, want one denied", fg.action, entries)
		}
	}
}

func TestAuditPagesAndTimeRange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i := range 7 {
		_, err := f.store.AppendAudit(ctx, store.AuditEntry{Time: base.Add(time.Duration(i) * time.Hour), User: "robot",
			Action: "test.step", Target: fmt.Sprintf("step/%d", i), Result: store.AuditOK})
		if err != nil {
			t.Fatal(err)
		}
	}
	admin, _ := f.signedIn(t, "admin")
	targets := regexp.MustCompile(`<td>step/(\d)</td>`)
	older := regexp.MustCompile(`<a href="([^"]+)" id="audit-older">`)
	shown := func(page string) string {
		var b strings.Builder
		for _, m := range targets.FindAllStringSubmatch(page, -1) {
			b.WriteString(m[1])
		}
		return b.String()
	}
	// Pages of 3, newest first, each leading to the next.
	var got []string
	next := "/ui/audit?action=test.step&limit=3"
	for next != "" && len(got) < 5 {
		resp, page := do(t, admin, "GET", f.srv.URL+next, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", next, resp.StatusCode, page)
		}
		got = append(got, shown(page))
		next = ""
		if m := older.FindStringSubmatch(page); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if want := []string{"654", "321", "0"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pages %q, want %q", got, want)
	}
	tests := []struct {
		name, query, want string
		status            int
	}{
		{"from and to, as the form sends them", "from=2026-11-23T12:00&to=2026-11-23T15:00", "432", http.StatusOK},
		{"from alone, RFC 3339", "from=2026-11-23T15:00:00Z", "65", http.StatusOK},
		{"a bad time", "from=yesterday", "", http.StatusBadRequest},
		{"a bad limit", "limit=0", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, page := do(t, admin, "GET", f.srv.URL+"/ui/audit?action=test.step&"+tt.query, nil)
			if resp.StatusCode != tt.status || shown(page) != tt.want {
				t.Errorf("%d %q, want %d %q\n%s", resp.StatusCode, shown(page), tt.status, tt.want, page)
			}
		})
	}
}

// TestGroupPageShowsTheRollout: after a deploy, the group page (and its
// live part) lists each instance's place in the roll-out with its reason.
func TestGroupPageShowsTheRollout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.quietInstance(t)
	if _, err := f.store.PutDraft(ctx, "shown", deploy.Config{}, 0, "admin"); err != nil {
		t.Fatal(err)
	}
	admin, csrf := f.signedIn(t, "admin")
	code, page := f.post(t, admin, csrf, "/ui/groups/shown/deploy", url.Values{"message": {"first"}})
	if code != http.StatusSeeOther {
		t.Fatalf("deploy: %d\n%s", code, page)
	}
	for _, p := range []string{"/ui/groups/shown", "/ui/live/groups/shown"} {
		_, page := do(t, admin, "GET", f.srv.URL+p, nil)
		page = strings.ReplaceAll(page, `\"`, `"`)
		for _, w := range []string{`<p id="rollout" data-state="in_progress">`, `<span class="warn">in progress</span>`,
			`<tr data-instance="quiet" data-state="pending">`, `<td class="reason">never reported by its node manager</td>`} {
			if !strings.Contains(page, w) {
				t.Errorf("%s has no %q:\n%s", p, w, page)
			}
		}
	}
}

// TestRolloutLeftOutWithoutDeploymentRead: a user who may read a group
// and its instances but not its deployments gets the group's live part
// without the roll-out, and its every-second refresh audits no refusal.
func TestRolloutLeftOutWithoutDeploymentRead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.PutDraft(ctx, "shown", deploy.Config{}, 0, "admin"); err != nil {
		t.Fatal(err)
	}
	admin, csrf := f.signedIn(t, "admin")
	if code, page := f.post(t, admin, csrf, "/ui/groups/shown/deploy", url.Values{"message": {"first"}}); code != http.StatusSeeOther {
		t.Fatalf("deploy: %d\n%s", code, page)
	}
	if _, err := f.store.CreateRole(ctx, store.Role{Name: "peek", Permissions: []string{rbac.GroupRead, rbac.InstanceRead}}); err != nil {
		t.Fatal(err)
	}
	code, page := f.post(t, admin, csrf, "/ui/admin/users", url.Values{"op": {"create"}, "name": {"peeker"}, "password": {password}})
	if code != http.StatusSeeOther {
		t.Fatalf("create user: %d\n%s", code, page)
	}
	if code, page := f.post(t, admin, csrf, "/ui/admin/bindings", url.Values{"op": {"add"}, "user": {"peeker"}, "role": {"peek"},
		"scope": {"groups"}, "groups": {"shown"}}); code != http.StatusSeeOther {
		t.Fatalf("bind: %d\n%s", code, page)
	}
	peeker, _ := f.signedIn(t, "peeker")
	for range 3 {
		resp, body := do(t, peeker, "GET", f.srv.URL+"/ui/live/groups/shown", nil)
		if resp.StatusCode != http.StatusOK || strings.Contains(body, "rollout-instances") || !strings.Contains(body, `id=\"instances\"`) {
			t.Fatalf("live part: %d\n%s", resp.StatusCode, body)
		}
	}
	entries, err := f.store.ListAudit(ctx, store.AuditFilter{User: "peeker", Action: "deployment.rollout"})
	if err != nil || len(entries) != 0 {
		t.Errorf("audit of the peeker's roll-out reads: %+v, %v", entries, err)
	}
}

// TestGroupPageShowsTheGatewayRelease: the group page (and its live part)
// shows the group's release, its rolling upgrade with each step (escaped)
// and the earlier ones; the releases page lists the releases with the
// groups that use them, for a domain-wide host:read only.
func TestGroupPageShowsTheGatewayRelease(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const markup = `<img src=x onerror=alert(1)>`
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if _, err := f.store.PutRelease(ctx, store.Release{Version: v, SHA256: strings.Repeat("ab", 32), Size: 3 << 20, UploadedBy: "admin"}, []byte("binary")); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	_, err := f.store.UpdateGroupGateway(ctx, "shown", func(gw *store.GroupGateway) error {
		gw.Version, gw.MaxUnavailable = "2.0.0", 2
		gw.History = []store.ReleaseRollout{{ID: 1, From: "", To: "1.0.0", State: store.RolloutDone, By: "admin", StartedAt: at, EndedAt: at.Add(time.Minute)}}
		gw.Rollout = &store.ReleaseRollout{ID: 2, From: "1.0.0", To: "2.0.0", State: store.RolloutRunning, MaxUnavailable: 2, By: "admin",
			StartedAt: at.Add(time.Hour), Done: []string{"web-1"}, Batch: []string{"web-2"},
			Events: []store.RolloutEvent{{At: at.Add(time.Hour), What: "rollout 2 started"}, {At: at.Add(time.Hour), Instance: "web-2", What: "replacing " + markup}}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := f.signedIn(t, "admin")
	for _, p := range []string{"/ui/groups/shown", "/ui/live/groups/shown"} {
		_, page := do(t, admin, "GET", f.srv.URL+p, nil)
		page = strings.ReplaceAll(page, `\"`, `"`)
		for _, w := range []string{`<p id="release" data-version="2.0.0">Release <strong>2.0.0</strong>, upgraded 2 at a time.</p>`,
			`<div id="release-rollout" data-id="2" data-state="rolling">`,
			`Rolling upgrade 2 from 1.0.0 to 2.0.0: <span class="state warn">rolling</span> · started by admin`,
			`upgraded: <span class="done-instances">web-1</span> · upgrading: <span class="batch">web-2</span>`,
			`<tr data-instance="web-2"><td>2026-12-03 11:00:00 UTC</td><td>web-2</td><td class="what">replacing &lt;img src=x onerror=alert(1)&gt;</td></tr>`,
			`<th>Gateway version</th><th>Release</th>`} {
			if !strings.Contains(page, w) {
				t.Errorf("%s has no %q:\n%s", p, w, page)
			}
		}
		if strings.Contains(page, markup) {
			t.Errorf("%s shows a step's markup unescaped", p)
		}
		if strings.Contains(page, "ended") {
			t.Errorf("%s shows an end of the rollout under way", p)
		}
	}
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if w := `<tr data-id="1" data-state="done"><td>1</td><td>the node manager&#39;s own binary</td><td>1.0.0</td>`; !strings.Contains(page, w) {
		t.Errorf("the group page has no history row %q:\n%s", w, page)
	}
	if !strings.Contains(page, `id="nav-releases"`) {
		t.Error("a domain admin is not offered the releases page")
	}
	resp, page := do(t, admin, "GET", f.srv.URL+"/ui/admin/releases", nil)
	for _, w := range []string{`<tr data-version="1.0.0"><td>1.0.0</td>`, `<td>3.0 MiB</td>`, `<td class="groups"><a href="/ui/groups/shown">shown</a></td>`} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, w) {
			t.Errorf("releases page: %d, no %q:\n%s", resp.StatusCode, w, page)
		}
	}
	viewer, _ := f.signedIn(t, "viewer")
	_, page = do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if !strings.Contains(page, `<div id="release-rollout" data-id="2" data-state="rolling">`) || strings.Contains(page, `id="nav-releases"`) {
		t.Errorf("the viewer of the group should see its rollout and no releases link:\n%s", page)
	}
	if resp, _ := do(t, viewer, "GET", f.srv.URL+"/ui/admin/releases", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the viewer of one group reads the releases page: %d, want 403", resp.StatusCode)
	}
}

// TestUpgradeFromTheGroupPage: who may change the group picks a release
// and confirms; the rolling upgrade starts through the API (audited).
// A viewer is offered no form and its forged confirmation is refused
// (403, audited); a bad max_unavailable is named.
func TestUpgradeFromTheGroupPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.PutRelease(ctx, store.Release{Version: "2.0.0", SHA256: strings.Repeat("ab", 32), Size: 1}, []byte("b")); err != nil {
		t.Fatal(err)
	}
	admin, csrf := f.signedIn(t, "admin")
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if !strings.Contains(page, `<form method="post" action="/ui/groups/shown/upgrade" class="filter" id="upgrade-form">`) ||
		!strings.Contains(page, `<option value="2.0.0">2.0.0</option>`) {
		t.Fatalf("the admin is not offered the upgrade of shown to 2.0.0:\n%s", page)
	}
	code, page := f.post(t, admin, csrf, "/ui/groups/shown/upgrade", url.Values{"version": {"2.0.0"}, "max_unavailable": {"0"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "max_unavailable: how many instances are replaced at once, at least 1") {
		t.Errorf("max_unavailable 0: %d\n%s", code, page)
	}
	code, page = f.post(t, admin, csrf, "/ui/groups/shown/upgrade", url.Values{"version": {"2.0.0"}, "max_unavailable": {"2"}})
	if want := `Move every instance of shown from the node manager&#39;s own binary to 2.0.0, 2 at a time?`; code != http.StatusOK || !strings.Contains(page, want) {
		t.Fatalf("the confirmation: %d, no %q\n%s", code, want, page)
	}
	if g, _ := f.store.GetGroup(ctx, "shown"); g.Gateway.Rollout != nil {
		t.Fatalf("a rollout started before the confirmation: %+v", g.Gateway)
	}
	viewer, viewerCSRF := f.signedIn(t, "viewer")
	_, page = do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if !strings.Contains(page, `id="no-upgrade"`) || strings.Contains(page, `id="upgrade-form"`) {
		t.Errorf("the viewer is offered the upgrade:\n%s", page)
	}
	confirm := url.Values{"version": {"2.0.0"}, "max_unavailable": {"2"}, "confirm": {"yes"}}
	if code, _ := f.post(t, viewer, viewerCSRF, "/ui/groups/shown/upgrade", confirm); code != http.StatusForbidden {
		t.Errorf("the viewer's forged upgrade: %d, want 403", code)
	}
	if resp, _ := do(t, admin, "POST", f.srv.URL+"/ui/groups/shown/upgrade", confirm); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an upgrade without the CSRF token: %d, want 403", resp.StatusCode)
	}
	code, page = f.post(t, admin, csrf, "/ui/groups/shown/upgrade", confirm)
	if code != http.StatusSeeOther || !strings.Contains(page, `<p class="done" id="done">Rolling upgrade to 2.0.0 started.</p>`) {
		t.Fatalf("the confirmed upgrade: %d\n%s", code, page)
	}
	g, err := f.store.GetGroup(ctx, "shown")
	if r := g.Gateway.Rollout; err != nil || g.Gateway.Version != "2.0.0" || r == nil || r.To != "2.0.0" || r.MaxUnavailable != 2 || r.By != "admin" {
		t.Errorf("group after the upgrade: %+v, %v", g.Gateway, err)
	}
	entries, err := f.store.ListAudit(ctx, store.AuditFilter{Action: "group.gateway.update"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.User+" "+e.Result)
	}
	if len(got) != 2 || !slices.Contains(got, "admin ok") || !slices.Contains(got, "viewer denied") {
		t.Errorf("audit of the upgrades: %q, want the admin's (ok) and the viewer's (denied)", got)
	}
}
