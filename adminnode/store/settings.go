package store

import (
	"context"
	"fmt"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The domain's settings (schema version 5): the environments that
// placeholders of promoted configurations resolve against, their secrets,
// and the other domains whose packages this one accepts.

var (
	bucketEnvironments = []byte("environments")
	bucketSecrets      = []byte("environment_secrets")
	bucketTrusted      = []byte("trusted_domains")
)

// Environment is a named set of settings of the domain ("prod", "uat"):
// the values placeholders resolve to. Its secrets are kept apart (Secret),
// so that reading the values never touches them.
type Environment struct {
	Name      string            `json:"name"`
	Values    map[string]string `json:"values,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by,omitempty"`
	// Version is bumped by every change of Values, so that it can serve
	// as an ETag.
	Version uint64 `json:"version"`
}

// Secret is a write-only setting of an environment. Sealed is its value
// as the admin node encrypted it (adminnode/seal), opaque to the store:
// the store never holds a secret in clear.
type Secret struct {
	Environment string    `json:"environment"`
	Name        string    `json:"name"`
	Sealed      []byte    `json:"sealed"`
	SetAt       time.Time `json:"set_at"`
	SetBy       string    `json:"set_by,omitempty"`
}

// TrustedDomain is another domain whose packages this one accepts: those
// signed by PublicKey (ed25519) under Name.
type TrustedDomain struct {
	Name      string    `json:"name"`
	PublicKey []byte    `json:"public_key"`
	AddedAt   time.Time `json:"added_at"`
	AddedBy   string    `json:"added_by,omitempty"`
}

// ListEnvironments implements Store.
func (b *Bolt) ListEnvironments(ctx context.Context) ([]Environment, error) {
	return list[Environment](ctx, b, bucketEnvironments, nil)
}

// GetEnvironment implements Store.
func (b *Bolt) GetEnvironment(ctx context.Context, name string) (Environment, error) {
	var e Environment
	err := b.getNamed(ctx, bucketEnvironments, "environment", name, &e)
	return e, err
}

// environmentIn reads the environment name in tx; a missing one is
// Environment{Name: name}, Version 0.
func environmentIn(tx *bolt.Tx, name string) (Environment, error) {
	e := Environment{Name: name}
	_, err := get(tx.Bucket(bucketEnvironments), name, &e)
	return e, err
}

// createEnvironment stores a new, empty environment, at Version 1.
func createEnvironment(tx *bolt.Tx, name, by string) error {
	t := now()
	e := Environment{Name: name, CreatedAt: t, UpdatedAt: t, UpdatedBy: by, Version: 1}
	return put(tx.Bucket(bucketEnvironments), []byte(name), e)
}

// ChangeEnvironment is the read-modify-write of UpdateEnvironment, the
// same for every store: change edits e (stored as name, or new with
// version 0), which is then stamped (by, at) and given the next version.
func ChangeEnvironment(e Environment, name, by string, at time.Time, change func(e *Environment) error) (Environment, error) {
	// change gets its own map: a refused change must not leave its edits
	// in what the caller reads back.
	e.Values = maps.Clone(e.Values)
	if err := change(&e); err != nil {
		return Environment{}, err
	}
	if e.Version == 0 {
		e.CreatedAt = at
	}
	e.Name, e.UpdatedAt, e.UpdatedBy = name, at, by
	e.Version++
	if len(e.Values) == 0 {
		e.Values = nil
	}
	return e, nil
}

// UpdateEnvironment implements Store.
func (b *Bolt) UpdateEnvironment(ctx context.Context, name, by string, change func(e *Environment) error) (Environment, error) {
	if err := need("environment", name); err != nil {
		return Environment{}, err
	}
	var out Environment
	err := b.update(ctx, func(tx *bolt.Tx) error {
		e, err := environmentIn(tx, name)
		if err != nil {
			return err
		}
		if out, err = ChangeEnvironment(e, name, by, now(), change); err != nil {
			return err
		}
		return put(tx.Bucket(bucketEnvironments), []byte(name), out)
	})
	if err != nil {
		return Environment{}, err
	}
	return out, nil
}

// DeleteEnvironment implements Store.
func (b *Bolt) DeleteEnvironment(ctx context.Context, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketEnvironments, "environment", name); err != nil {
			return err
		}
		secrets := tx.Bucket(bucketSecrets)
		if secrets.Bucket([]byte(name)) != nil {
			if err := secrets.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketEnvironments).Delete([]byte(name))
	})
}

// PutSecret implements Store.
func (b *Bolt) PutSecret(ctx context.Context, s Secret) (Secret, error) {
	if err := need("environment", s.Environment); err != nil {
		return Secret{}, err
	}
	if err := need("secret", s.Name); err != nil {
		return Secret{}, err
	}
	if len(s.Sealed) == 0 {
		return Secret{}, fmt.Errorf("secret %q of environment %q has no value: %w", s.Name, s.Environment, ErrInvalid)
	}
	s.SetAt = stamp(s.SetAt)
	err := b.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEnvironments).Get([]byte(s.Environment)) == nil {
			if err := createEnvironment(tx, s.Environment, s.SetBy); err != nil {
				return err
			}
		}
		bk, err := tx.Bucket(bucketSecrets).CreateBucketIfNotExists([]byte(s.Environment))
		if err != nil {
			return err
		}
		return put(bk, []byte(s.Name), s)
	})
	if err != nil {
		return Secret{}, err
	}
	return s, nil
}

// ListSecrets implements Store.
func (b *Bolt) ListSecrets(ctx context.Context, env string) ([]Secret, error) {
	out := []Secret{}
	err := b.view(ctx, func(tx *bolt.Tx) error {
		names := []string{env}
		if env == "" {
			names = nil
			err := tx.Bucket(bucketEnvironments).ForEach(func(k, _ []byte) error {
				names = append(names, string(k))
				return nil
			})
			if err != nil {
				return err
			}
		} else if err := exists(tx, bucketEnvironments, "environment", env); err != nil {
			return err
		}
		for _, name := range names {
			bk := tx.Bucket(bucketSecrets).Bucket([]byte(name))
			if bk == nil {
				continue
			}
			secrets, err := all[Secret](bk, nil)
			if err != nil {
				return fmt.Errorf("secrets of environment %q: %w", name, err)
			}
			out = append(out, secrets...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSecret implements Store.
func (b *Bolt) DeleteSecret(ctx context.Context, env, name string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketEnvironments, "environment", env); err != nil {
			return err
		}
		bk := tx.Bucket(bucketSecrets).Bucket([]byte(env))
		if bk == nil || bk.Get([]byte(name)) == nil {
			return fmt.Errorf("secret %q of environment %q: %w", name, env, ErrNotFound)
		}
		return bk.Delete([]byte(name))
	})
}

// ListTrustedDomains implements Store.
func (b *Bolt) ListTrustedDomains(ctx context.Context) ([]TrustedDomain, error) {
	return list[TrustedDomain](ctx, b, bucketTrusted, nil)
}

// GetTrustedDomain implements Store.
func (b *Bolt) GetTrustedDomain(ctx context.Context, name string) (TrustedDomain, error) {
	var d TrustedDomain
	err := b.getNamed(ctx, bucketTrusted, "trusted domain", name, &d)
	return d, err
}

// PutTrustedDomain implements Store.
func (b *Bolt) PutTrustedDomain(ctx context.Context, d TrustedDomain) (TrustedDomain, error) {
	if err := need("trusted domain", d.Name); err != nil {
		return TrustedDomain{}, err
	}
	if len(d.PublicKey) == 0 {
		return TrustedDomain{}, fmt.Errorf("trusted domain %q has no public key: %w", d.Name, ErrInvalid)
	}
	d.AddedAt = stamp(d.AddedAt)
	err := b.update(ctx, func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketTrusted), []byte(d.Name), d)
	})
	if err != nil {
		return TrustedDomain{}, err
	}
	return d, nil
}

// DeleteTrustedDomain implements Store.
func (b *Bolt) DeleteTrustedDomain(ctx context.Context, name string) error {
	return b.deleteNamed(ctx, bucketTrusted, "trusted domain", name)
}
