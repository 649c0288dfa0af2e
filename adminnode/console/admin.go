package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
)

// The administration pages: users, roles and bindings, environments and
// trusted domains. Each is one API call away from the CLI's commands; the
// forms are offered with the permission only, and the API refuses (403,
// audited) whoever posts without it.

// doneMessages are what a page says after an action, by the code the
// action's redirect carries; %s is the name it acted on.
var doneMessages = map[string]string{
	"user.created":        "User %s created.",
	"user.disabled":       "User %s disabled: its tokens and sessions are revoked.",
	"user.enabled":        "User %s enabled.",
	"user.password":       "Password of %s set.",
	"user.deleted":        "User %s deleted, with its bindings and tokens.",
	"role.created":        "Role %s created.",
	"role.updated":        "Role %s changed.",
	"role.deleted":        "Role %s deleted.",
	"binding.added":       "Role binding added for %s.",
	"binding.gone":        "Role binding %s removed.",
	"value.set":           "Value %s set.",
	"value.unset":         "Value %s removed.",
	"secret.set":          "Secret %s set.",
	"secret.unset":        "Secret %s removed.",
	"environment.deleted": "Environment %s deleted, with its values and secrets.",
	"trust.added":         "Domain %s trusted.",
	"trust.removed":       "Domain %s no longer trusted.",
	"group.created":       "Group %s created.",
	"group.updated":       "Group %s changed.",
	"group.deleted":       "Group %s deleted, with its draft and deployments.",
	"group.gossip-key":    "New primary gossip key for %s: its gateways accept the previous one until the next rotation.",
	"instance.created":    "Instance %s added: its node manager starts it when it next hears from the admin node.",
	"instance.deleted":    "Instance %s deleted: its node manager stops it.",
	"instance.restarted":  "Restart of %s requested: the instances table shows the new process once it is ready.",
}

func doneMessage(q url.Values) string {
	f, ok := doneMessages[q.Get("done")]
	if !ok {
		return ""
	}
	return fmt.Sprintf(f, q.Get("name"))
}

// redirectDone goes to a page (its path under Prefix) after an action,
// with the code of what was done and the name it was done to.
func redirectDone(w http.ResponseWriter, r *http.Request, page, done, name string) {
	http.Redirect(w, r, Prefix+page+"?"+url.Values{"done": {done}, "name": {name}}.Encode(), http.StatusSeeOther)
}

// domainAllowed says whether the user holds perm domain-wide, as the
// API's checks of domain routes do.
func (c *Console) domainAllowed(r *http.Request, s *session, perm string) (bool, error) {
	authz, err := c.authz.Authorizer(r.Context(), s.user)
	if err != nil {
		return false, fmt.Errorf("permissions of %s: %w", s.user, err)
	}
	return authz.Allowed(perm, nil), nil
}

type usersView struct {
	Users    []apitypes.User
	CanAdmin bool
	Done     string
}

// users lists the domain's users (user:read); user:admin is offered
// creating, disabling, enabling, setting a password and deleting.
func (c *Console) users(w http.ResponseWriter, r *http.Request, s *session) {
	v := usersView{Done: doneMessage(r.URL.Query())}
	if err := c.call(r, s.bearer, http.MethodGet, "/users", nil, &v.Users); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	var err error
	if v.CanAdmin, err = c.domainAllowed(r, s, rbac.UserAdmin); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "users", page{Title: "Users", Nav: "users", User: s.user, CSRF: s.csrf, Data: v})
}

func userPath(name string) string { return "/users/" + url.PathEscape(name) }

// userAction does one thing to a user, as `gatehouse user` does.
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		c.fail(w, r, s, http.StatusBadRequest, "name: a user name is required.")
		return
	}
	var (
		err  error
		done string
	)
	switch op := r.PostFormValue("op"); op {
	case "create":
		err = c.call(r, s.bearer, http.MethodPost, "/users", apitypes.UserCreate{Name: name, Password: r.PostFormValue("password")}, nil)
		done = "user.created"
	case "disable", "enable":
		off := op == "disable"
		err = c.call(r, s.bearer, http.MethodPatch, userPath(name), apitypes.UserUpdate{Disabled: &off}, nil)
		done = "user." + op + "d"
	case "password":
		pw := r.PostFormValue("password")
		err = c.call(r, s.bearer, http.MethodPatch, userPath(name), apitypes.UserUpdate{Password: &pw}, nil)
		done = "user.password"
	case "delete":
		err = c.call(r, s.bearer, http.MethodDelete, userPath(name), nil, nil)
		done = "user.deleted"
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: create, disable, enable, password or delete.")
		return
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "admin/users", done, name)
}

type accessView struct {
	Roles    []apitypes.Role
	Bindings []apitypes.RoleBinding
	Users    []string
	CanAdmin bool
	Done     string
	// Permissions are those a custom role may hold, for its form; Edit is
	// the custom role the form changes (?edit=NAME), nil to create one.
	Permissions []rolePermission
	Edit        *apitypes.Role
}

// rolePermission is a checkbox of the role form.
type rolePermission struct {
	Name    string
	Checked bool
}

// access lists the roles and the role bindings (user:read); user:admin is
// offered adding a binding, scoped to the domain, to groups or to a label
// selector, and removing one.
func (c *Console) access(w http.ResponseWriter, r *http.Request, s *session) {
	v := accessView{Done: doneMessage(r.URL.Query())}
	var users []apitypes.User
	for _, call := range []struct {
		path string
		out  any
	}{{"/roles", &v.Roles}, {"/bindings", &v.Bindings}, {"/users", &users}} {
		if err := c.call(r, s.bearer, http.MethodGet, call.path, nil, call.out); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
	}
	for _, u := range users {
		v.Users = append(v.Users, u.Name)
	}
	var err error
	if v.CanAdmin, err = c.domainAllowed(r, s, rbac.UserAdmin); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	if name := r.URL.Query().Get("edit"); name != "" && v.CanAdmin {
		i := slices.IndexFunc(v.Roles, func(x apitypes.Role) bool { return x.Name == name && !x.BuiltIn })
		if i < 0 {
			c.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("edit: no custom role %q.", name))
			return
		}
		v.Edit = &v.Roles[i]
	}
	for _, perm := range rbac.All {
		v.Permissions = append(v.Permissions, rolePermission{Name: perm, Checked: v.Edit != nil && slices.Contains(v.Edit.Permissions, perm)})
	}
	c.render(w, r, http.StatusOK, "access", page{Title: "Roles and bindings", Nav: "access", User: s.user, CSRF: s.csrf, Data: v})
}

// scopeOf reads a binding's scope from the form: kind domain, groups
// (names separated by commas) or selector (key=value pairs).
func scopeOf(form url.Values) (apitypes.Scope, error) {
	var sc apitypes.Scope
	switch form.Get("scope") {
	case "domain":
		sc.Domain = true
	case "groups":
		for _, g := range strings.Split(form.Get("groups"), ",") {
			if g = strings.TrimSpace(g); g != "" {
				sc.Groups = append(sc.Groups, g)
			}
		}
		if len(sc.Groups) == 0 {
			return sc, fmt.Errorf("groups: name one group or more, separated by commas")
		}
	case "selector":
		sc.Selector = map[string]string{}
		for _, kv := range strings.Split(form.Get("selector"), ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				return sc, fmt.Errorf("selector: %q is not key=value", kv)
			}
			sc.Selector[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		if len(sc.Selector) == 0 {
			return sc, fmt.Errorf("selector: give one label or more, such as env=prod")
		}
	default:
		return sc, fmt.Errorf("scope: domain, groups or selector")
	}
	return sc, nil
}

// bindingAction adds a role binding (op=add) or removes one (op=remove).
func (c *Console) bindingAction(w http.ResponseWriter, r *http.Request, s *session) {
	switch r.PostFormValue("op") {
	case "add":
		sc, err := scopeOf(r.PostForm)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, err.Error()+".")
			return
		}
		b := apitypes.RoleBinding{User: strings.TrimSpace(r.PostFormValue("user")), Role: strings.TrimSpace(r.PostFormValue("role")), Scope: sc}
		if err := c.call(r, s.bearer, http.MethodPost, "/bindings", b, nil); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		redirectDone(w, r, "admin/access", "binding.added", b.User)
	case "remove":
		id := r.PostFormValue("id")
		if id == "" {
			c.fail(w, r, s, http.StatusBadRequest, "id: the binding to remove is required.")
			return
		}
		if err := c.call(r, s.bearer, http.MethodDelete, "/bindings/"+url.PathEscape(id), nil, nil); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		redirectDone(w, r, "admin/access", "binding.gone", id)
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: add or remove.")
	}
}

func rolePath(name string) string { return "/roles/" + url.PathEscape(name) }

// roleAction creates a custom role (op=create), replaces one's
// permissions and description (op=update) or deletes one (op=delete), as
// `gatehouse role` does; the API refuses built-in roles and a role still
// bound.
func (c *Console) roleAction(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		c.fail(w, r, s, http.StatusBadRequest, "name: a role name is required.")
		return
	}
	role := apitypes.Role{Name: name, Permissions: r.PostForm["permission"], Description: strings.TrimSpace(r.PostFormValue("description"))}
	var (
		err  error
		done string
	)
	switch op := r.PostFormValue("op"); op {
	case "create":
		err = c.call(r, s.bearer, http.MethodPost, "/roles", role, nil)
		done = "role.created"
	case "update":
		err = c.call(r, s.bearer, http.MethodPut, rolePath(name), role, nil)
		done = "role.updated"
	case "delete":
		err = c.call(r, s.bearer, http.MethodDelete, rolePath(name), nil, nil)
		done = "role.deleted"
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: create, update or delete.")
		return
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "admin/access", done, name)
}

type envValue struct{ Name, Value string }

type envView struct {
	apitypes.Environment
	Sorted []envValue
}

type environmentsView struct {
	Environments []envView
	CanWrite     bool
	CanSecrets   bool
	Done         string
}

// environments shows each environment's values and the names of its
// secrets (environment:read): a secret's value is never read, only when
// it was set and by whom.
func (c *Console) environments(w http.ResponseWriter, r *http.Request, s *session) {
	v := environmentsView{Done: doneMessage(r.URL.Query())}
	var envs []apitypes.Environment
	if err := c.call(r, s.bearer, http.MethodGet, "/environments", nil, &envs); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	for _, e := range envs {
		ev := envView{Environment: e}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range e.Values {
				if !yield(k) {
					return
				}
			}
		}) {
			ev.Sorted = append(ev.Sorted, envValue{k, e.Values[k]})
		}
		v.Environments = append(v.Environments, ev)
	}
	var err error
	if v.CanWrite, err = c.domainAllowed(r, s, rbac.EnvironmentWrite); err == nil {
		v.CanSecrets, err = c.domainAllowed(r, s, rbac.SecretWrite)
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "environments", page{Title: "Environments", Nav: "environments", User: s.user, CSRF: s.csrf, Data: v})
}

// environmentAction sets or unsets a value or a secret of an environment,
// which setting creates when missing, as `gatehouse env set` and
// `gatehouse env secret set` do, or deletes the environment.
func (c *Console) environmentAction(w http.ResponseWriter, r *http.Request, s *session) {
	env, name := strings.TrimSpace(r.PostFormValue("env")), strings.TrimSpace(r.PostFormValue("name"))
	op := r.PostFormValue("op")
	switch {
	case env == "":
		c.fail(w, r, s, http.StatusBadRequest, "env: an environment name is required.")
		return
	case name == "" && op != "delete":
		c.fail(w, r, s, http.StatusBadRequest, "name: the name of the value or secret is required.")
		return
	}
	base := "/environments/" + url.PathEscape(env)
	var err error
	switch op {
	case "delete":
		// The API asks for secret:write too when the environment has
		// secrets.
		if err := c.call(r, s.bearer, http.MethodDelete, base, nil, nil); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		redirectDone(w, r, "admin/environments", "environment.deleted", env)
		return
	case "value.set":
		err = c.call(r, s.bearer, http.MethodPut, base+"/values/"+url.PathEscape(name), apitypes.SettingValue{Value: r.PostFormValue("value")}, nil)
	case "value.unset":
		err = c.call(r, s.bearer, http.MethodDelete, base+"/values/"+url.PathEscape(name), nil, nil)
	case "secret.set":
		err = c.call(r, s.bearer, http.MethodPut, base+"/secrets/"+url.PathEscape(name), apitypes.SettingValue{Value: r.PostFormValue("value")}, nil)
	case "secret.unset":
		err = c.call(r, s.bearer, http.MethodDelete, base+"/secrets/"+url.PathEscape(name), nil, nil)
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: value.set, value.unset, secret.set, secret.unset or delete.")
		return
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "admin/environments", op, env+"."+name)
}

type trustView struct {
	Domains  []apitypes.TrustedDomain
	CanWrite bool
	Done     string
}

// trust lists the domains whose packages this one accepts (trust:read);
// trust:write is offered adding and removing one.
func (c *Console) trust(w http.ResponseWriter, r *http.Request, s *session) {
	v := trustView{Done: doneMessage(r.URL.Query())}
	if err := c.call(r, s.bearer, http.MethodGet, "/trusted-domains", nil, &v.Domains); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	var err error
	if v.CanWrite, err = c.domainAllowed(r, s, rbac.TrustWrite); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "trust", page{Title: "Trusted domains", Nav: "trust", User: s.user, CSRF: s.csrf, Data: v})
}

// trustAction trusts a domain's public key (op=add) or stops trusting a
// domain (op=remove), as `gatehouse trust` does.
func (c *Console) trustAction(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		c.fail(w, r, s, http.StatusBadRequest, "name: the domain's name is required.")
		return
	}
	path := "/trusted-domains/" + url.PathEscape(name)
	switch r.PostFormValue("op") {
	case "add":
		in := apitypes.TrustRequest{PublicKey: strings.TrimSpace(r.PostFormValue("public_key"))}
		if err := c.call(r, s.bearer, http.MethodPut, path, in, nil); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		redirectDone(w, r, "admin/trust", "trust.added", name)
	case "remove":
		if err := c.call(r, s.bearer, http.MethodDelete, path, nil, nil); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		redirectDone(w, r, "admin/trust", "trust.removed", name)
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: add or remove.")
	}
}
