package api

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/promotion"
)

// call is one request of the matrix.
type call struct {
	method, path string
	body         any
	headers      []string
	// token replaces the caller's token (logout revokes the one it uses).
	token string
}

// fixture makes a request that succeeds when the caller holds perm on
// the target group (env=dev in scope, env=prod out of it), creating what
// it destroys or needs first. perm "" means every authenticated caller
// may; group false means a domain-level permission.
type fixture struct {
	perm  string
	group bool
	// list routes filter instead of refusing.
	list bool
	make func(e *env, target, user string) call
}

// fresh makes a group labelled like target, with a draft, and returns its
// name.
func (e *env) freshGroup(target string) string {
	name := e.name("g")
	e.group(name, map[string]string{"env": e.envOf(target)})
	return name
}

func (e *env) envOf(group string) string {
	g := must[store.Group](e.t)(e.store.GetGroup(bg, group))
	return g.Labels["env"]
}

func (e *env) instance(group string) string {
	name := e.name("i")
	must[store.Instance](e.t)(e.store.CreateInstance(bg, store.Instance{Name: name, Group: group, Host: "h1",
		Listen: fmt.Sprintf(":%d", 10000+e.seq), StatusListen: fmt.Sprintf(":%d", 30000+e.seq)}))
	return name
}

func (e *env) draftVersion(group string) string {
	return fmt.Sprintf(`"%d"`, must[store.Draft](e.t)(e.store.GetDraft(bg, group)).Version)
}

// deployed freezes the group's draft.
func (e *env) deployed(group string) {
	e.t.Helper()
	d := must[store.Draft](e.t)(e.store.GetDraft(bg, group))
	must[store.Deployment](e.t)(e.store.Freeze(bg, group, d.Version, func(d store.Draft, n uint64) (store.Deployment, error) {
		return e.srv.sign(group, n, &d.Config, "admin", "")
	}))
}

// exportable makes a group labelled like target with a deployment that
// holds no secret in clear, which an export would refuse.
func (e *env) exportable(target string) string {
	e.t.Helper()
	name := e.freshGroup(target)
	e.addToDraft(name, func(c *deploy.Config) { c.Consumers, c.Certificates = nil, nil })
	e.deployed(name)
	return name
}

// pkg is the package of group's latest deployment, exported by the
// domain itself.
func (e *env) pkg(group string) []byte {
	e.t.Helper()
	d := must[store.Deployment](e.t)(e.store.LatestDeployment(bg, group))
	cfg := must[*deploy.Config](e.t)(template(d))
	return must[[]byte](e.t)(promotion.Export(promotion.Source{Domain: e.srv.domain.Name, Group: group, Deployment: d.Number,
		Author: d.Author, CreatedAt: d.CreatedAt, Config: cfg}, ed25519.PrivateKey(e.srv.key)))
}

// addToDraft edits a group's draft directly.
func (e *env) addToDraft(group string, change func(c *deploy.Config)) {
	d := must[store.Draft](e.t)(e.store.GetDraft(bg, group))
	change(&d.Config)
	must[store.Draft](e.t)(e.store.PutDraft(bg, group, d.Config, d.Version, "admin"))
}

func fixtures() map[string]fixture {
	g := func(perm string, mk func(e *env, target, user string) call) fixture {
		return fixture{perm: perm, group: true, make: mk}
	}
	d := func(perm string, mk func(e *env, target, user string) call) fixture {
		return fixture{perm: perm, make: mk}
	}
	get := func(path string) func(e *env, target, user string) call {
		return func(e *env, target, user string) call {
			return call{method: "GET", path: strings.ReplaceAll(path, "{group}", target)}
		}
	}
	resource := map[string]func(e *env, name string) any{
		"services": func(e *env, name string) any {
			return deploy.Service{Name: name, Upstream: "up", Routes: []deploy.Route{{Name: "x", Paths: []string{"/" + name}}}}
		},
		"upstreams": func(e *env, name string) any {
			return deploy.Upstream{Name: name, Targets: []deploy.Target{{Address: "127.0.0.1:9"}}}
		},
		"consumers": func(e *env, name string) any {
			return deploy.Consumer{Name: name, Credentials: []deploy.Credential{{Type: "key", Key: name + "-key"}}}
		},
		"certificates": func(e *env, name string) any {
			return deploy.Certificate{Name: name, SNIs: []string{name + ".example.com"}, Cert: "c", Key: "k"}
		},
	}
	add := func(e *env, group, kind, name string) {
		v := resource[kind](e, name)
		e.addToDraft(group, func(c *deploy.Config) {
			switch x := v.(type) {
			case deploy.Service:
				c.Services = append(c.Services, x)
			case deploy.Upstream:
				c.Upstreams = append(c.Upstreams, x)
			case deploy.Consumer:
				c.Consumers = append(c.Consumers, x)
			case deploy.Certificate:
				c.Certificates = append(c.Certificates, x)
			}
		})
	}
	fx := map[string]fixture{
		"health":      d("", get("/health")),
		"openapi":     d("", get("/openapi.json")),
		"domain.get":  d("", get("/domain")),
		"auth.whoami": d("", get("/auth/whoami")),
		"auth.login": d("", func(e *env, target, user string) call {
			return call{method: "POST", path: "/auth/login", body: map[string]string{"user": user, "password": testPassword}}
		}),
		"auth.logout": d("", func(e *env, target, user string) call {
			return call{method: "POST", path: "/auth/logout", token: e.token(user)}
		}),
		"auth.password": d("", func(e *env, target, user string) call {
			return call{method: "PUT", path: "/auth/password", body: map[string]string{"current": testPassword, "new": testPassword}}
		}),
		"token.list": d(rbac.TokenSelf, get("/tokens")),
		"token.create": d(rbac.TokenSelf, func(e *env, target, user string) call {
			return call{method: "POST", path: "/tokens", body: map[string]string{"name": "ci", "ttl": "1h"}}
		}),
		"token.revoke": d(rbac.TokenSelf, func(e *env, target, user string) call {
			bearer := e.token(user)
			id := strings.Split(bearer, "_")[1]
			return call{method: "DELETE", path: "/tokens/" + id}
		}),

		"group.list": {list: true, make: get("/groups")},
		"group.create": g(rbac.GroupWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups", body: map[string]any{"name": e.name("new"), "labels": map[string]string{"env": e.envOf(target)}}}
		}),
		"group.get": g(rbac.GroupRead, get("/groups/{group}")),
		"group.update": g(rbac.GroupWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target, body: map[string]any{"labels": map[string]string{"env": e.envOf(target)}, "description": "d"}}
		}),
		"group.delete": g(rbac.GroupWrite, func(e *env, target, user string) call {
			return call{method: "DELETE", path: "/groups/" + e.freshGroup(target)}
		}),
		"group.summary": g(rbac.GroupRead, get("/groups/{group}/summary")),
		"group.gossip-key.rotate": g(rbac.GroupWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/gossip-key"}
		}),
		"group.instances": g(rbac.InstanceRead, get("/groups/{group}/instances")),

		"publish-key.export": d(rbac.UserAdmin, func(e *env, target, user string) call {
			return call{method: "POST", path: "/publish-key/export"}
		}),
		"publish-key.rotate": d(rbac.UserAdmin, func(e *env, target, user string) call {
			return call{method: "POST", path: "/publish-key/rotate"}
		}),

		"certificate.list": {list: true, make: get("/certificates")},
		"ca.get":           d(rbac.HostRead, get("/ca")),
		"ca.rotate": d(rbac.UserAdmin, func(e *env, target, user string) call {
			e.caRotating(false)
			return call{method: "POST", path: "/ca/rotate"}
		}),
		"ca.retire": d(rbac.UserAdmin, func(e *env, target, user string) call {
			e.caRotating(true)
			return call{method: "POST", path: "/ca/retire"}
		}),

		"host.list": d(rbac.HostRead, get("/hosts")),
		"host.create": d(rbac.HostWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/hosts", body: map[string]any{"name": e.name("h")}}
		}),
		"host.get": d(rbac.HostRead, get("/hosts/h1")),
		"host.delete": d(rbac.HostWrite, func(e *env, target, user string) call {
			name := e.name("h")
			must[store.Host](e.t)(e.store.CreateHost(bg, store.Host{Name: name}))
			return call{method: "DELETE", path: "/hosts/" + name}
		}),

		"release.upload": d(rbac.HostWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/releases?version=" + e.name("r"), body: []byte("a binary")}
		}),
		"release.list": d(rbac.HostRead, get("/releases")),
		"release.get": d(rbac.HostRead, func(e *env, target, user string) call {
			name := e.name("r")
			must[store.Release](e.t)(e.store.PutRelease(bg, store.Release{Version: name}, []byte("x")))
			return call{method: "GET", path: "/releases/" + name}
		}),
		"release.delete": d(rbac.HostWrite, func(e *env, target, user string) call {
			name := e.name("r")
			must[store.Release](e.t)(e.store.PutRelease(bg, store.Release{Version: name}, []byte("x")))
			return call{method: "DELETE", path: "/releases/" + name}
		}),
		"group.gateway.get": g(rbac.GroupRead, get("/groups/{group}/gateway")),
		"group.gateway.update": g(rbac.GroupWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target + "/gateway", body: map[string]any{"version": "", "max_unavailable": 2}}
		}),

		"instance.list": {list: true, make: get("/instances")},
		"instance.create": g(rbac.InstanceWrite, func(e *env, target, user string) call {
			e.seq++
			return call{method: "POST", path: "/instances", body: map[string]any{"name": e.name("i"), "group": target, "host": "h1",
				"listen": fmt.Sprintf(":%d", 10000+e.seq), "status_listen": fmt.Sprintf(":%d", 30000+e.seq)}}
		}),
		"instance.get": g(rbac.InstanceRead, func(e *env, target, user string) call {
			return call{method: "GET", path: "/instances/" + e.instance(target)}
		}),
		"instance.update": g(rbac.InstanceWrite, func(e *env, target, user string) call {
			name := e.instance(target)
			return call{method: "PUT", path: "/instances/" + name, body: map[string]any{"group": target, "host": "h1",
				"listen": fmt.Sprintf(":%d", 10000+e.seq), "status_listen": fmt.Sprintf(":%d", 30000+e.seq)}}
		}),
		"instance.delete": g(rbac.InstanceWrite, func(e *env, target, user string) call {
			return call{method: "DELETE", path: "/instances/" + e.instance(target)}
		}),
		"instance.restart": g(rbac.InstanceOperate, func(e *env, target, user string) call {
			return call{method: "POST", path: "/instances/" + e.instance(target) + "/restart"}
		}),
		"settings.group.get": g(rbac.GroupRead, get("/groups/{group}/settings")),
		"settings.group.set": g(rbac.SettingsWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target + "/settings", body: `{"log_level": "debug"}`}
		}),
		"settings.instance.get": g(rbac.InstanceRead, func(e *env, target, user string) call {
			return call{method: "GET", path: "/instances/" + e.instance(target) + "/settings"}
		}),
		"settings.instance.set": g(rbac.SettingsWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/instances/" + e.instance(target) + "/settings", body: `{"log_level": "warn"}`}
		}),

		"draft.get": g(rbac.DraftRead, get("/groups/{group}/draft")),
		"draft.update": g(rbac.DraftWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target + "/draft", body: config("/b"), headers: []string{"If-Match", e.draftVersion(target)}}
		}),
		"draft.validate": g(rbac.DraftRead, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/draft/validate"}
		}),
		"draft.diff":                g(rbac.DraftRead, get("/groups/{group}/draft/diff")),
		"draft.global-policies.get": g(rbac.DraftRead, get("/groups/{group}/draft/global-policies")),
		"draft.global-policies.update": g(rbac.DraftWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target + "/draft/global-policies", body: []any{}}
		}),
		"draft.routes.list": g(rbac.DraftRead, get("/groups/{group}/draft/services/svc/routes")),
		"draft.routes.create": g(rbac.DraftWrite, func(e *env, target, user string) call {
			name := e.name("r")
			return call{method: "POST", path: "/groups/" + target + "/draft/services/svc/routes", body: deploy.Route{Name: name, Paths: []string{"/" + name}}}
		}),
		"draft.routes.get": g(rbac.DraftRead, get("/groups/{group}/draft/services/svc/routes/r1")),
		"draft.routes.update": g(rbac.DraftWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/groups/" + target + "/draft/services/svc/routes/r1", body: deploy.Route{Paths: []string{"/a"}}}
		}),
		"draft.routes.delete": g(rbac.DraftWrite, func(e *env, target, user string) call {
			name := e.name("r")
			e.addToDraft(target, func(c *deploy.Config) {
				c.Services[0].Routes = append(c.Services[0].Routes, deploy.Route{Name: name, Paths: []string{"/" + name}})
			})
			return call{method: "DELETE", path: "/groups/" + target + "/draft/services/svc/routes/" + name}
		}),

		"deployment.create": g(rbac.DeploymentCreate, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/deployments", body: map[string]string{"message": "m"}}
		}),
		"deployment.list": g(rbac.DeploymentRead, get("/groups/{group}/deployments")),
		"deployment.get":  g(rbac.DeploymentRead, get("/groups/{group}/deployments/latest")),
		"deployment.diff": g(rbac.DeploymentRead, get("/groups/{group}/deployments/1/diff/latest")),
		"deployment.export": g(rbac.DeploymentRead, func(e *env, target, user string) call {
			name := e.exportable(target)
			return call{method: "GET", path: "/groups/" + name + "/deployments/latest/package"}
		}),
		"deployment.import": g(rbac.DeploymentCreate, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/import?dry_run=true", body: e.pkg(e.exportable(target))}
		}),
		"deployment.rollback": g(rbac.DeploymentCreate, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/deployments/1/rollback", body: map[string]string{}}
		}),
		"deployment.rollout": g(rbac.DeploymentRead, get("/groups/{group}/deployments/latest/rollout")),

		"user.list": d(rbac.UserRead, get("/users")),
		"user.create": d(rbac.UserAdmin, func(e *env, target, user string) call {
			return call{method: "POST", path: "/users", body: map[string]string{"name": e.name("u"), "password": testPassword}}
		}),
		"user.get": d(rbac.UserRead, get("/users/admin")),
		"user.update": d(rbac.UserAdmin, func(e *env, target, user string) call {
			name := e.name("u")
			e.user(name, rbac.RoleViewer, store.Scope{Domain: true})
			return call{method: "PATCH", path: "/users/" + name, body: map[string]bool{"disabled": true}}
		}),
		"user.delete": d(rbac.UserAdmin, func(e *env, target, user string) call {
			name := e.name("u")
			e.user(name, rbac.RoleViewer, store.Scope{Domain: true})
			return call{method: "DELETE", path: "/users/" + name}
		}),
		"role.list": d(rbac.UserRead, get("/roles")),
		"role.create": d(rbac.UserAdmin, func(e *env, target, user string) call {
			return call{method: "POST", path: "/roles", body: map[string]any{"name": e.name("role"), "permissions": []string{rbac.GroupRead}}}
		}),
		"role.get": d(rbac.UserRead, get("/roles/viewer")),
		"role.update": d(rbac.UserAdmin, func(e *env, target, user string) call {
			name := e.name("role")
			must[store.Role](e.t)(e.store.CreateRole(bg, store.Role{Name: name, Permissions: []string{rbac.GroupRead}}))
			return call{method: "PUT", path: "/roles/" + name, body: map[string]any{"permissions": []string{rbac.DraftRead}}}
		}),
		"role.delete": d(rbac.UserAdmin, func(e *env, target, user string) call {
			name := e.name("role")
			must[store.Role](e.t)(e.store.CreateRole(bg, store.Role{Name: name, Permissions: []string{rbac.GroupRead}}))
			return call{method: "DELETE", path: "/roles/" + name}
		}),
		"binding.list": d(rbac.UserRead, get("/bindings")),
		"binding.create": d(rbac.UserAdmin, func(e *env, target, user string) call {
			return call{method: "POST", path: "/bindings", body: map[string]any{"user": "admin", "role": "viewer", "scope": map[string]any{"groups": []string{"dev"}}}}
		}),
		"binding.delete": d(rbac.UserAdmin, func(e *env, target, user string) call {
			b := must[store.RoleBinding](e.t)(e.store.CreateRoleBinding(bg, store.RoleBinding{User: "admin", Role: "viewer", Scope: store.Scope{Groups: []string{"dev"}}}))
			return call{method: "DELETE", path: "/bindings/" + b.ID}
		}),
		"audit.list":    d(rbac.AuditRead, get("/audit")),
		"domain.backup": d(rbac.BackupCreate, func(e *env, target, user string) call { return call{method: "POST", path: "/backup"} }),

		"domain.overview": {list: true, make: get("/overview")},
		"join-token.create": d(rbac.HostWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/join-tokens", body: map[string]string{"host": "h1"}}
		}),
		"join-token.list": d(rbac.HostRead, get("/join-tokens")),

		"environment.list": d(rbac.EnvironmentRead, get("/environments")),
		"environment.get": d(rbac.EnvironmentRead, func(e *env, target, user string) call {
			return call{method: "GET", path: "/environments/" + e.environment(nil)}
		}),
		"environment.replace": d(rbac.EnvironmentWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/environments/" + e.name("env"), body: map[string]any{"values": map[string]string{"A": "1"}}}
		}),
		"environment.update": d(rbac.EnvironmentWrite, func(e *env, target, user string) call {
			return call{method: "PATCH", path: "/environments/" + e.name("env"), body: map[string]any{"set": map[string]string{"A": "1"}}}
		}),
		"environment.delete": d(rbac.EnvironmentWrite, func(e *env, target, user string) call {
			return call{method: "DELETE", path: "/environments/" + e.environment(nil)}
		}),
		"environment.value.set": d(rbac.EnvironmentWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/environments/" + e.name("env") + "/values/A", body: map[string]string{"value": "1"}}
		}),
		"environment.value.unset": d(rbac.EnvironmentWrite, func(e *env, target, user string) call {
			return call{method: "DELETE", path: "/environments/" + e.environment(map[string]string{"A": "1"}) + "/values/A"}
		}),
		"environment.secret.list": d(rbac.EnvironmentRead, func(e *env, target, user string) call {
			return call{method: "GET", path: "/environments/" + e.environment(nil) + "/secrets"}
		}),
		"environment.secret.set": d(rbac.SecretWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/environments/" + e.name("env") + "/secrets/S", body: map[string]string{"value": "s3cret"}}
		}),
		"environment.secret.unset": d(rbac.SecretWrite, func(e *env, target, user string) call {
			name := e.environment(nil)
			e.secret(name, "S", "s3cret")
			return call{method: "DELETE", path: "/environments/" + name + "/secrets/S"}
		}),
		"trust.list": d(rbac.TrustRead, get("/trusted-domains")),
		"trust.get": d(rbac.TrustRead, func(e *env, target, user string) call {
			return call{method: "GET", path: "/trusted-domains/" + e.trusted()}
		}),
		"trust.add": d(rbac.TrustWrite, func(e *env, target, user string) call {
			return call{method: "PUT", path: "/trusted-domains/" + e.name("dom"), body: map[string]string{"public_key": e.publicKey()}}
		}),
		"trust.remove": d(rbac.TrustWrite, func(e *env, target, user string) call {
			return call{method: "DELETE", path: "/trusted-domains/" + e.trusted()}
		}),

		"metrics.query":      g(rbac.MetricsRead, get("/metrics/query?group={group}&since=10m")),
		"metrics.prometheus": {list: true, make: get("/metrics/prometheus")},
	}
	for _, kind := range draftKinds {
		first := map[string]string{"services": "svc", "upstreams": "up", "consumers": "alice", "certificates": ""}[kind]
		fx["draft."+kind+".list"] = g(rbac.DraftRead, get("/groups/{group}/draft/"+kind))
		fx["draft."+kind+".create"] = g(rbac.DraftWrite, func(e *env, target, user string) call {
			return call{method: "POST", path: "/groups/" + target + "/draft/" + kind, body: resource[kind](e, e.name("x"))}
		})
		fx["draft."+kind+".get"] = g(rbac.DraftRead, func(e *env, target, user string) call {
			name := first
			if name == "" {
				name = e.name("x")
				add(e, target, kind, name)
			}
			return call{method: "GET", path: "/groups/" + target + "/draft/" + kind + "/" + name}
		})
		fx["draft."+kind+".update"] = g(rbac.DraftWrite, func(e *env, target, user string) call {
			name := e.name("x")
			add(e, target, kind, name)
			return call{method: "PUT", path: "/groups/" + target + "/draft/" + kind + "/" + name, body: resource[kind](e, name)}
		})
		fx["draft."+kind+".delete"] = g(rbac.DraftWrite, func(e *env, target, user string) call {
			name := e.name("x")
			add(e, target, kind, name)
			return call{method: "DELETE", path: "/groups/" + target + "/draft/" + kind + "/" + name}
		})
	}
	return fx
}

// holds says whether a built-in role's permissions include perm.
func holds(role store.Role, perm string) bool {
	return slices.Contains(role.Permissions, rbac.Any) || slices.Contains(role.Permissions, perm)
}

// TestPermissionMatrix walks every route × every built-in role × a binding
// on the whole domain or on env=dev only × a group in scope (env=dev) or
// out of it (env=prod), and checks the answer is what the permission
// model says: success, or 403 — and 401 without a token.
func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	must[store.Host](t)(e.store.CreateHost(bg, store.Host{Name: "h1"}))
	e.group("dev", map[string]string{"env": "dev"})
	e.group("prod", map[string]string{"env": "prod"})
	for _, g := range []string{"dev", "prod"} {
		e.deployed(g)
		e.deployed(g)
	}
	fx := fixtures()
	routes := e.srv.routes()
	// Node managers' routes are not users': TestAgentAPI covers them.
	routes = slices.DeleteFunc(routes, func(rt *route) bool { return rt.agent })
	for _, rt := range routes {
		if _, ok := fx[rt.action]; !ok {
			t.Errorf("route %s %s (%s) has no fixture in the permission matrix", rt.method, rt.path, rt.action)
		}
	}
	for _, role := range rbac.BuiltInRoles() {
		for _, bound := range []string{"domain", "env=dev"} {
			user := e.name(role.Name)
			scope := store.Scope{Domain: true}
			if bound != "domain" {
				scope = store.Scope{Selector: map[string]string{"env": "dev"}}
			}
			token := e.user(user, role.Name, scope)
			for _, rt := range routes {
				f := fx[rt.action]
				for _, target := range []string{"dev", "prod"} {
					if !f.group && target == "prod" {
						continue
					}
					c := f.make(e, target, user)
					tok := token
					if c.token != "" {
						tok = c.token
					}
					if rt.public {
						tok = ""
					}
					allowed := f.perm == "" || f.list || holds(role, f.perm) && (f.perm == rbac.TokenSelf ||
						bound == "domain" || f.group && target == "dev")
					want := rt.status
					if rt.status == http.StatusOK && rt.out == nil && rt.produces == "" {
						want = http.StatusNoContent
					}
					if !allowed {
						want = http.StatusForbidden
					}
					what := fmt.Sprintf("%s as %s bound to %s on %s", rt.action, role.Name, bound, target)
					e.do(tok, c.method, c.path, c.body, c.headers...).expect(t, want, what)
				}
			}
		}
	}
	// Without a token, every route but the public ones is refused.
	for _, rt := range routes {
		if rt.public {
			continue
		}
		c := fx[rt.action].make(e, "dev", "admin")
		e.do("", c.method, c.path, c.body, c.headers...).expect(t, http.StatusUnauthorized, rt.action+" without a token")
	}
}
