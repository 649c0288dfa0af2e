package nodemanager

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/pubseal"
)

// The fallback is the object storage where the domain's admin nodes
// publish each group's current signed deployment (admin run --publish-to,
// docs/object-storage.md). A node manager turns to it for a group only
// while no admin node answers and it has no deployment of that group
// stored: a gateway it starts then has something to serve. What it
// fetches must open with the domain's publish keys the admin nodes sent
// (sealed for this domain and group, package pubseal), be signed by the
// domain's key, of the domain and the group, and not older than what the
// node has; the gateways check the signature again. Once an admin node answers, its deployments take over.

// fallbackTimeout bounds one read of a published deployment, retries
// included.
const fallbackTimeout = 30 * time.Second

// maxFallbackObject bounds what is read of a published object.
const maxFallbackObject = 64 << 20

// errFallbackRefused marks a published deployment that does not pass the
// checks, as opposed to one that could not be read.
var errFallbackRefused = errors.New("published deployment refused")

// unreachable says whether err means that no admin node could be asked,
// rather than one answering with a refusal.
func unreachable(err error) bool {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Status >= 500
	}
	return true
}

// fetchFallback reads the group's published deployment and checks it.
func (a *agent) fetchFallback(ctx context.Context, group string) (*deploy.Deployment, error) {
	ctx, cancel := context.WithTimeout(ctx, fallbackTimeout)
	defer cancel()
	key := "groups/" + group + "/current"
	r, err := a.fallback.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	obj, err := io.ReadAll(io.LimitReader(r, maxFallbackObject))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", key, a.fallback, err)
	}
	raws, err := a.state.PublishKeys()
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: %s in %s: this node has no publish key to open it with: an admin node sends the domain's keys with the host's instances, and none has answered this node since it joined", errFallbackRefused, key, a.fallback)
	}
	keys, err := pubseal.ParseKeys(raws)
	if err != nil {
		return nil, fmt.Errorf("publish keys in node.db: %w", err)
	}
	plain, _, err := pubseal.Open(keys, a.id.Domain, group, obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %s in %s: %w", errFallbackRefused, key, a.fallback, err)
	}
	var d deploy.Deployment
	if err := json.Unmarshal(plain, &d); err != nil {
		return nil, fmt.Errorf("%w: %s in %s is not a deployment: %w", errFallbackRefused, key, a.fallback, err)
	}
	stored, err := a.state.Deployment(group)
	if err != nil {
		return nil, err
	}
	if err := a.checkFallback(&d, group, stored); err != nil {
		return nil, fmt.Errorf("%w: %s in %s: %w", errFallbackRefused, key, a.fallback, err)
	}
	return &d, nil
}

// checkFallback returns why d must not be given to the gateways of group
// on a node that has stored (nil: none). The signature comes first: until
// it verifies, no field of d can be trusted.
func (a *agent) checkFallback(d *deploy.Deployment, group string, stored *deploy.Deployment) error {
	key, err := deploy.ParsePublicKey(a.id.SigningKey)
	if err != nil {
		return fmt.Errorf("the domain's key in node.json: %w", err)
	}
	if err := d.Verify(ed25519.PublicKey(key), nil); err != nil {
		return err
	}
	switch {
	case d.Domain != a.id.Domain:
		return fmt.Errorf("deployment of domain %q, this node is of %q", d.Domain, a.id.Domain)
	case d.Group != group:
		return fmt.Errorf("deployment of group %q, wanted for %q", d.Group, group)
	case d.Number == 0:
		return errors.New("deployment has number 0 (numbers start at 1)")
	case stored != nil && d.Number < stored.Number:
		return fmt.Errorf("deployment %d is older than the stored %d", d.Number, stored.Number)
	}
	return nil
}

// tryFallback gives the group's gateways its published deployment when
// the node has none stored, and says which number it stored (0: none).
// lastErr is the outcome of the previous try, so that a failure is logged
// when it changes rather than at every retry.
func (a *agent) tryFallback(ctx context.Context, group string, lastErr *string) uint64 {
	if a.fallback == nil {
		return 0
	}
	if d, err := a.state.Deployment(group); err != nil || d != nil {
		return 0
	}
	d, err := a.fetchFallback(ctx, group)
	if err != nil {
		if ctx.Err() == nil && err.Error() != *lastErr {
			*lastErr = err.Error()
			if errors.Is(err, errFallbackRefused) {
				a.log.Error("no admin node reachable and the published deployment is refused; the group's gateways stay without one", "group", group, "error", err)
			} else {
				a.log.Warn("no admin node reachable and the published deployment cannot be read; retrying", "group", group, "error", err)
			}
		}
		return 0
	}
	*lastErr = ""
	stored, err := a.state.PutDeployment(d)
	if err != nil {
		a.log.Error("store deployment", "group", group, "error", err)
		return 0
	}
	if stored {
		a.log.Warn("no admin node reachable: deployment taken from object storage", "group", group, "number", d.Number, "checksum", d.Checksum, "bucket", a.fallback.String())
		a.localIndex.Add(1)
		a.changed.notify()
	}
	return d.Number
}
