package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

func userOut(u store.User) apitypes.User {
	return apitypes.User{Name: u.Name, Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

func (s *Server) listUsers(q *request) (any, error) {
	users, err := s.store.ListUsers(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.User, len(users))
	for i, u := range users {
		out[i] = userOut(u)
	}
	return out, nil
}

func (s *Server) createUser(q *request) (any, error) {
	var in apitypes.UserCreate
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "user/" + in.Name
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if in.Name == "system" {
		return nil, badRequest("name", `name "system" is reserved for the admin node's own audit entries`)
	}
	if err := auth.ValidatePassword(in.Password); err != nil {
		return nil, badRequest("password", "%v", err)
	}
	hash, err := auth.HashPassword(in.Password, s.cost)
	if err != nil {
		return nil, err
	}
	u, err := s.store.CreateUser(q.ctx, store.User{Name: in.Name, PasswordHash: hash})
	if err != nil {
		return nil, err
	}
	return userOut(u), nil
}

func (s *Server) getUser(q *request) (any, error) {
	u, err := s.store.GetUser(q.ctx, q.vars["user"])
	if err != nil {
		return nil, err
	}
	return userOut(u), nil
}

// updateUser sets a password or the disabled flag. Disabling revokes the
// user's tokens: a disabled user is refused anyway, but re-enabling must
// not bring old, possibly leaked tokens back.
func (s *Server) updateUser(q *request) (any, error) {
	var in apitypes.UserUpdate
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	name := q.vars["user"]
	q.auditTarget = "user/" + name
	u, err := s.store.GetUser(q.ctx, name)
	if err != nil {
		return nil, err
	}
	if in.Password != nil {
		if err := auth.ValidatePassword(*in.Password); err != nil {
			return nil, badRequest("password", "%v", err)
		}
		if u.PasswordHash, err = auth.HashPassword(*in.Password, s.cost); err != nil {
			return nil, err
		}
		q.auditDetail = "password set"
	}
	disable := in.Disabled != nil && *in.Disabled && !u.Disabled
	if in.Disabled != nil {
		if *in.Disabled && name == q.who.user {
			return nil, badRequest("disabled", "you cannot disable yourself")
		}
		u.Disabled = *in.Disabled
		q.auditDetail = strconv.Quote(fmt.Sprintf("disabled=%t", u.Disabled))
	}
	u, err = s.store.UpdateUser(q.ctx, u)
	if err != nil {
		return nil, err
	}
	if disable {
		toks, err := s.store.ListTokens(q.ctx, name)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			if !t.Revoked {
				if err := s.store.RevokeToken(q.ctx, t.ID); err != nil {
					return nil, err
				}
			}
		}
	}
	return userOut(u), nil
}

func (s *Server) deleteUser(q *request) (any, error) {
	name := q.vars["user"]
	q.auditTarget = "user/" + name
	if name == q.who.user {
		return nil, badRequest("user", "you cannot delete yourself")
	}
	return nil, s.store.DeleteUser(q.ctx, name)
}

func roleOut(r store.Role) apitypes.Role {
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return apitypes.Role{Name: r.Name, Permissions: perms, BuiltIn: r.BuiltIn, Description: r.Description}
}

func (s *Server) listRoles(q *request) (any, error) {
	roles, err := s.store.ListRoles(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Role, len(roles))
	for i, r := range roles {
		out[i] = roleOut(r)
	}
	return out, nil
}

func (s *Server) getRole(q *request) (any, error) {
	r, err := s.store.GetRole(q.ctx, q.vars["role"])
	if err != nil {
		return nil, err
	}
	return roleOut(r), nil
}

func checkRole(in apitypes.Role) error {
	if err := checkName("name", in.Name); err != nil {
		return err
	}
	if len(in.Permissions) == 0 {
		return badRequest("permissions", "a role needs at least one permission")
	}
	for i, p := range in.Permissions {
		if !rbac.ValidPermission(p) {
			return badRequest(fmt.Sprintf("permissions[%d]", i), "permissions[%d]: unknown permission %q (GET /openapi.json or docs/rbac.md list them)", i, p)
		}
	}
	return nil
}

func (s *Server) createRole(q *request) (any, error) {
	var in apitypes.Role
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "role/" + in.Name
	if in.BuiltIn {
		return nil, badRequest("built_in", "built-in roles are made by the admin node only")
	}
	if err := checkRole(in); err != nil {
		return nil, err
	}
	r, err := s.store.CreateRole(q.ctx, store.Role{Name: in.Name, Permissions: in.Permissions, Description: in.Description})
	if err != nil {
		return nil, err
	}
	return roleOut(r), nil
}

// customRole refuses changes to the built-in roles, which every domain
// relies on meaning the same thing.
func (s *Server) customRole(q *request) (store.Role, error) {
	name := q.vars["role"]
	q.auditTarget = "role/" + name
	r, err := s.store.GetRole(q.ctx, name)
	if err != nil {
		return r, err
	}
	if r.BuiltIn {
		return r, conflict("role %q is built in and cannot be changed or deleted: create a custom role instead", name)
	}
	return r, nil
}

func (s *Server) updateRole(q *request) (any, error) {
	var in apitypes.Role
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	cur, err := s.customRole(q)
	if err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = cur.Name
	}
	if in.Name != cur.Name {
		return nil, badRequest("name", "name %q differs from the role in the path %q: roles cannot be renamed", in.Name, cur.Name)
	}
	if err := checkRole(in); err != nil {
		return nil, err
	}
	r, err := s.store.UpdateRole(q.ctx, store.Role{Name: cur.Name, Permissions: in.Permissions, Description: in.Description})
	if err != nil {
		return nil, err
	}
	return roleOut(r), nil
}

func (s *Server) deleteRole(q *request) (any, error) {
	r, err := s.customRole(q)
	if err != nil {
		return nil, err
	}
	return nil, s.store.DeleteRole(q.ctx, r.Name)
}

func bindingOut(b store.RoleBinding) apitypes.RoleBinding {
	return apitypes.RoleBinding{ID: b.ID, User: b.User, Role: b.Role, CreatedAt: b.CreatedAt,
		Scope: apitypes.Scope{Domain: b.Scope.Domain, Groups: b.Scope.Groups, Selector: b.Scope.Selector}}
}

func (s *Server) listBindings(q *request) (any, error) {
	bs, err := s.store.ListRoleBindings(q.ctx, q.r.URL.Query().Get("user"))
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.RoleBinding, len(bs))
	for i, b := range bs {
		out[i] = bindingOut(b)
	}
	return out, nil
}

func (s *Server) createBinding(q *request) (any, error) {
	var in apitypes.RoleBinding
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "user/" + in.User
	if in.ID != "" {
		return nil, badRequest("id", "id is assigned by the admin node")
	}
	kinds := 0
	for _, set := range []bool{in.Scope.Domain, len(in.Scope.Groups) > 0, len(in.Scope.Selector) > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, badRequest("scope", "scope must set exactly one of domain, groups and selector")
	}
	if err := checkLabels("scope.selector", in.Scope.Selector); err != nil {
		return nil, err
	}
	for i, g := range in.Scope.Groups {
		if err := checkName(fmt.Sprintf("scope.groups[%d]", i), g); err != nil {
			return nil, err
		}
	}
	b, err := s.store.CreateRoleBinding(q.ctx, store.RoleBinding{User: in.User, Role: in.Role,
		Scope: store.Scope{Domain: in.Scope.Domain, Groups: in.Scope.Groups, Selector: in.Scope.Selector}})
	if err != nil {
		return nil, err
	}
	q.auditDetail = fmt.Sprintf("binding %s: role %s", b.ID, b.Role)
	return bindingOut(b), nil
}

func (s *Server) deleteBinding(q *request) (any, error) {
	id := q.vars["id"]
	q.auditTarget = "binding/" + id
	return nil, s.store.DeleteRoleBinding(q.ctx, id)
}

func auditOut(e store.AuditEntry) apitypes.AuditEntry {
	return apitypes.AuditEntry{Seq: e.Seq, Time: e.Time, User: e.User, Action: e.Action, Target: e.Target,
		Group: e.Group, Result: e.Result, Status: e.Status, Detail: e.Detail, RequestID: e.RequestID, Source: e.Source}
}

// Audit pages are bounded so that one request cannot read the whole log.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func (s *Server) listAudit(q *request) (any, error) {
	v := q.r.URL.Query()
	f := store.AuditFilter{User: v.Get("user"), Action: v.Get("action"), Group: v.Get("group"), Limit: defaultAuditLimit}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := v.Get(t.name); s != "" {
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, badRequest(t.name, "%s must be an RFC 3339 time such as 2026-11-23T10:00:00Z, not %q", t.name, s)
			}
			*t.to = at
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return nil, badRequest("limit", "limit must be 1 to %d, not %q", maxAuditLimit, s)
		}
		f.Limit = n
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, badRequest("before", "before must be a sequence number, not %q", s)
		}
		f.Before = n
	}
	entries, err := s.store.ListAudit(q.ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.AuditEntry, len(entries))
	for i, e := range entries {
		out[i] = auditOut(e)
	}
	return out, nil
}
