package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// contains fails the test for each of want the page lacks.
func contains(t *testing.T, what, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("%s: the page has no %q:\n%s", what, w, page)
		}
	}
}

var versionRE = regexp.MustCompile(`<input type="hidden" name="version" value="(\d+)">`)

// TestFleetFromTheConsole: a domain admin creates a group (bad input
// named by field, what was typed kept), changes it (a stale form refused
// with the group as it is now), rotates its gossip key and adds an
// instance on a host (both after what they ask), restarts the instance,
// is told why the group cannot be deleted while it has one, deletes the
// instance and then the group, each confirmed.
func TestFleetFromTheConsole(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	admin, csrf := f.signedIn(t, "admin")
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/", nil)
	contains(t, "overview", page, `<a href="/ui/new-group" id="new-group">`)
	_, page = do(t, admin, "GET", f.srv.URL+"/ui/new-group", nil)
	contains(t, "new group form", page, `<form method="post" action="/ui/new-group" id="group-form" class="fields">`, `<option value="gateway" selected>gateway</option>`)

	const markup = `<img src=x onerror=alert(1)>`
	for _, tt := range []struct {
		name  string
		form  url.Values
		field string
		kept  []string
	}{
		{"a bad name", url.Values{"name": {"Bad Name"}, "labels": {"env=prod"}, "description": {markup}}, "name",
			[]string{`value="Bad Name"`, `value="env=prod"`, `value="&lt;img src=x onerror=alert(1)&gt;"`, `id="group-name" value="Bad Name" required maxlength="63" aria-invalid="true"`}},
		{"a label that is not key=value", url.Values{"name": {"web"}, "labels": {"env=prod, oops"}}, "labels", []string{`value="env=prod, oops"`}},
		{"a label value the API refuses", url.Values{"name": {"web"}, "labels": {"env=pr od"}}, "labels", []string{`label value &#34;pr od&#34;`}},
		{"another type", url.Values{"name": {"web"}, "type": {"mesh"}}, "type", []string{`the only group type is`}},
	} {
		code, page := f.post(t, admin, csrf, "/ui/new-group", tt.form)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400\n%s", tt.name, code, page)
		}
		contains(t, tt.name, page, append(tt.kept, `<p class="error" id="form-error" data-field="`+tt.field+`">`)...)
		if strings.Contains(page, markup) {
			t.Errorf("%s: the page shows the description's markup unescaped", tt.name)
		}
	}
	if _, err := f.store.GetGroup(ctx, "web"); err == nil {
		t.Fatal("a refused form created group web")
	}

	code, page := f.post(t, admin, csrf, "/ui/new-group", url.Values{"name": {"web"}, "type": {"gateway"}, "labels": {"env=prod, team=a"}, "description": {markup}})
	if code != http.StatusSeeOther {
		t.Fatalf("create web: %d\n%s", code, page)
	}
	contains(t, "web's page after its creation", page, `<p class="done" id="done">Group web created.</p>`, `env=prod, team=a`,
		`<a href="/ui/groups/web/new-instance" id="add-instance">`, `id="rotate-gossip"`, `id="delete-group"`, `value="env=prod, team=a"`)
	g, err := f.store.GetGroup(ctx, "web")
	if err != nil || g.Labels["team"] != "a" || g.Description != markup || len(g.GossipKeys) != 1 {
		t.Fatalf("group web: %+v, %v", g, err)
	}
	m := versionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no version in the edit form:\n%s", page)
	}
	shown := m[1]

	// Changed from the page; the same form sent again is stale.
	edit := url.Values{"version": {shown}, "type": {"gateway"}, "labels": {"env=dev"}, "description": {"public API"}}
	code, page = f.post(t, admin, csrf, "/ui/groups/web/edit", edit)
	if code != http.StatusSeeOther {
		t.Fatalf("change web: %d\n%s", code, page)
	}
	contains(t, "web's page after the change", page, `Group web changed.`, `value="env=dev"`)
	if g, err = f.store.GetGroup(ctx, "web"); err != nil || g.Labels["env"] != "dev" || g.Labels["team"] != "" || g.Description != "public API" {
		t.Fatalf("group web after the change: %+v, %v", g, err)
	}
	edit.Set("labels", "env=stale")
	code, page = f.post(t, admin, csrf, "/ui/groups/web/edit", edit)
	if code != http.StatusConflict {
		t.Fatalf("a stale change: %d, want 409\n%s", code, page)
	}
	contains(t, "a stale change", page, `data-field="version">Group web was changed by someone else after this form was shown`,
		`<p id="group-now">Now: labels <code>env=dev</code> · description <code>public API</code>`, `value="env=stale"`,
		`<input type="hidden" name="version" value="`+versionRE.FindStringSubmatch(page)[1]+`">`)
	if g2, _ := f.store.GetGroup(ctx, "web"); g2.Labels["env"] != "dev" || g2.Version != g.Version {
		t.Errorf("a stale change was saved: %+v", g2)
	}
	now := strconv.FormatUint(g.Version, 10)
	code, page = f.post(t, admin, csrf, "/ui/groups/web/edit", url.Values{"version": {now}, "type": {"gateway"}, "labels": {"env=dev"}, "environment": {"nowhere"}})
	if code != http.StatusBadRequest {
		t.Errorf("an unknown environment: %d, want 400\n%s", code, page)
	}
	contains(t, "an unknown environment", page, `data-field="environment">environment &#34;nowhere&#34; does not exist`,
		`id="group-environment" value="nowhere"`)
	if g2, _ := f.store.GetGroup(ctx, "web"); g2.Environment != "" || g2.Version != g.Version {
		t.Errorf("a group with an unknown environment was saved: %+v", g2)
	}
	code, page = f.post(t, admin, csrf, "/ui/groups/web/edit", url.Values{"version": {"x"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "version: the group&#39;s version the form was made from is required.") {
		t.Errorf("no version: %d\n%s", code, page)
	}

	// The gossip key, after a confirmation.
	code, page = f.post(t, admin, csrf, "/ui/groups/web/gossip-key", url.Values{})
	contains(t, "rotation asked", page, `<form method="post" action="/ui/groups/web/gossip-key" id="confirm-form">`, `id="confirm-rotate"`)
	if g, _ := f.store.GetGroup(ctx, "web"); code != http.StatusOK || len(g.GossipKeys) != 1 {
		t.Fatalf("the key rotated before the confirmation: %d, %d keys", code, len(g.GossipKeys))
	}
	code, page = f.post(t, admin, csrf, "/ui/groups/web/gossip-key", url.Values{"confirm": {"yes"}})
	if g, _ := f.store.GetGroup(ctx, "web"); code != http.StatusSeeOther || len(g.GossipKeys) != 2 {
		t.Fatalf("rotate: %d, %d keys\n%s", code, len(g.GossipKeys), page)
	}
	contains(t, "rotated", page, "New primary gossip key for web")

	// An instance on a host picked from the list.
	_, page = do(t, admin, "GET", f.srv.URL+"/ui/groups/web/new-instance", nil)
	contains(t, "new instance form", page, `<select name="host" id="instance-host"><option value="h1">h1</option></select>`)
	inst := url.Values{"name": {"web-1"}, "host": {"h1"}, "listen": {"nope"}, "status_listen": {":18085"}}
	code, page = f.post(t, admin, csrf, "/ui/groups/web/instances", inst)
	if code != http.StatusBadRequest {
		t.Fatalf("a bad address: %d, want 400\n%s", code, page)
	}
	contains(t, "a bad address", page, `data-field="listen">listen &#34;nope&#34;: must be host:port or :port`,
		`id="instance-name" value="web-1"`, `id="instance-listen" value="nope" placeholder=":8080 (the gateway's default)" aria-invalid="true"`,
		`<option value="h1" selected>h1</option>`, `value=":18085"`)
	inst.Set("listen", ":18080")
	inst.Set("host", "ghost")
	code, page = f.post(t, admin, csrf, "/ui/groups/web/instances", inst)
	if code != http.StatusBadRequest {
		t.Fatalf("a host not in the domain: %d, want 400\n%s", code, page)
	}
	contains(t, "a host not in the domain", page, `data-field="host">host &#34;ghost&#34;: no such host in the domain`, `id="instance-name" value="web-1"`)
	inst.Set("host", "h1")
	code, page = f.post(t, admin, csrf, "/ui/groups/web/instances", inst)
	if code != http.StatusSeeOther {
		t.Fatalf("add web-1: %d\n%s", code, page)
	}
	contains(t, "web's page with web-1", page, `Instance web-1 added`, `<tr data-instance="web-1" data-status="Pending">`,
		`<form method="post" id="instance-action"><input type="hidden" name="csrf" value="`+csrf+`"></form>`,
		`<button type="submit" form="instance-action" formaction="/ui/instances/web-1/restart" class="restart">Restart</button>`,
		`<button type="submit" form="instance-action" formaction="/ui/instances/web-1/delete" class="delete">Delete…</button>`)

	code, page = f.post(t, admin, csrf, "/ui/instances/web-1/restart", url.Values{})
	if code != http.StatusSeeOther {
		t.Fatalf("restart web-1: %d\n%s", code, page)
	}
	contains(t, "web's page after the restart", page, `Restart of web-1 requested`, `<td class="actions" data-generation="1"><span class="warn restarting">restarting</span>`)
	if in, err := f.store.GetInstance(ctx, "web-1"); err != nil || in.RestartGeneration != 1 {
		t.Errorf("web-1 after the restart: %+v, %v", in, err)
	}
	// The live part offers the actions, without the CSRF token: it is
	// gzipped, with text others choose (BREACH).
	_, live := do(t, admin, "GET", f.srv.URL+"/ui/live/groups/web", nil)
	contains(t, "live part", strings.ReplaceAll(live, `\"`, `"`), `formaction="/ui/instances/web-1/restart"`)
	if strings.Contains(live, csrf) {
		t.Error("the live part carries the CSRF token")
	}

	// A group with an instance is not deleted: the page says which.
	code, page = f.post(t, admin, csrf, "/ui/groups/web/delete", url.Values{"confirm": {"yes"}})
	if code != http.StatusConflict {
		t.Fatalf("delete web with web-1: %d, want 409\n%s", code, page)
	}
	contains(t, "delete web with web-1", page, `Group web still has instances (web-1): delete them first.`)

	code, page = f.post(t, admin, csrf, "/ui/instances/web-1/delete", url.Values{})
	contains(t, "delete web-1 asked", page, `Delete instance web-1 of group web on host h1?`, `id="confirm-delete-instance"`, `<a href="/ui/groups/web">Cancel</a>`)
	if _, err := f.store.GetInstance(ctx, "web-1"); code != http.StatusOK || err != nil {
		t.Fatalf("web-1 deleted before the confirmation: %d, %v", code, err)
	}
	code, page = f.post(t, admin, csrf, "/ui/instances/web-1/delete", url.Values{"confirm": {"yes"}})
	if code != http.StatusSeeOther || strings.Contains(page, `data-instance="web-1"`) {
		t.Fatalf("delete web-1: %d\n%s", code, page)
	}
	contains(t, "web's page after web-1's deletion", page, `Instance web-1 deleted`)

	code, page = f.post(t, admin, csrf, "/ui/groups/web/delete", url.Values{})
	contains(t, "delete web asked", page, `Delete group web with its draft and all its deployments?`, `id="confirm-delete-group"`)
	code, page = f.post(t, admin, csrf, "/ui/groups/web/delete", url.Values{"confirm": {"yes"}})
	if code != http.StatusSeeOther {
		t.Fatalf("delete web: %d\n%s", code, page)
	}
	contains(t, "the overview after web's deletion", page, `<p class="done" id="done">Group web deleted, with its draft and deployments.</p>`)
	if strings.Contains(page, `data-group="web"`) {
		t.Error("the overview still lists web")
	}
	for _, action := range []string{"group.create", "group.update", "group.gossip-key.rotate", "instance.create", "instance.restart", "instance.delete", "group.delete"} {
		entries, err := f.store.ListAudit(ctx, store.AuditFilter{Action: action, User: "admin"})
		if err != nil || !slices.ContainsFunc(entries, func(e store.AuditEntry) bool { return e.Result == store.AuditOK }) {
			t.Errorf("no audit entry of the admin's %s: %+v, %v", action, entries, err)
		}
	}
}

// TestFleetRefusedToAViewer: a viewer of one group is offered none of the
// fleet's actions; its forged forms are refused by the API (403) and
// audited, and a form without the CSRF token never reaches the API.
func TestFleetRefusedToAViewer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.quietInstance(t)
	viewer, csrf := f.signedIn(t, "viewer")
	_, page := do(t, viewer, "GET", f.srv.URL+"/ui/", nil)
	if strings.Contains(page, "new-group") {
		t.Error("the viewer is offered creating a group")
	}
	_, page = do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown", nil)
	for _, offered := range []string{`id="manage"`, `id="add-instance"`, `id="instance-action"`, `/restart"`, `/delete"`, `class="actions"`} {
		if strings.Contains(page, offered) {
			t.Errorf("the viewer's group page offers %s", offered)
		}
	}
	forged := []struct {
		path, action string
		form         url.Values
	}{
		{"/ui/new-group", "group.create", url.Values{"name": {"mine"}, "type": {"gateway"}}},
		{"/ui/groups/shown/edit", "group.update", url.Values{"version": {"1"}, "labels": {"env=dev"}}},
		{"/ui/groups/shown/gossip-key", "group.gossip-key.rotate", url.Values{"confirm": {"yes"}}},
		{"/ui/groups/shown/delete", "group.delete", url.Values{"confirm": {"yes"}}},
		{"/ui/groups/shown/instances", "instance.create", url.Values{"name": {"mine"}, "host": {"h1"}}},
		{"/ui/instances/quiet/restart", "instance.restart", url.Values{}},
		{"/ui/instances/quiet/delete", "instance.delete", url.Values{"confirm": {"yes"}}},
	}
	for _, fg := range forged {
		if code, _ := f.post(t, viewer, "", fg.path, fg.form); code != http.StatusForbidden {
			t.Errorf("%s without the CSRF token: %d, want 403", fg.action, code)
		}
		if code, page := f.post(t, viewer, csrf, fg.path, fg.form); code != http.StatusForbidden {
			t.Errorf("the viewer's forged %s: %d, want 403\n%s", fg.action, code, page)
		}
		entries, err := f.store.ListAudit(ctx, store.AuditFilter{Action: fg.action, User: "viewer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Result != store.AuditDenied || entries[0].Status != http.StatusForbidden {
			t.Errorf("audit of the viewer's %s: %+v, want one denied", fg.action, entries)
		}
	}
	if g, err := f.store.GetGroup(ctx, "shown"); err != nil || len(g.GossipKeys) > 1 || g.Labels["env"] != "prod" {
		t.Errorf("group shown after the viewer's forms: %+v, %v", g, err)
	}
	if in, err := f.store.GetInstance(ctx, "quiet"); err != nil || in.RestartGeneration != 0 {
		t.Errorf("instance quiet after the viewer's forms: %+v, %v", in, err)
	}
}

// quietInstance declares instance quiet of group shown on host h1, which
// no node manager runs.
func (f *fixture) quietInstance(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.store.CreateHost(ctx, store.Host{Name: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateInstance(ctx, store.Instance{Name: "quiet", Group: "shown", Host: "h1", Listen: ":18080", StatusListen: ":18085"}); err != nil {
		t.Fatal(err)
	}
}

// userWith signs in a new user bound to role in scope.
func (f *fixture) userWith(t *testing.T, name, role string, scope store.Scope) *http.Client {
	t.Helper()
	ctx := context.Background()
	u, err := f.store.GetUser(ctx, "viewer")
	if err != nil {
		t.Fatal(err)
	}
	u.Name = name
	if _, err := f.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateRoleBinding(ctx, store.RoleBinding{User: name, Role: role, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.signedIn(t, name)
	return c
}

// TestFleetOffersWhatTheRoleGrants: each action is offered to the roles
// whose permission the API asks for it, and no other: a deployer changes
// groups (group:write) but not instances, an operator adds, restarts and
// deletes instances (instance:write, instance:operate) but does not
// change the group, a role with instance:operate alone restarts them;
// creating a group is offered to a binding that could cover a new group
// (a label selector, or a name no group has yet), not to one naming only
// existing groups.
func TestFleetOffersWhatTheRoleGrants(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.quietInstance(t)
	// No built-in role holds instance:operate without instance:write.
	if _, err := f.store.CreateRole(ctx, store.Role{Name: "restarter", Permissions: []string{rbac.GroupRead, rbac.DeploymentRead, rbac.InstanceRead, rbac.InstanceOperate}}); err != nil {
		t.Fatal(err)
	}
	offers := map[string]string{
		"edit":     `id="group-edit"`,
		"rotate":   `id="rotate-gossip"`,
		"add":      `id="add-instance"`,
		"restart":  `class="restart"`,
		"delete":   `class="delete"`,
		"newgroup": `id="new-group"`,
	}
	for _, tt := range []struct {
		user, role string
		scope      store.Scope
		want       []string
	}{
		{"dep-named", rbac.RoleDeployer, store.Scope{Groups: []string{"shown"}}, []string{"edit", "rotate"}},
		{"dep-new", rbac.RoleDeployer, store.Scope{Groups: []string{"shown", "future"}}, []string{"edit", "rotate", "newgroup"}},
		{"dep-labels", rbac.RoleDeployer, store.Scope{Selector: map[string]string{"env": "prod"}}, []string{"edit", "rotate", "newgroup"}},
		{"ops-named", rbac.RoleOperator, store.Scope{Groups: []string{"shown"}}, []string{"add", "restart", "delete"}},
		{"restarter", "restarter", store.Scope{Groups: []string{"shown"}}, []string{"restart"}},
		{"admin-all", rbac.RoleDomainAdmin, store.Scope{Domain: true}, []string{"edit", "rotate", "add", "restart", "delete", "newgroup"}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			c := f.userWith(t, tt.user, tt.role, tt.scope)
			_, overview := do(t, c, "GET", f.srv.URL+"/ui/", nil)
			resp, group := do(t, c, "GET", f.srv.URL+"/ui/groups/shown", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("group page: %d\n%s", resp.StatusCode, group)
			}
			for what, marker := range offers {
				page := group
				if what == "newgroup" {
					page = overview
				}
				if got, want := strings.Contains(page, marker), slices.Contains(tt.want, what); got != want {
					t.Errorf("%s offered: %v, want %v", what, got, want)
				}
			}
		})
	}
}
