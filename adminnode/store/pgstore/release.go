package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// PutRelease implements store.Store.
func (p *PG) PutRelease(ctx context.Context, r store.Release, binary []byte) (store.Release, error) {
	if err := store.ValidReleaseVersion(r.Version); err != nil {
		return store.Release{}, err
	}
	r.UploadedAt = stamp(r.UploadedAt)
	doc, err := encode(r)
	if err != nil {
		return store.Release{}, err
	}
	err = p.tx(ctx, func(tx pgx.Tx) error {
		return insert(ctx, tx, "release", r.Version, "INSERT INTO releases VALUES ($1, $2, $3)", r.Version, binary, doc)
	})
	if err != nil {
		return store.Release{}, err
	}
	return r, nil
}

// GetRelease implements store.Store.
func (p *PG) GetRelease(ctx context.Context, version string) (store.Release, error) {
	return mustDoc[store.Release](ctx, p.pool, "release", version, "SELECT doc FROM releases WHERE version = $1", version)
}

// GetReleaseBinary implements store.Store.
func (p *PG) GetReleaseBinary(ctx context.Context, version string) ([]byte, error) {
	var b []byte
	err := p.pool.QueryRow(ctx, "SELECT content FROM releases WHERE version = $1", version).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("release %q: %w", version, store.ErrNotFound)
	}
	return b, err
}

// ListReleases implements store.Store.
func (p *PG) ListReleases(ctx context.Context) ([]store.Release, error) {
	return listDocs[store.Release](ctx, p.pool, "SELECT doc FROM releases ORDER BY version")
}

// DeleteRelease implements store.Store. The groups are locked (SHARE
// mode against their updates) so that no group pins the release between
// the check and the delete.
func (p *PG) DeleteRelease(ctx context.Context, version string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		if err := lock(ctx, tx, "releases", "version", "release", version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE groups IN SHARE MODE"); err != nil {
			return err
		}
		groups, err := listDocs[store.Group](ctx, tx, "SELECT doc FROM groups ORDER BY name")
		if err != nil {
			return err
		}
		if g := store.PinnedBy(groups, version); g != "" {
			return fmt.Errorf("release %q is the gateway release of group %q: %w", version, g, store.ErrInUse)
		}
		return deleteRow(ctx, tx, "releases", "version", "release", version)
	})
}

// UpdateGroupGateway implements store.Store.
func (p *PG) UpdateGroupGateway(ctx context.Context, group string, change func(gw *store.GroupGateway) error) (store.Group, error) {
	var out store.Group
	err := p.tx(ctx, func(tx pgx.Tx) (err error) {
		out, err = modify(ctx, tx, "groups", "name", "group", group, func(cur *store.Group) error {
			gw := cur.Gateway
			if err := change(&gw); err != nil {
				return err
			}
			if gw.Version != "" && gw.Version != cur.Gateway.Version {
				// FOR SHARE: the release cannot be deleted before commit.
				var one int
				err := tx.QueryRow(ctx, "SELECT 1 FROM releases WHERE version = $1 FOR SHARE", gw.Version).Scan(&one)
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("release %q: %w", gw.Version, store.ErrNotFound)
				}
				if err != nil {
					return err
				}
			}
			cur.Gateway = gw
			return nil
		})
		return err
	})
	return out, err
}
