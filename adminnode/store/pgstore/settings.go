package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// ListEnvironments implements store.Store.
func (p *PG) ListEnvironments(ctx context.Context) ([]store.Environment, error) {
	return listDocs[store.Environment](ctx, p.pool, "SELECT doc FROM environments ORDER BY name")
}

// GetEnvironment implements store.Store.
func (p *PG) GetEnvironment(ctx context.Context, name string) (store.Environment, error) {
	return getNamed[store.Environment](ctx, p, "environments", "name", "environment", name)
}

// putEnvironment writes e, creating or replacing its row.
func putEnvironment(ctx context.Context, tx pgx.Tx, e store.Environment) error {
	doc, err := encode(e)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO environments VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc`, e.Name, doc)
	return err
}

// lockEnvironment reads the environment name and locks it until the
// transaction ends; a missing one is Environment{Name: name}, Version 0,
// and concurrent creators are serialised by an advisory lock on its name.
func lockEnvironment(ctx context.Context, tx pgx.Tx, name string) (store.Environment, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('environment:' || $1, 0))", name); err != nil {
		return store.Environment{}, err
	}
	e, ok, err := getDoc[store.Environment](ctx, tx, "SELECT doc FROM environments WHERE name = $1 FOR UPDATE", name)
	if err != nil {
		return e, fmt.Errorf("environment %q: %w", name, err)
	}
	if !ok {
		e = store.Environment{Name: name}
	}
	return e, nil
}

// UpdateEnvironment implements store.Store.
func (p *PG) UpdateEnvironment(ctx context.Context, name, by string, change func(e *store.Environment) error) (store.Environment, error) {
	if err := need("environment", name); err != nil {
		return store.Environment{}, err
	}
	var out store.Environment
	err := p.tx(ctx, func(tx pgx.Tx) error {
		e, err := lockEnvironment(ctx, tx, name)
		if err != nil {
			return err
		}
		if out, err = store.ChangeEnvironment(e, name, by, now(), change); err != nil {
			return err
		}
		return putEnvironment(ctx, tx, out)
	})
	if err != nil {
		return store.Environment{}, err
	}
	return out, nil
}

// DeleteEnvironment implements store.Store; its secrets go with it (ON
// DELETE CASCADE).
func (p *PG) DeleteEnvironment(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		return deleteRow(ctx, tx, "environments", "name", "environment", name)
	})
}

// PutSecret implements store.Store.
func (p *PG) PutSecret(ctx context.Context, s store.Secret) (store.Secret, error) {
	if err := need("environment", s.Environment); err != nil {
		return store.Secret{}, err
	}
	if err := need("secret", s.Name); err != nil {
		return store.Secret{}, err
	}
	if len(s.Sealed) == 0 {
		return store.Secret{}, fmt.Errorf("secret %q of environment %q has no value: %w", s.Name, s.Environment, store.ErrInvalid)
	}
	s.SetAt = stamp(s.SetAt)
	doc, err := encode(s)
	if err != nil {
		return store.Secret{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		e, err := lockEnvironment(ctx, tx, s.Environment)
		if err != nil {
			return err
		}
		if e.Version == 0 {
			t := now()
			e = store.Environment{Name: s.Environment, CreatedAt: t, UpdatedAt: t, UpdatedBy: s.SetBy, Version: 1}
			if err := putEnvironment(ctx, tx, e); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO environment_secrets VALUES ($1, $2, $3)
			ON CONFLICT (environment, name) DO UPDATE SET doc = EXCLUDED.doc`, s.Environment, s.Name, doc)
		return err
	})
	if err != nil {
		return store.Secret{}, err
	}
	return s, nil
}

// ListSecrets implements store.Store.
func (p *PG) ListSecrets(ctx context.Context, env string) ([]store.Secret, error) {
	var out []store.Secret
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		if env != "" {
			if err := exists(ctx, tx, "environments", "name", "environment", env); err != nil {
				return err
			}
		}
		out, err = listDocs[store.Secret](ctx, tx, `SELECT doc FROM environment_secrets
			WHERE $1 = '' OR environment = $1 ORDER BY environment, name`, env)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSecret implements store.Store.
func (p *PG) DeleteSecret(ctx context.Context, env, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := exists(ctx, tx, "environments", "name", "environment", env); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM environment_secrets WHERE environment = $1 AND name = $2", env, name)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("secret %q of environment %q: %w", name, env, store.ErrNotFound)
		}
		return err
	})
}

// ListTrustedDomains implements store.Store.
func (p *PG) ListTrustedDomains(ctx context.Context) ([]store.TrustedDomain, error) {
	return listDocs[store.TrustedDomain](ctx, p.pool, "SELECT doc FROM trusted_domains ORDER BY name")
}

// GetTrustedDomain implements store.Store.
func (p *PG) GetTrustedDomain(ctx context.Context, name string) (store.TrustedDomain, error) {
	return getNamed[store.TrustedDomain](ctx, p, "trusted_domains", "name", "trusted domain", name)
}

// PutTrustedDomain implements store.Store.
func (p *PG) PutTrustedDomain(ctx context.Context, d store.TrustedDomain) (store.TrustedDomain, error) {
	if err := need("trusted domain", d.Name); err != nil {
		return store.TrustedDomain{}, err
	}
	if len(d.PublicKey) == 0 {
		return store.TrustedDomain{}, fmt.Errorf("trusted domain %q has no public key: %w", d.Name, store.ErrInvalid)
	}
	d.AddedAt = stamp(d.AddedAt)
	doc, err := encode(d)
	if err != nil {
		return store.TrustedDomain{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO trusted_domains VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc`, d.Name, doc)
		return err
	})
	if err != nil {
		return store.TrustedDomain{}, err
	}
	return d, nil
}

// DeleteTrustedDomain implements store.Store.
func (p *PG) DeleteTrustedDomain(ctx context.Context, name string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		return deleteRow(ctx, tx, "trusted_domains", "name", "trusted domain", name)
	})
}
