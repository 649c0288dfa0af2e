package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pubseal"
)

// DefaultConfigPoll is how often a gateway started with a configuration
// URL reads the published deployment again.
const DefaultConfigPoll = 30 * time.Second

// maxPublished bounds what is read of a published object.
const maxPublished = 64 << 20

// fetchTimeout bounds one read of the published deployment, retries
// included.
const fetchTimeout = time.Minute

// published is the object storage source of a standalone gateway: the
// signed deployment an admin node publishes for its group
// (docs/object-storage.md), read at start and every poll interval, and
// applied only when it opens with the domain's publish keys (sealed for
// the domain and the gateway's group), verifies with the domain key, is
// of the gateway's group and is not older than what it serves.
type published struct {
	bucket objstore.Bucket
	key    string
	name   string // the bucket and key, without credentials, for logs and /status
	pub    ed25519.PublicKey
	every  time.Duration
	domain string
	keys   []*pubseal.Key
	group  string

	mu          sync.Mutex
	lastRefused *RefusedDeployment
	// refusedSum identifies the object refused last (refusedBefore).
	refusedSum string
	contact    ObjectStorageReport
}

// ObjectStorageReport is how the reads of the published deployment go.
type ObjectStorageReport struct {
	URL       string    `json:"url"`
	LastFetch time.Time `json:"last_fetch,omitzero"`
	// LastError is the error of the last read if it failed.
	LastError string `json:"last_error,omitempty"`
}

func newPublished(opts Options) (*published, error) {
	if len(opts.DomainKey) != ed25519.PublicKeySize {
		return nil, errors.New("a gateway that starts from object storage needs the domain's deployment key")
	}
	if opts.Group == "" {
		return nil, errors.New("a gateway that starts from object storage needs its group")
	}
	if opts.PublishDomain == "" || len(opts.PublishKeys) == 0 {
		return nil, errors.New("a gateway that starts from object storage needs the domain's publish keys: published deployments are sealed")
	}
	bucket, key, err := objstore.OpenObject(context.Background(), opts.ConfigURL, opts.ObjectStorage)
	if err != nil {
		return nil, fmt.Errorf("configuration URL: %w", err)
	}
	p := &published{bucket: bucket, key: key, pub: opts.DomainKey, every: opts.ConfigPoll,
		domain: opts.PublishDomain, keys: opts.PublishKeys, group: opts.Group}
	if p.every <= 0 {
		p.every = DefaultConfigPoll
	}
	p.name = bucket.String() + ", object " + key
	p.contact.URL = p.name
	return p, nil
}

// errSealed marks a published object that was read but does not open
// with the gateway's publish keys: refused, as a forged deployment is.
var errSealed = errors.New("published object refused")

// fetch reads the published deployment and opens it.
func (p *published) fetch(ctx context.Context) (*deploy.Deployment, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	r, err := p.bucket.Get(ctx, p.key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	obj, err := io.ReadAll(io.LimitReader(r, maxPublished))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.name, err)
	}
	plain, _, err := pubseal.Open(p.keys, p.domain, p.group, obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %s, opened with --config-key as group %s of domain %s: %w", errSealed, p.name, p.group, p.domain, err)
	}
	var d deploy.Deployment
	if err := json.Unmarshal(plain, &d); err != nil {
		return nil, fmt.Errorf("%w: %s is not a published deployment: %w", errSealed, p.name, err)
	}
	return &d, nil
}

func (p *published) fetched(err error) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.contact.LastError
	p.contact.LastFetch = time.Now()
	p.contact.LastError = ""
	if err != nil {
		p.contact.LastError = err.Error()
	}
	return (was == "") != (err == nil)
}

func (p *published) refused(number uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastRefused = &RefusedDeployment{Number: number, Reason: err.Error(), At: time.Now()}
}

func (p *published) status() (*RefusedDeployment, ObjectStorageReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastRefused, p.contact
}

// refusedBefore says whether sum (objectSum of a deployment, or why an
// object does not open) is the object refused last: an object left as it
// is is not judged (and logged) again at every poll.
func (p *published) refusedBefore(sum string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusedSum == sum
}

func (p *published) markRefused(sum string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusedSum = sum
}

func objectSum(d *deploy.Deployment) string {
	return fmt.Sprintf("%s %d %s %x", d.Group, d.Number, d.Checksum, d.Signature)
}

// pollPublished reads the published deployment once and applies it if it
// is new and acceptable. It says whether the read worked.
func (g *Gateway) pollPublished(ctx context.Context) bool {
	p := g.published
	d, err := p.fetch(ctx)
	if ctx.Err() != nil {
		return false
	}
	if errors.Is(err, errSealed) {
		// Read, but not to be applied: as a forged deployment, refused,
		// logged once, and read again at the poll interval.
		p.fetched(nil)
		if p.refusedBefore(err.Error()) {
			return true
		}
		p.markRefused(err.Error())
		p.refused(0, err)
		g.logger.Error("published deployment refused; serving the current configuration", "url", p.name, "error", err)
		return true
	}
	switch changed := p.fetched(err); {
	case err != nil && changed:
		g.logger.Warn("cannot read the published deployment; serving the current configuration and retrying", "url", p.name, "error", err)
	case err != nil:
		g.logger.Debug("published deployment still unreadable", "error", err)
	case changed:
		g.logger.Info("published deployment readable again", "url", p.name)
	}
	if err != nil {
		return false
	}
	if d.Number == g.deployment.Load() {
		if cur := g.proxy.Current(); cur != nil && cur.Checksum == d.Checksum {
			return true
		}
	}
	if p.refusedBefore(objectSum(d)) {
		return true
	}
	if err := g.receiveFrom(d, p.pub, "object storage", p.refused); err != nil {
		p.markRefused(objectSum(d))
		g.logger.Error("published deployment refused", "url", p.name, "number", d.Number, "error", err)
		return true
	}
	g.logger.Info("deployment applied from object storage", "url", p.name, "number", d.Number, "checksum", d.Checksum)
	return true
}

// followPublished polls the published deployment until ctx is done:
// every poll interval, sooner while reads fail. ok says whether the read
// at start worked.
func (g *Gateway) followPublished(ctx context.Context, ok bool) {
	bo := backoff{}
	for {
		wait := g.published.every
		if !ok {
			wait = min(bo.next(), wait)
		} else {
			bo.reset()
		}
		if !pause.For(ctx, wait) {
			return
		}
		ok = g.pollPublished(ctx)
	}
}
