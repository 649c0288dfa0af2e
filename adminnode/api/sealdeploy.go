package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// A deployment made from a configuration with placeholders holds their
// values, environment secrets included, in its Config. Those are sealed
// with the settings key before they reach the store, so that a reader of
// the database sees no secret there either; the Template (placeholders
// unresolved), the checksum and the signature stay in clear. Deployments
// without placeholders hold nothing of the settings and are stored as
// they are.

// deploymentPlace is the "environment" part of the place a deployment's
// configuration is sealed for (see gossipPlace).
const deploymentPlace = "\x00deployment"

// sealingStore is the store as the API's deployment code sees it:
// deployments' resolved configurations sealed on the way in and opened on
// the way out. It is a field of its own (Server.deps) rather than a
// wrapper of Server.store, so that what else the store implements stays
// visible there.
type sealingStore struct {
	store.Store
	key *seal.Key
}

func sealedDeploymentName(group string, number uint64) string {
	return group + "\x00" + strconv.FormatUint(number, 10)
}

func (s sealingStore) seal(d store.Deployment, group string, number uint64) store.Deployment {
	if len(d.Template) > 0 {
		d.Config = s.key.Seal(deploymentPlace, sealedDeploymentName(group, number), d.Config)
	}
	return d
}

// open opens what seal made. A configuration that is JSON already
// (canonical encoding starts with '{', a sealed one with its version byte)
// was stored by a gatehouse that did not seal them, and is returned as it
// is.
func (s sealingStore) open(d store.Deployment) (store.Deployment, error) {
	if len(d.Template) == 0 || len(d.Config) > 0 && d.Config[0] == '{' {
		return d, nil
	}
	c, err := s.key.Open(deploymentPlace, sealedDeploymentName(d.Group, d.Number), d.Config)
	if err != nil {
		return store.Deployment{}, fmt.Errorf("deployment %d of group %s: open its configuration with the settings key (settings.key replaced?): %w", d.Number, d.Group, err)
	}
	d.Config = c
	return d, nil
}

// GetDeployment implements store.Store.
func (s sealingStore) GetDeployment(ctx context.Context, group string, number uint64) (store.Deployment, error) {
	d, err := s.Store.GetDeployment(ctx, group, number)
	if err != nil {
		return d, err
	}
	return s.open(d)
}

// ListDeployments implements store.Store.
func (s sealingStore) ListDeployments(ctx context.Context, group string) ([]store.Deployment, error) {
	ds, err := s.Store.ListDeployments(ctx, group)
	if err != nil {
		return ds, err
	}
	for i := range ds {
		if ds[i], err = s.open(ds[i]); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// LatestDeployment implements store.Store.
func (s sealingStore) LatestDeployment(ctx context.Context, group string) (store.Deployment, error) {
	d, err := s.Store.LatestDeployment(ctx, group)
	if err != nil {
		return d, err
	}
	return s.open(d)
}

// Freeze implements store.Store.
func (s sealingStore) Freeze(ctx context.Context, group string, expectedDraftVersion uint64, build func(d store.Draft, number uint64) (store.Deployment, error)) (store.Deployment, error) {
	d, err := s.Store.Freeze(ctx, group, expectedDraftVersion, func(draft store.Draft, number uint64) (store.Deployment, error) {
		dep, err := build(draft, number)
		if err != nil {
			return dep, err
		}
		return s.seal(dep, group, number), nil
	})
	if err != nil {
		return d, err
	}
	return s.open(d)
}

// Rollback implements store.Store.
func (s sealingStore) Rollback(ctx context.Context, group string, to uint64, build func(src store.Deployment, number uint64) (store.Deployment, error)) (store.Deployment, error) {
	d, err := s.Store.Rollback(ctx, group, to, func(src store.Deployment, number uint64) (store.Deployment, error) {
		src, err := s.open(src)
		if err != nil {
			return store.Deployment{}, err
		}
		dep, err := build(src, number)
		if err != nil {
			return dep, err
		}
		return s.seal(dep, group, number), nil
	})
	if err != nil {
		return d, err
	}
	return s.open(d)
}
