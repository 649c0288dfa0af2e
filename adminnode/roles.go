package adminnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// syncBuiltInRoles brings the built-in roles stored by an older gatehouse
// to this version's definitions, so that their holders get the
// permissions added since (environment:read for viewers, say). Each
// change is in the audit log, by user "system". The API refuses to change
// built-in roles, so a stored one differs only by being older.
func syncBuiltInRoles(ctx context.Context, s store.Store, now time.Time, logger hclog.Logger) error {
	for _, want := range rbac.BuiltInRoles() {
		have, err := s.GetRole(ctx, want.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read role %s: %w", want.Name, err)
		}
		added, removed := permissionChanges(have.Permissions, want.Permissions)
		if !have.BuiltIn || added == nil && removed == nil && have.Description == want.Description {
			continue
		}
		if _, err := s.UpdateRole(ctx, want); err != nil {
			return fmt.Errorf("update built-in role %s: %w", want.Name, err)
		}
		var detail []string
		if added != nil {
			detail = append(detail, "added "+strings.Join(added, ","))
		}
		if removed != nil {
			detail = append(detail, "removed "+strings.Join(removed, ","))
		}
		if have.Description != want.Description {
			detail = append(detail, "description updated")
		}
		logger.Info("built-in role brought up to date", "role", want.Name, "added", added, "removed", removed)
		_, err = s.AppendAudit(ctx, store.AuditEntry{Time: now, User: "system", Action: "role.upgrade", Target: "role/" + want.Name,
			Result: store.AuditOK, Detail: strings.Join(detail, "; "), Source: "local"})
		if err != nil {
			return fmt.Errorf("audit the update of built-in role %s: %w", want.Name, err)
		}
	}
	return nil
}

// permissionChanges says which permissions of want are not in have, and
// which of have are not in want, sorted; nil when none.
func permissionChanges(have, want []string) (added, removed []string) {
	for _, p := range want {
		if !slices.Contains(have, p) {
			added = append(added, p)
		}
	}
	for _, p := range have {
		if !slices.Contains(want, p) {
			removed = append(removed, p)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}
