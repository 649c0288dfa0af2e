package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/deploy"
)

// scope says where a route's permission is checked before its handler
// runs. Routes whose group comes from a body or an instance, and lists
// (filtered rather than refused), check in the handler: scopeHandler.
type scope int

const (
	scopeHandler scope = iota
	scopeDomain
	// scopeGroup checks on the path's {group}.
	scopeGroup
	// scopeQueryGroup checks on the query's required group parameter.
	scopeQueryGroup
)

// route is one operation of the API.
type route struct {
	method string
	// path is relative to apitypes.Prefix, or apitypes.AgentPrefix for
	// agent routes.
	path string
	// action names the operation in the audit log and is its OpenAPI
	// operationId.
	action  string
	summary string
	// public routes need no authentication.
	public bool
	// agent routes are node managers', under apitypes.AgentPrefix,
	// authenticated by client certificate.
	agent bool
	// noAudit routes are not administrative actions (heartbeats).
	noAudit bool
	// safe marks a POST that changes nothing (validation): not audited,
	// wakes no blocking query.
	safe bool
	// perm is checked where scope says; "" for routes any authenticated
	// caller may use, or that check in the handler.
	perm   string
	scope  scope
	status int
	// in and out are samples of the request and response bodies, for the
	// OpenAPI description; inRaw marks a body that is a configuration
	// document (JSON or YAML).
	in, out any
	inRaw   bool
	// query lists the query parameters the route reads.
	query []string
	// produces is the media type of an answer that is not JSON (its
	// handler returns served).
	produces string
	// maxBody replaces the server's limit on a request body (a release's
	// binary).
	maxBody int64
	handle  func(s *Server, q *request) (any, error)
}

// fullPath is the route's path with its prefix.
func (rt *route) fullPath() string {
	if rt.agent {
		return apitypes.AgentPrefix + rt.path
	}
	return apitypes.Prefix + rt.path
}

func (rt *route) mutates() bool {
	return rt.method != http.MethodGet && rt.method != http.MethodHead && !rt.safe
}

// draftKinds are the resources of a draft addressed by name.
var draftKinds = []string{"services", "upstreams", "consumers", "certificates"}

func (s *Server) routes() []*route {
	rs := []*route{
		{method: "GET", path: "/health", action: "health", summary: "Liveness and the domain's name", public: true,
			out: apitypes.Health{}, handle: (*Server).health},
		{method: "GET", path: "/openapi.json", action: "openapi", summary: "This API's OpenAPI 3 description",
			out: map[string]any{}, handle: (*Server).openapi},
		{method: "GET", path: "/domain", action: "domain.get", summary: "The domain: name, CA and signing key fingerprints",
			out: apitypes.Domain{}, handle: (*Server).getDomain},
		{method: "POST", path: "/backup", action: "domain.backup", summary: "A signed backup of the whole domain, streamed as it is read from one snapshot of the store (docs/backups.md)",
			perm: rbac.BackupCreate, scope: scopeDomain, produces: backupMediaType, handle: (*Server).backup},

		{method: "POST", path: "/auth/login", action: "auth.login", summary: "Exchange a user's password for a login token", public: true,
			in: apitypes.LoginRequest{}, out: apitypes.LoginResponse{}, handle: (*Server).login},
		{method: "POST", path: "/auth/logout", action: "auth.logout", summary: "Revoke the token of this request",
			handle: (*Server).logout},
		{method: "GET", path: "/auth/whoami", action: "auth.whoami", summary: "The caller, its domain permissions and its role bindings",
			out: apitypes.WhoAmI{}, handle: (*Server).whoami},
		{method: "PUT", path: "/auth/password", action: "auth.password", summary: "Change one's own password",
			in: apitypes.PasswordChange{}, handle: (*Server).changePassword},

		{method: "GET", path: "/tokens", action: "token.list", summary: "API and login tokens of the caller (or of a user, or all with user=*)",
			query: []string{"user"}, out: []apitypes.Token{}, handle: (*Server).listTokens},
		{method: "POST", path: "/tokens", action: "token.create", summary: "Create an API token; its secret is shown once", status: http.StatusCreated,
			in: apitypes.TokenCreate{}, out: apitypes.TokenCreated{}, handle: (*Server).createToken},
		{method: "DELETE", path: "/tokens/{id}", action: "token.revoke", summary: "Revoke a token",
			handle: (*Server).revokeToken},

		{method: "GET", path: "/groups", action: "group.list", summary: "Groups the caller may read, optionally by label selector",
			query: []string{"selector"}, out: []apitypes.Group{}, handle: (*Server).listGroups},
		{method: "POST", path: "/groups", action: "group.create", summary: "Create a group", status: http.StatusCreated,
			in: apitypes.Group{}, out: apitypes.Group{}, handle: (*Server).createGroup},
		{method: "GET", path: "/groups/{group}", action: "group.get", summary: "A group (ETag: its version)",
			perm: rbac.GroupRead, scope: scopeGroup, out: apitypes.Group{}, handle: (*Server).getGroup},
		{method: "PUT", path: "/groups/{group}", action: "group.update", summary: "Replace a group's type, labels and description (If-Match: its version)",
			perm: rbac.GroupWrite, scope: scopeGroup, in: apitypes.Group{}, out: apitypes.Group{}, handle: (*Server).updateGroup},
		{method: "DELETE", path: "/groups/{group}", action: "group.delete", summary: "Delete a group without instances, with its draft and deployments",
			perm: rbac.GroupWrite, scope: scopeGroup, handle: (*Server).deleteGroup},
		{method: "POST", path: "/groups/{group}/gossip-key", action: "group.gossip-key.rotate", summary: "Make a new primary gossip key for the group's gateways, keeping the previous one accepted",
			perm: rbac.GroupWrite, scope: scopeGroup, out: apitypes.GossipKeyRotation{}, handle: (*Server).rotateGossipKey},
		{method: "GET", path: "/groups/{group}/summary", action: "group.summary", summary: "Instances by status and the current deployment's roll-out",
			perm: rbac.GroupRead, scope: scopeGroup, out: apitypes.GroupSummary{}, handle: (*Server).groupSummary},
		{method: "GET", path: "/groups/{group}/instances", action: "group.instances", summary: "The group's instances with their status",
			perm: rbac.InstanceRead, scope: scopeGroup, out: []apitypes.Instance{}, handle: (*Server).groupInstances},

		{method: "GET", path: "/hosts", action: "host.list", summary: "Hosts of the domain",
			perm: rbac.HostRead, scope: scopeDomain, out: []apitypes.Host{}, handle: (*Server).listHosts},
		{method: "POST", path: "/hosts", action: "host.create", summary: "Declare a host", status: http.StatusCreated,
			perm: rbac.HostWrite, scope: scopeDomain, in: apitypes.Host{}, out: apitypes.Host{}, handle: (*Server).createHost},
		{method: "GET", path: "/hosts/{host}", action: "host.get", summary: "A host",
			perm: rbac.HostRead, scope: scopeDomain, out: apitypes.Host{}, handle: (*Server).getHost},
		{method: "DELETE", path: "/hosts/{host}", action: "host.delete", summary: "Delete a host without instances",
			perm: rbac.HostWrite, scope: scopeDomain, handle: (*Server).deleteHost},

		{method: "GET", path: "/instances", action: "instance.list", summary: "Instances of the groups the caller may read, with their status",
			query: []string{"group", "host", "status", "peers"}, out: []apitypes.Instance{}, handle: (*Server).listInstances},
		{method: "POST", path: "/instances", action: "instance.create", summary: "Declare an instance of a group on a host", status: http.StatusCreated,
			in: apitypes.Instance{}, out: apitypes.Instance{}, handle: (*Server).createInstance},
		{method: "GET", path: "/instances/{instance}", action: "instance.get", summary: "An instance with its status",
			out: apitypes.Instance{}, handle: (*Server).getInstance},
		{method: "PUT", path: "/instances/{instance}", action: "instance.update", summary: "Replace an instance's desired state",
			in: apitypes.Instance{}, out: apitypes.Instance{}, handle: (*Server).updateInstance},
		{method: "DELETE", path: "/instances/{instance}", action: "instance.delete", summary: "Delete an instance",
			handle: (*Server).deleteInstance},
		{method: "POST", path: "/instances/{instance}/restart", action: "instance.restart", summary: "Have the instance's node manager restart its gateway; 202, then wait for the instance ready under a new process",
			status: http.StatusAccepted, out: apitypes.InstanceRestart{}, handle: (*Server).restartInstance},

		{method: "GET", path: "/groups/{group}/draft", action: "draft.get", summary: "The group's draft configuration (ETag: its version; secrets redacted)",
			perm: rbac.DraftRead, scope: scopeGroup, out: apitypes.Draft{}, handle: (*Server).getDraft},
		{method: "PUT", path: "/groups/{group}/draft", action: "draft.update", summary: "Replace the draft with a configuration document, JSON or YAML (If-Match required)",
			perm: rbac.DraftWrite, scope: scopeGroup, in: deploy.Config{}, inRaw: true, out: apitypes.Draft{}, handle: (*Server).putDraft},
		{method: "POST", path: "/groups/{group}/draft/validate", action: "draft.validate", summary: "Validate the draft, or the configuration in the body",
			perm: rbac.DraftRead, scope: scopeGroup, safe: true, in: deploy.Config{}, inRaw: true, out: apitypes.Validation{}, handle: (*Server).validateDraft},
		{method: "GET", path: "/groups/{group}/draft/diff", action: "draft.diff", summary: "What deploying the draft would change",
			perm: rbac.DraftRead, scope: scopeGroup, out: apitypes.Diff{}, handle: (*Server).draftDiff},
		{method: "GET", path: "/groups/{group}/draft/global-policies", action: "draft.global-policies.get", summary: "The draft's global policies, in order",
			perm: rbac.DraftRead, scope: scopeGroup, out: []deploy.Policy{}, handle: (*Server).getGlobalPolicies},
		{method: "PUT", path: "/groups/{group}/draft/global-policies", action: "draft.global-policies.update", summary: "Replace the draft's global policies",
			perm: rbac.DraftWrite, scope: scopeGroup, in: []deploy.Policy{}, out: []deploy.Policy{}, handle: (*Server).putGlobalPolicies},
		{method: "GET", path: "/groups/{group}/draft/services/{service}/routes", action: "draft.routes.list", summary: "Routes of a service of the draft",
			perm: rbac.DraftRead, scope: scopeGroup, out: []deploy.Route{}, handle: (*Server).listRoutes},
		{method: "POST", path: "/groups/{group}/draft/services/{service}/routes", action: "draft.routes.create", summary: "Add a route to a service of the draft", status: http.StatusCreated,
			perm: rbac.DraftWrite, scope: scopeGroup, in: deploy.Route{}, out: deploy.Route{}, handle: (*Server).createRoute},
		{method: "GET", path: "/groups/{group}/draft/services/{service}/routes/{route}", action: "draft.routes.get", summary: "A route of the draft",
			perm: rbac.DraftRead, scope: scopeGroup, out: deploy.Route{}, handle: (*Server).getRoute},
		{method: "PUT", path: "/groups/{group}/draft/services/{service}/routes/{route}", action: "draft.routes.update", summary: "Replace a route of the draft",
			perm: rbac.DraftWrite, scope: scopeGroup, in: deploy.Route{}, out: deploy.Route{}, handle: (*Server).putRoute},
		{method: "DELETE", path: "/groups/{group}/draft/services/{service}/routes/{route}", action: "draft.routes.delete", summary: "Remove a route from the draft",
			perm: rbac.DraftWrite, scope: scopeGroup, handle: (*Server).deleteRoute},

		{method: "POST", path: "/groups/{group}/deployments", action: "deployment.create", summary: "Freeze the draft into the next deployment, signed (409 nothing_to_deploy when it is the current one, unless force)", status: http.StatusCreated,
			perm: rbac.DeploymentCreate, scope: scopeGroup, in: apitypes.DeployRequest{}, out: apitypes.Deployment{}, handle: (*Server).deploy},
		{method: "GET", path: "/groups/{group}/deployments", action: "deployment.list", summary: "The group's deployments, newest first",
			perm: rbac.DeploymentRead, scope: scopeGroup, out: []apitypes.Deployment{}, handle: (*Server).listDeployments},
		{method: "GET", path: "/groups/{group}/deployments/{number}", action: "deployment.get", summary: "A deployment with its configuration (secrets redacted); number or latest",
			perm: rbac.DeploymentRead, scope: scopeGroup, out: apitypes.Deployment{}, handle: (*Server).getDeployment},
		{method: "GET", path: "/groups/{group}/deployments/{from}/diff/{to}", action: "deployment.diff", summary: "What changed from one deployment to another, resource by resource",
			perm: rbac.DeploymentRead, scope: scopeGroup, out: apitypes.Diff{}, handle: (*Server).diffDeployments},
		{method: "GET", path: "/groups/{group}/deployments/{number}/package", action: "deployment.export", summary: "The deployment's configuration as written, placeholders unresolved, as a signed package file (.ghpkg)",
			perm: rbac.DeploymentRead, scope: scopeGroup, produces: packageMediaType, handle: (*Server).exportPackage},
		{method: "POST", path: "/groups/{group}/import", action: "deployment.import", summary: "Open a package, resolve it with an environment, validate it and show the diff; unless a dry run, write it as the draft and deploy it", status: http.StatusOK,
			perm: rbac.DeploymentCreate, scope: scopeGroup, query: []string{"env", "dry_run"}, out: apitypes.Import{}, handle: (*Server).importPackage},
		{method: "GET", path: "/groups/{group}/deployments/{number}/rollout", action: "deployment.rollout", summary: "Where a deployment is in its roll-out, instance by instance; with index, a blocking query answered when that changes",
			perm: rbac.DeploymentRead, scope: scopeGroup, query: []string{"index", "wait"}, out: apitypes.Rollout{}, handle: (*Server).rollout},
		{method: "POST", path: "/groups/{group}/deployments/{number}/rollback", action: "deployment.rollback", summary: "Deploy an earlier deployment's configuration as the next number; the draft is set to it unless keep_draft", status: http.StatusCreated,
			perm: rbac.DeploymentCreate, scope: scopeGroup, in: apitypes.RollbackRequest{}, out: apitypes.Deployment{}, handle: (*Server).rollback},

		// user:admin, domain-wide: whoever holds it can grant themselves
		// anything, so these keys go to no one who could not take them.
		{method: "POST", path: "/publish-key/export", action: "publish-key.export", summary: "The domain's publish keys, which open the deployments published to object storage (domain admins only; audited)",
			perm: rbac.UserAdmin, scope: scopeDomain, out: apitypes.PublishKeyExport{}, handle: (*Server).exportPublishKeys},
		{method: "POST", path: "/publish-key/rotate", action: "publish-key.rotate", summary: "Make a new publish key that seals from now on, keeping the previous one accepted",
			perm: rbac.UserAdmin, scope: scopeDomain, out: apitypes.PublishKeyRotation{}, handle: (*Server).rotatePublishKey},

		{method: "GET", path: "/users", action: "user.list", summary: "Users",
			perm: rbac.UserRead, scope: scopeDomain, out: []apitypes.User{}, handle: (*Server).listUsers},
		{method: "POST", path: "/users", action: "user.create", summary: "Create a user", status: http.StatusCreated,
			perm: rbac.UserAdmin, scope: scopeDomain, in: apitypes.UserCreate{}, out: apitypes.User{}, handle: (*Server).createUser},
		{method: "GET", path: "/users/{user}", action: "user.get", summary: "A user",
			perm: rbac.UserRead, scope: scopeDomain, out: apitypes.User{}, handle: (*Server).getUser},
		{method: "PATCH", path: "/users/{user}", action: "user.update", summary: "Set a user's password or disable it (which revokes its tokens)",
			perm: rbac.UserAdmin, scope: scopeDomain, in: apitypes.UserUpdate{}, out: apitypes.User{}, handle: (*Server).updateUser},
		{method: "DELETE", path: "/users/{user}", action: "user.delete", summary: "Delete a user, its bindings and tokens",
			perm: rbac.UserAdmin, scope: scopeDomain, handle: (*Server).deleteUser},
		{method: "GET", path: "/roles", action: "role.list", summary: "Roles, built-in and custom",
			perm: rbac.UserRead, scope: scopeDomain, out: []apitypes.Role{}, handle: (*Server).listRoles},
		{method: "POST", path: "/roles", action: "role.create", summary: "Create a custom role", status: http.StatusCreated,
			perm: rbac.UserAdmin, scope: scopeDomain, in: apitypes.Role{}, out: apitypes.Role{}, handle: (*Server).createRole},
		{method: "GET", path: "/roles/{role}", action: "role.get", summary: "A role",
			perm: rbac.UserRead, scope: scopeDomain, out: apitypes.Role{}, handle: (*Server).getRole},
		{method: "PUT", path: "/roles/{role}", action: "role.update", summary: "Replace a custom role's permissions and description",
			perm: rbac.UserAdmin, scope: scopeDomain, in: apitypes.Role{}, out: apitypes.Role{}, handle: (*Server).updateRole},
		{method: "DELETE", path: "/roles/{role}", action: "role.delete", summary: "Delete an unbound custom role",
			perm: rbac.UserAdmin, scope: scopeDomain, handle: (*Server).deleteRole},
		{method: "GET", path: "/bindings", action: "binding.list", summary: "Role bindings, optionally of one user",
			perm: rbac.UserRead, scope: scopeDomain, query: []string{"user"}, out: []apitypes.RoleBinding{}, handle: (*Server).listBindings},
		{method: "POST", path: "/bindings", action: "binding.create", summary: "Grant a role to a user within a scope", status: http.StatusCreated,
			perm: rbac.UserAdmin, scope: scopeDomain, in: apitypes.RoleBinding{}, out: apitypes.RoleBinding{}, handle: (*Server).createBinding},
		{method: "DELETE", path: "/bindings/{id}", action: "binding.delete", summary: "Remove a role binding",
			perm: rbac.UserAdmin, scope: scopeDomain, handle: (*Server).deleteBinding},

		{method: "GET", path: "/audit", action: "audit.list", summary: "Audit entries, newest first",
			perm: rbac.AuditRead, scope: scopeDomain, query: []string{"user", "action", "group", "since", "until", "limit", "before"},
			out: []apitypes.AuditEntry{}, handle: (*Server).listAudit},
	}
	for _, kind := range draftKinds {
		sample := draftSample(kind)
		rs = append(rs,
			&route{method: "GET", path: "/groups/{group}/draft/" + kind, action: "draft." + kind + ".list", summary: "The draft's " + kind,
				perm: rbac.DraftRead, scope: scopeGroup, out: []any{sample}, handle: listResources(kind)},
			&route{method: "POST", path: "/groups/{group}/draft/" + kind, action: "draft." + kind + ".create", summary: "Add to the draft's " + kind, status: http.StatusCreated,
				perm: rbac.DraftWrite, scope: scopeGroup, in: sample, out: sample, handle: createResource(kind)},
			&route{method: "GET", path: "/groups/{group}/draft/" + kind + "/{name}", action: "draft." + kind + ".get", summary: "One of the draft's " + kind,
				perm: rbac.DraftRead, scope: scopeGroup, out: sample, handle: getResource(kind)},
			&route{method: "PUT", path: "/groups/{group}/draft/" + kind + "/{name}", action: "draft." + kind + ".update", summary: "Replace one of the draft's " + kind,
				perm: rbac.DraftWrite, scope: scopeGroup, in: sample, out: sample, handle: putResource(kind)},
			&route{method: "DELETE", path: "/groups/{group}/draft/" + kind + "/{name}", action: "draft." + kind + ".delete", summary: "Remove one of the draft's " + kind,
				perm: rbac.DraftWrite, scope: scopeGroup, handle: deleteResource(kind)},
		)
	}
	rs = append(rs, settingsRoutes()...)
	rs = append(rs, metricsRoutes()...)
	rs = append(rs, joinTokenRoutes()...)
	rs = append(rs, agentRoutes()...)
	rs = append(rs, releaseRoutes()...)
	rs = append(rs, overviewRoutes()...)
	rs = append(rs, dynamicRoutes()...)
	rs = append(rs, caRoutes()...)
	rs = append(rs, agentCARoutes()...)
	for _, rt := range rs {
		if rt.status == 0 {
			rt.status = http.StatusOK
		}
	}
	return rs
}

func (s *Server) newRouter() *mux.Router {
	r := mux.NewRouter()
	api := r.PathPrefix(apitypes.Prefix).Subrouter()
	agent := r.PathPrefix(apitypes.AgentPrefix).Subrouter()
	for _, rt := range s.routes() {
		sub := api
		if rt.agent {
			sub = agent
		}
		sub.Handle(rt.path, s.serve(rt)).Methods(rt.method).Name(rt.action)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("no such route: %s %s", r.Method, r.URL.Path), "")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusMethodNotAllowed, apitypes.CodeMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path), "")
	})
	return r
}
