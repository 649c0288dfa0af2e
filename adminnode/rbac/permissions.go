package rbac

import (
	"slices"
	"strings"
)

// Permissions of the admin API, as "resource:action".
const (
	GroupRead      = "group:read"
	GroupWrite     = "group:write"
	DraftRead      = "draft:read"
	DraftWrite     = "draft:write"
	DeploymentRead = "deployment:read"
	// DeploymentCreate covers rollbacks too: a rollback is a new
	// deployment of an earlier configuration.
	DeploymentCreate = "deployment:create"
	InstanceRead     = "instance:read"
	InstanceWrite    = "instance:write"
	// InstanceOperate restarts instances without changing what they are.
	InstanceOperate = "instance:operate"
	// SettingsWrite changes the dynamic settings of a group's gateways or
	// of one instance (log level, access log, request tracing): what they
	// log, not what they serve.
	SettingsWrite = "settings:write"
	HostRead      = "host:read"
	HostWrite     = "host:write"
	UserRead      = "user:read"
	// UserAdmin manages users, roles, role bindings and other users'
	// tokens: whoever holds it can grant themselves anything, so it is
	// as strong as "*".
	UserAdmin = "user:admin"
	// TokenSelf manages the caller's own API tokens.
	TokenSelf   = "token:self"
	AuditRead   = "audit:read"
	MetricsRead = "metrics:read"
	// EnvironmentRead reads the domain's environments: their values and
	// the names of their secrets, never a secret's value.
	EnvironmentRead  = "environment:read"
	EnvironmentWrite = "environment:write"
	// SecretWrite sets and unsets the secrets of environments. Nothing
	// reads them back.
	SecretWrite = "secret:write"
	// TrustRead and TrustWrite concern the other domains whose packages
	// this one accepts.
	TrustRead  = "trust:read"
	TrustWrite = "trust:write"
	// BackupCreate takes a backup of the whole domain: every record,
	// password and token hashes and sealed secrets included (never the
	// keys), so only a domain-scoped binding grants it.
	BackupCreate = "backup:create"

	// Any grants every permission; "resource:*" grants every permission
	// of one resource.
	Any = "*"
)

// All lists every permission, sorted.
var All = []string{
	AuditRead,
	BackupCreate,
	DeploymentCreate, DeploymentRead,
	DraftRead, DraftWrite,
	EnvironmentRead, EnvironmentWrite,
	GroupRead, GroupWrite,
	HostRead, HostWrite,
	InstanceOperate, InstanceRead, InstanceWrite,
	MetricsRead,
	SecretWrite,
	SettingsWrite,
	TokenSelf,
	TrustRead, TrustWrite,
	UserAdmin, UserRead,
}

// class says which bindings can grant a permission of a resource.
type class int

const (
	// classGroup permissions concern one group: any binding whose scope
	// covers the group grants them.
	classGroup class = iota + 1
	// classDomain permissions concern the whole domain (hosts are shared
	// by groups, users and the audit log span them, environments and
	// trusted domains are the domain's settings), so only a domain-scoped
	// binding grants them; otherwise a binding on one group would leak
	// into the others.
	classDomain
	// classSelf permissions concern only the caller, so any binding
	// grants them: a user bound to one group must still be able to rotate
	// their own tokens.
	classSelf
)

var resources = map[string]class{
	"group":       classGroup,
	"draft":       classGroup,
	"deployment":  classGroup,
	"instance":    classGroup,
	"metrics":     classGroup,
	"settings":    classGroup,
	"host":        classDomain,
	"user":        classDomain,
	"audit":       classDomain,
	"environment": classDomain,
	"secret":      classDomain,
	"trust":       classDomain,
	"backup":      classDomain,
	"token":       classSelf,
}

func classOf(perm string) class {
	resource, _, _ := strings.Cut(perm, ":")
	return resources[resource]
}

// GroupScoped reports whether perm (or "resource:*") concerns a group, so
// that a binding scoped to that group can grant it. It is false for "*",
// which spans both kinds, and for unknown permissions.
func GroupScoped(perm string) bool {
	return ValidPermission(perm) && perm != Any && classOf(perm) == classGroup
}

// ValidPermission reports whether perm may appear in a role: a listed
// permission, "*" or "resource:*" for a known resource.
func ValidPermission(perm string) bool {
	if perm == Any || slices.Contains(All, perm) {
		return true
	}
	resource, ok := strings.CutSuffix(perm, ":*")
	return ok && resources[resource] != 0
}

// grants reports whether a role permission, possibly a wildcard, grants
// the concrete permission perm.
func grants(rolePerm, perm string) bool {
	if rolePerm == Any || rolePerm == perm {
		return true
	}
	resource, ok := strings.CutSuffix(rolePerm, ":*")
	return ok && strings.HasPrefix(perm, resource+":")
}
