package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// CreateUser implements store.Store.
func (p *PG) CreateUser(ctx context.Context, u store.User) (out store.User, err error) {
	err = p.tx(ctx, func(tx pgx.Tx) error {
		out, err = createUser(ctx, tx, u)
		return err
	})
	return out, err
}

func createUser(ctx context.Context, tx pgx.Tx, u store.User) (store.User, error) {
	if err := need("user", u.Name); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = stamp(u.CreatedAt)
	doc, err := encode(u)
	if err != nil {
		return store.User{}, err
	}
	if err := insert(ctx, tx, "user", u.Name, "INSERT INTO users VALUES ($1, $2)", u.Name, doc); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// GetUser implements store.Store.
func (p *PG) GetUser(ctx context.Context, name string) (store.User, error) {
	return getNamed[store.User](ctx, p, "users", "name", "user", name)
}

// ListUsers implements store.Store.
func (p *PG) ListUsers(ctx context.Context) ([]store.User, error) {
	return listDocs[store.User](ctx, p.pool, "SELECT doc FROM users ORDER BY name")
}

// UpdateUser implements store.Store.
func (p *PG) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	return updateNamed(ctx, p, "users", "name", "user", u.Name, func(cur *store.User) error {
		cur.PasswordHash = u.PasswordHash
		cur.Disabled = u.Disabled
		return nil
	})
}

// DeleteUser implements store.Store: the user's bindings go with it (ON
// DELETE CASCADE), its tokens stay, revoked.
func (p *PG) DeleteUser(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "users", "name", "user", name); err != nil {
			return err
		}
		err := modifyAll(ctx, tx, "tokens", "id", "user_name", name, func(t *store.Token) bool {
			if t.Revoked {
				return false
			}
			t.Revoked = true
			return true
		})
		if err != nil {
			return fmt.Errorf("revoke the tokens of user %q: %w", name, err)
		}
		return deleteRow(ctx, tx, "users", "name", "user", name)
	})
}

// CreateRole implements store.Store.
func (p *PG) CreateRole(ctx context.Context, r store.Role) (out store.Role, err error) {
	err = p.tx(ctx, func(tx pgx.Tx) error {
		out, err = createRole(ctx, tx, r)
		return err
	})
	return out, err
}

func createRole(ctx context.Context, tx pgx.Tx, r store.Role) (store.Role, error) {
	if err := need("role", r.Name); err != nil {
		return store.Role{}, err
	}
	doc, err := encode(r)
	if err != nil {
		return store.Role{}, err
	}
	if err := insert(ctx, tx, "role", r.Name, "INSERT INTO roles VALUES ($1, $2)", r.Name, doc); err != nil {
		return store.Role{}, err
	}
	return r, nil
}

// GetRole implements store.Store.
func (p *PG) GetRole(ctx context.Context, name string) (store.Role, error) {
	return getNamed[store.Role](ctx, p, "roles", "name", "role", name)
}

// ListRoles implements store.Store.
func (p *PG) ListRoles(ctx context.Context) ([]store.Role, error) {
	return listDocs[store.Role](ctx, p.pool, "SELECT doc FROM roles ORDER BY name")
}

// UpdateRole implements store.Store.
func (p *PG) UpdateRole(ctx context.Context, r store.Role) (store.Role, error) {
	_, err := updateNamed(ctx, p, "roles", "name", "role", r.Name, func(cur *store.Role) error {
		*cur = r
		return nil
	})
	if err != nil {
		return store.Role{}, err
	}
	return r, nil
}

// DeleteRole implements store.Store.
func (p *PG) DeleteRole(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "roles", "name", "role", name); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM role_bindings WHERE role_name = $1", name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("role %q is bound to %d users: %w", name, n, store.ErrInUse)
		}
		return deleteRow(ctx, tx, "roles", "name", "role", name)
	})
}

// CreateRoleBinding implements store.Store.
func (p *PG) CreateRoleBinding(ctx context.Context, rb store.RoleBinding) (out store.RoleBinding, err error) {
	err = p.tx(ctx, func(tx pgx.Tx) error {
		out, err = createRoleBinding(ctx, tx, rb)
		return err
	})
	return out, err
}

func createRoleBinding(ctx context.Context, tx pgx.Tx, rb store.RoleBinding) (store.RoleBinding, error) {
	if !rb.Scope.Valid() {
		return store.RoleBinding{}, fmt.Errorf("binding of role %q to user %q: scope must be exactly one of domain, groups, selector: %w", rb.Role, rb.User, store.ErrInvalid)
	}
	if rb.ID == "" {
		rb.ID = newID()
	}
	rb.CreatedAt = stamp(rb.CreatedAt)
	doc, err := encode(rb)
	if err != nil {
		return store.RoleBinding{}, err
	}
	var taken bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM role_bindings WHERE id = $1)", rb.ID).Scan(&taken); err != nil {
		return store.RoleBinding{}, err
	}
	if taken {
		return store.RoleBinding{}, fmt.Errorf("role binding %q: %w", rb.ID, store.ErrExists)
	}
	if err := lockShare(ctx, tx, "users", "user", rb.User); err != nil {
		return store.RoleBinding{}, err
	}
	if err := lockShare(ctx, tx, "roles", "role", rb.Role); err != nil {
		return store.RoleBinding{}, err
	}
	err = insert(ctx, tx, "role binding", rb.ID, "INSERT INTO role_bindings VALUES ($1, $2, $3, $4)", rb.ID, rb.User, rb.Role, doc)
	if err != nil {
		return store.RoleBinding{}, err
	}
	return rb, nil
}

// GetRoleBinding implements store.Store.
func (p *PG) GetRoleBinding(ctx context.Context, id string) (store.RoleBinding, error) {
	return getNamed[store.RoleBinding](ctx, p, "role_bindings", "id", "role binding", id)
}

// ListRoleBindings implements store.Store.
func (p *PG) ListRoleBindings(ctx context.Context, user string) ([]store.RoleBinding, error) {
	return listDocs[store.RoleBinding](ctx, p.pool, "SELECT doc FROM role_bindings WHERE $1 = '' OR user_name = $1 ORDER BY id", user)
}

// DeleteRoleBinding implements store.Store.
func (p *PG) DeleteRoleBinding(ctx context.Context, id string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		return deleteRow(ctx, tx, "role_bindings", "id", "role binding", id)
	})
}

// CreateToken implements store.Store.
func (p *PG) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = stamp(t.CreatedAt)
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = t.ExpiresAt.UTC()
	}
	if !t.LastUsedAt.IsZero() {
		t.LastUsedAt = t.LastUsedAt.UTC()
	}
	doc, err := encode(t)
	if err != nil {
		return store.Token{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)", t.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("token %q: %w", t.ID, store.ErrExists)
		}
		if err := lockShare(ctx, tx, "users", "user", t.User); err != nil {
			return err
		}
		return insert(ctx, tx, "token", t.ID, "INSERT INTO tokens VALUES ($1, $2, $3)", t.ID, t.User, doc)
	})
	if err != nil {
		return store.Token{}, err
	}
	return t, nil
}

// GetToken implements store.Store.
func (p *PG) GetToken(ctx context.Context, id string) (store.Token, error) {
	return getNamed[store.Token](ctx, p, "tokens", "id", "token", id)
}

// ListTokens implements store.Store.
func (p *PG) ListTokens(ctx context.Context, user string) ([]store.Token, error) {
	return listDocs[store.Token](ctx, p.pool, "SELECT doc FROM tokens WHERE $1 = '' OR user_name = $1 ORDER BY id", user)
}

// RevokeToken implements store.Store.
func (p *PG) RevokeToken(ctx context.Context, id string) error {
	_, err := updateNamed(ctx, p, "tokens", "id", "token", id, func(t *store.Token) error {
		t.Revoked = true
		return nil
	})
	return err
}

// TouchToken implements store.Store.
func (p *PG) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := updateNamed(ctx, p, "tokens", "id", "token", id, func(t *store.Token) error {
		t.LastUsedAt = at.UTC()
		return nil
	})
	return err
}

// AppendAudit implements store.Store. Taking the next number locks the
// counter row until the commit: entries are numbered without gaps and
// commit in the order of their numbers.
func (p *PG) AppendAudit(ctx context.Context, e store.AuditEntry) (out store.AuditEntry, err error) {
	err = p.tx(ctx, func(tx pgx.Tx) error {
		out, err = appendAudit(ctx, tx, e)
		return err
	})
	return out, err
}

func appendAudit(ctx context.Context, tx pgx.Tx, e store.AuditEntry) (store.AuditEntry, error) {
	e.Time = stamp(e.Time)
	if err := tx.QueryRow(ctx, "UPDATE audit_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq").Scan(&e.Seq); err != nil {
		return store.AuditEntry{}, fmt.Errorf("number audit entry: %w", err)
	}
	doc, err := encode(e)
	if err != nil {
		return store.AuditEntry{}, err
	}
	_, err = tx.Exec(ctx, "INSERT INTO audit VALUES ($1, $2, $3, $4, $5, $6)",
		e.Seq, e.Time.UnixNano(), auditKey(e.User), auditKey(e.Action), auditKey(e.Group), doc)
	if err != nil {
		return store.AuditEntry{}, err
	}
	return e, nil
}

// auditKey is how an audit entry's user, action and group are kept in
// the columns the filters compare: PostgreSQL's text holds no NUL, and an
// audit entry must be kept whatever a client sent (a failed login's user
// name), so NUL is escaped, injectively, as \0 (and \ as \\). The
// document keeps the exact values.
func auditKey(s string) string {
	if !strings.ContainsAny(s, "\\\x00") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "\x00", `\0`)
}

// ListAudit implements store.Store.
func (p *PG) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.User != "" {
		add("user_name = $%d", auditKey(f.User))
	}
	if f.Action != "" {
		add("action = $%d", auditKey(f.Action))
	}
	if f.Group != "" {
		add("group_name = $%d", auditKey(f.Group))
	}
	if !f.Since.IsZero() {
		add("at_ns >= $%d", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add("at_ns < $%d", f.Until.UnixNano())
	}
	if f.Before != 0 {
		add("seq < $%d", f.Before)
	}
	sql := "SELECT doc FROM audit"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY seq DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		sql += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	return listDocs[store.AuditEntry](ctx, p.pool, sql, args...)
}
