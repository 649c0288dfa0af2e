package rbac

import (
	"maps"
	"slices"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Authorizer answers what one user may do. It is immutable, so one value
// may serve concurrent requests; build a new one when the user's bindings
// or roles change.
//
// A binding grants its role's permissions as follows:
//   - group-scoped permissions (group, draft, deployment, instance,
//     metrics) on the groups its scope covers; a domain-level check of
//     one (g nil, e.g. listing every group's metrics at once) needs a
//     domain-scoped binding;
//   - domain-only permissions (host, user, audit, environment, secret,
//     trust) only when its scope is the domain, whatever group is asked
//     about;
//   - token:self whatever its scope.
type Authorizer struct {
	grants []grant
}

// grant is one binding with its role's wildcards expanded.
type grant struct {
	scope store.Scope
	perms map[string]bool
}

// New builds the Authorizer of a user from that user's bindings (callers
// pass store.ListRoleBindings(user); the user is not checked) and the roles
// they may name. A binding naming an unknown role is ignored rather than
// refused: roles can be deleted only when unbound, so it is a race with a
// concurrent change, and denying that binding's permissions is the safe
// outcome. Role permissions that are not valid match nothing. The
// arguments are copied.
func New(roles []store.Role, bindings []store.RoleBinding) *Authorizer {
	byName := make(map[string]store.Role, len(roles))
	for _, r := range roles {
		byName[r.Name] = r
	}
	a := &Authorizer{}
	for _, b := range bindings {
		r, ok := byName[b.Role]
		if !ok || !b.Scope.Valid() {
			continue
		}
		g := grant{
			scope: store.Scope{
				Domain:   b.Scope.Domain,
				Groups:   slices.Clone(b.Scope.Groups),
				Selector: maps.Clone(b.Scope.Selector),
			},
			perms: map[string]bool{},
		}
		for _, p := range All {
			for _, rp := range r.Permissions {
				if ValidPermission(rp) && grants(rp, p) {
					g.perms[p] = true
				}
			}
		}
		a.grants = append(a.grants, g)
	}
	return a
}

// Allowed reports whether the user holds perm on g, or at the domain level
// when g is nil. perm must be one of All: wildcards and unknown
// permissions are denied, so that a typo in a handler fails closed.
func (a *Authorizer) Allowed(perm string, g *store.Group) bool {
	c := classOf(perm)
	for _, gr := range a.grants {
		if !gr.perms[perm] {
			continue
		}
		switch {
		case c == classSelf,
			gr.scope.Domain,
			c == classGroup && g != nil && ScopeMatches(gr.scope, *g):
			return true
		}
	}
	return false
}

// MayCreateGroup reports whether some group the user could create would
// be one on which they hold perm: a domain or label-selector binding
// covers groups yet to exist (with the right labels), a binding naming
// groups covers those of its names not in existing. It decides whether
// to offer creating a group; the creation itself is checked with Allowed
// on the group as it will be.
func (a *Authorizer) MayCreateGroup(perm string, existing []string) bool {
	for _, gr := range a.grants {
		if !gr.perms[perm] || !gr.scope.Valid() {
			continue
		}
		if gr.scope.Domain || len(gr.scope.Groups) == 0 {
			return true
		}
		for _, name := range gr.scope.Groups {
			if !slices.Contains(existing, name) {
				return true
			}
		}
	}
	return false
}

// FilterGroups returns the groups on which the user holds perm, in their
// order: lists show what the user may see instead of refusing. The result
// is never nil, so that it encodes as an empty JSON list.
func (a *Authorizer) FilterGroups(perm string, groups []store.Group) []store.Group {
	out := []store.Group{}
	for _, g := range groups {
		if a.Allowed(perm, &g) {
			out = append(out, g)
		}
	}
	return out
}

// Permissions lists, sorted, the permissions the user holds on g, or at
// the domain level when g is nil, with wildcards expanded. The result is
// never nil.
func (a *Authorizer) Permissions(g *store.Group) []string {
	out := []string{}
	for _, p := range All {
		if a.Allowed(p, g) {
			out = append(out, p)
		}
	}
	return out
}
