package rbac

import "github.com/gatehouse/gatehouse/adminnode/store"

// Names of the built-in roles.
const (
	RoleDomainAdmin = "domain-admin"
	RoleDeployer    = "deployer"
	RoleOperator    = "operator"
	RoleDeveloper   = "developer"
	RoleViewer      = "viewer"
)

// BuiltInRoles returns the roles the admin node creates with a domain, as
// fresh values the caller may change:
//
//	permission         domain-admin deployer operator developer viewer
//	group:read              x          x        x        x        x
//	group:write             x          x
//	draft:read              x          x                 x        x
//	draft:write             x          x                 x
//	deployment:read         x          x        x        x        x
//	deployment:create       x          x
//	instance:read           x          x        x        x        x
//	instance:write          x                   x
//	instance:operate        x                   x
//	settings:write          x                   x
//	host:read               x                   x                 x
//	host:write              x
//	user:read               x
//	user:admin              x
//	token:self              x          x        x        x        x
//	audit:read              x
//	metrics:read            x          x        x        x        x
//	environment:read        x          x        x        x        x
//	environment:write       x                   x
//	secret:write            x
//	trust:read              x          x        x                 x
//	trust:write             x
//
// domain-admin holds "*", so it also gets permissions added later. The
// table assumes a domain-scoped binding: bound to groups, a role grants
// none of host, user, audit, environment, secret and trust (see
// Authorizer).
//
// Environment values are infrastructure (upstream addresses, host names)
// that operators keep; deployers and developers read them to write and
// promote configurations with placeholders. Secrets and the domains
// trusted to send packages are as sensitive as users: admins only.
func BuiltInRoles() []store.Role {
	return []store.Role{
		{
			Name:        RoleDomainAdmin,
			BuiltIn:     true,
			Description: "Everything, including users, roles and the audit log.",
			Permissions: []string{Any},
		},
		{
			Name:        RoleDeployer,
			BuiltIn:     true,
			Description: "Edits groups and drafts, deploys and rolls back.",
			Permissions: []string{
				GroupRead, GroupWrite,
				DraftRead, DraftWrite,
				DeploymentRead, DeploymentCreate,
				InstanceRead, MetricsRead, TokenSelf,
				EnvironmentRead, TrustRead,
			},
		},
		{
			Name:        RoleOperator,
			BuiltIn:     true,
			Description: "Manages and restarts instances, sets their dynamic settings, keeps environment values; cannot change configuration.",
			Permissions: []string{
				GroupRead, DeploymentRead,
				InstanceRead, InstanceWrite, InstanceOperate, SettingsWrite,
				HostRead, MetricsRead, TokenSelf,
				EnvironmentRead, EnvironmentWrite, TrustRead,
			},
		},
		{
			Name:        RoleDeveloper,
			BuiltIn:     true,
			Description: "Edits drafts; cannot deploy.",
			Permissions: []string{
				GroupRead, DraftRead, DraftWrite,
				DeploymentRead, InstanceRead, MetricsRead, TokenSelf,
				EnvironmentRead,
			},
		},
		{
			Name:        RoleViewer,
			BuiltIn:     true,
			Description: "Reads everything but users and the audit log.",
			Permissions: []string{
				GroupRead, DraftRead, DeploymentRead, InstanceRead,
				HostRead, MetricsRead, TokenSelf,
				EnvironmentRead, TrustRead,
			},
		},
	}
}
