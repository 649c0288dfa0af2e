package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pubseal"
)

// Key is where a group's current deployment is published in the bucket.
func Key(group string) string { return "groups/" + group + "/current" }

// maxObject bounds what is read back from the bucket: a deployment is a
// configuration, not a backup.
const maxObject = 64 << 20

// Source is what the publisher reads of the domain.
type Source interface {
	// Groups lists the domain's groups.
	Groups(ctx context.Context) ([]string, error)
	// CurrentDeployment is a group's current deployment, signed, as node
	// managers receive it; nil when it has none.
	CurrentDeployment(ctx context.Context, group string) (*deploy.Deployment, error)
	// Changed is closed at the next change of the store.
	Changed() <-chan struct{}
	// PublishKeys are the domain's publish keys, the one sealing first.
	PublishKeys(ctx context.Context) ([]*pubseal.Key, error)
}

// Lease says whether this admin node holds the background lease.
type Lease interface{ Held() bool }

// Publisher publishes a domain's current deployments to a bucket.
type Publisher struct {
	bucket objstore.Bucket
	src    Source
	log    hclog.Logger
	now    func() time.Time

	// published maps a group to the checksum and number it has in the
	// bucket as this node last wrote or read it; cleared to read the
	// bucket again.
	published map[string]published

	attempts    *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	pending     prometheus.Gauge

	mu      sync.Mutex
	lastErr error
}

type published struct {
	number   uint64
	checksum string
	// key is the ID of the publish key the object is sealed with.
	key string
}

// New returns a publisher of src's deployments to bucket.
func New(bucket objstore.Bucket, src Source, logger hclog.Logger) *Publisher {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Publisher{
		bucket:    bucket,
		src:       src,
		log:       logger,
		now:       time.Now,
		published: map[string]published{},
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_admin_publish_total",
			Help: "Deployments this admin node wrote to object storage (or deleted there, for a deleted group), by result.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_admin_publish_last_success_timestamp_seconds",
			Help: "When this admin node last found every group's published deployment matching the store (0: never).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_admin_publish_pending_groups",
			Help: "Groups whose published deployment does not match the store after this admin node's last attempt.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (p *Publisher) Describe(ch chan<- *prometheus.Desc) {
	p.attempts.Describe(ch)
	p.lastSuccess.Describe(ch)
	p.pending.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Publisher) Collect(ch chan<- prometheus.Metric) {
	p.attempts.Collect(ch)
	p.lastSuccess.Collect(ch)
	p.pending.Collect(ch)
}

// LastError is the error of the last pass, nil when it succeeded.
func (p *Publisher) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// maxRetryWait bounds the wait before a failed pass is tried again.
const maxRetryWait = 30 * time.Second

// Run publishes while lease is held until ctx ends: after every change
// of the store, and every interval reading back the bucket. A change of
// any kind wakes it, as it wakes each node manager's blocking query, and
// a pass re-reads each group's current deployment as such a query does:
// publishing costs the admin node what one more node manager watching
// every group costs. A pass that
// failed is tried again sooner, backing off from a second to
// maxRetryWait (or interval, if shorter).
func (p *Publisher) Run(ctx context.Context, lease Lease, interval time.Duration) {
	held := false
	full := true
	retry := time.Duration(0)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		changed := p.src.Changed()
		var again <-chan time.Time
		switch {
		case !lease.Held():
			if held {
				p.log.Info("background lease lost; another admin node publishes deployments")
			}
			held = false
		default:
			if !held {
				// Another admin node published meanwhile, or none did:
				// what the bucket holds is read again.
				full, held = true, true
			}
			err := p.Sync(ctx, full)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				retry = min(max(2*retry, time.Second), interval, maxRetryWait)
				again = time.After(retry)
			} else {
				retry, full = 0, false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
			full = true
		case <-again:
		}
	}
}

// Sync makes the bucket hold each group's current deployment, and no
// deployment of a group that no longer exists. With full it reads back
// what the bucket holds; else it trusts what this publisher wrote last.
// It tries every group and returns the errors joined.
func (p *Publisher) Sync(ctx context.Context, full bool) error {
	err := p.sync(ctx, full)
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
	if err != nil {
		p.log.Error("publish deployments to object storage; gateways that start from it may get an older one", "bucket", p.bucket.String(), "error", err)
		return err
	}
	p.lastSuccess.Set(float64(p.now().UnixMilli()) / 1e3)
	return nil
}

func (p *Publisher) sync(ctx context.Context, full bool) error {
	if full {
		clear(p.published)
	}
	groups, err := p.src.Groups(ctx)
	if err != nil {
		p.pending.Set(0)
		return fmt.Errorf("list groups: %w", err)
	}
	keys, err := p.src.PublishKeys(ctx)
	if err == nil && len(keys) == 0 {
		err = errors.New("the domain has no publish key")
	}
	if err != nil {
		p.pending.Set(0)
		return fmt.Errorf("publish keys: %w", err)
	}
	var errs []error
	pending := 0
	exists := make(map[string]bool, len(groups))
	for _, g := range groups {
		exists[g] = true
		if err := p.publish(ctx, g, keys); err != nil {
			pending++
			errs = append(errs, fmt.Errorf("group %s: %w", g, err))
		}
	}
	if full {
		n, err := p.removeDeleted(ctx, exists)
		pending += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	p.pending.Set(float64(pending))
	return errors.Join(errs...)
}

// publish writes group's current deployment, sealed with the first of
// keys, unless the bucket holds it so. An object sealed with an older key
// is written again: a rotation retires the previous key once every object
// is sealed with the new one.
func (p *Publisher) publish(ctx context.Context, group string, keys []*pubseal.Key) error {
	d, err := p.src.CurrentDeployment(ctx, group)
	if err != nil {
		return fmt.Errorf("read current deployment: %w", err)
	}
	if d == nil {
		return nil
	}
	want := published{number: d.Number, checksum: d.Checksum, key: keys[0].ID}
	if have, ok := p.published[group]; ok && have == want {
		return nil
	}
	if _, ok := p.published[group]; !ok {
		if have, err := p.read(ctx, d.Domain, group, keys); err == nil && have == want {
			p.published[group] = have
			return nil
		}
	}
	plain, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode deployment %d: %w", d.Number, err)
	}
	body, err := pubseal.Seal(keys[0], d.Domain, group, plain)
	if err != nil {
		return fmt.Errorf("seal deployment %d: %w", d.Number, err)
	}
	if err := p.bucket.Put(ctx, Key(group), bytes.NewReader(body)); err != nil {
		p.attempts.WithLabelValues("error").Inc()
		delete(p.published, group)
		return fmt.Errorf("publish deployment %d: %w", d.Number, err)
	}
	p.attempts.WithLabelValues("ok").Inc()
	p.published[group] = want
	p.log.Info("deployment published", "group", group, "number", d.Number, "key", Key(group), "sealed_with", want.key, "bucket", p.bucket.String())
	return nil
}

// read returns what the bucket holds for group of domain; anything
// unreadable, in clear or that does not open with keys is an error, and
// is written over.
func (p *Publisher) read(ctx context.Context, domain, group string, keys []*pubseal.Key) (published, error) {
	r, err := p.bucket.Get(ctx, Key(group))
	if err != nil {
		return published{}, err
	}
	defer r.Close()
	obj, err := io.ReadAll(io.LimitReader(r, maxObject))
	if err != nil {
		return published{}, err
	}
	plain, key, err := pubseal.Open(keys, domain, group, obj)
	if err != nil {
		return published{}, err
	}
	var d deploy.Deployment
	if err := json.Unmarshal(plain, &d); err != nil {
		return published{}, err
	}
	return published{number: d.Number, checksum: d.Checksum, key: key}, nil
}

// removeDeleted deletes the published deployments of groups that no
// longer exist, and returns how many it could not delete.
func (p *Publisher) removeDeleted(ctx context.Context, exists map[string]bool) (int, error) {
	objs, err := p.bucket.List(ctx, "groups/")
	if err != nil {
		return 0, fmt.Errorf("list published deployments: %w", err)
	}
	var errs []error
	for _, o := range objs {
		group, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "groups/"), "/current")
		if !ok || strings.Contains(group, "/") || exists[group] {
			continue
		}
		if err := p.bucket.Delete(ctx, o.Key); err != nil && !errors.Is(err, objstore.ErrNotExist) {
			p.attempts.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("delete deployment of deleted group %s: %w", group, err))
			continue
		}
		p.attempts.WithLabelValues("ok").Inc()
		p.log.Info("published deployment of a deleted group removed", "group", group, "key", o.Key)
	}
	return len(errs), errors.Join(errs...)
}
