package store

import (
	"context"
	"fmt"
)

// DomainSeed is what a new domain starts with: its record, and the
// roles, users, role bindings and audit entries made with it.
type DomainSeed struct {
	Domain   Domain
	Roles    []Role
	Users    []User
	Bindings []RoleBinding
	Audit    []AuditEntry
}

// Seed writes seed into s record by record, in the order of its fields
// (a binding after its user and role). It is not atomic: it is for a
// store nobody uses yet, such as a bbolt file under a staging name; the
// PostgreSQL store writes a seed in one transaction (pgstore's
// CreateDomain).
func Seed(ctx context.Context, s Store, seed DomainSeed) error {
	if err := s.InitDomain(ctx, seed.Domain); err != nil {
		return fmt.Errorf("store domain: %w", err)
	}
	for _, r := range seed.Roles {
		if _, err := s.CreateRole(ctx, r); err != nil {
			return fmt.Errorf("create role %s: %w", r.Name, err)
		}
	}
	for _, u := range seed.Users {
		if _, err := s.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("create user %s: %w", u.Name, err)
		}
	}
	for _, rb := range seed.Bindings {
		if _, err := s.CreateRoleBinding(ctx, rb); err != nil {
			return fmt.Errorf("bind %s to %s: %w", rb.User, rb.Role, err)
		}
	}
	for _, e := range seed.Audit {
		if _, err := s.AppendAudit(ctx, e); err != nil {
			return fmt.Errorf("audit %s: %w", e.Action, err)
		}
	}
	return nil
}
