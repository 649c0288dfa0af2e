package adminnode

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// The built-in roles of a domain made by an older version get the
// permissions added since, with an audit entry.
func TestRunBringsBuiltInRolesUpToDate(t *testing.T) {
	dir := t.TempDir()
	initDomain(t, dir, "acme", "")
	ctx := context.Background()
	var want store.Role
	for _, r := range rbac.BuiltInRoles() {
		if r.Name == rbac.RoleOperator {
			want = r
		}
	}
	withStore(t, dir, func(s store.Store) {
		old := want
		old.Description = "Manages and restarts instances; cannot change configuration."
		old.Permissions = slices.DeleteFunc(slices.Clone(old.Permissions), func(p string) bool {
			return strings.HasPrefix(p, "environment:") || strings.HasPrefix(p, "trust:")
		})
		if _, err := s.UpdateRole(ctx, old); err != nil {
			t.Fatal(err)
		}
	})
	_, stop := startRun(t, RunOptions{DataDir: dir})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	withStore(t, dir, func(s store.Store) {
		r, err := s.GetRole(ctx, rbac.RoleOperator)
		if err != nil || !slices.Equal(r.Permissions, want.Permissions) || !r.BuiltIn {
			t.Errorf("operator after start: %+v, %v", r, err)
		}
		entries, err := s.ListAudit(ctx, store.AuditFilter{Action: "role.upgrade"})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].User != "system" || entries[0].Target != "role/operator" ||
			entries[0].Detail != "added environment:read,environment:write,trust:read; description updated" {
			t.Errorf("audit %+v", entries)
		}
	})
	// Up to date: nothing more at the next start.
	_, stop = startRun(t, RunOptions{DataDir: dir})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	withStore(t, dir, func(s store.Store) {
		if entries, _ := s.ListAudit(ctx, store.AuditFilter{Action: "role.upgrade"}); len(entries) != 1 {
			t.Errorf("%d role upgrades after a second start", len(entries))
		}
	})
}
