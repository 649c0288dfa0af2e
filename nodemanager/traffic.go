package nodemanager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/metrics/traffic"
	"github.com/gatehouse/gatehouse/nodemanager/state"
)

// Defaults of the traffic collection (docs/metrics.md).
const (
	DefaultTrafficInterval      = 10 * time.Second
	DefaultTrafficSpoolMaxBytes = 64 << 20
	DefaultTrafficSpoolMaxAge   = 24 * time.Hour
)

const (
	// maxReadTimeout bounds a reading of a gateway's /traffic: a gateway
	// on the same host answers in milliseconds, and one that does not must
	// not hold the collection up.
	maxReadTimeout = 5 * time.Second
	// maxSnapshotBytes bounds a snapshot read or pushed: far above what
	// the routes and consumers of a configuration make.
	maxSnapshotBytes = 64 << 20
	// sendTimeout bounds one batch sent to the admin node.
	sendTimeout = 30 * time.Second
	// maxBatchSeries splits a collection with more series into several
	// batches: at most a few hundred bytes a series, a batch stays well
	// within the admin node's limit on a request body (8 MiB), past which
	// it would be refused and lost.
	maxBatchSeries = 2000
)

// trafficSender is what the collector needs of the admin node's client.
type trafficSender interface {
	SendTraffic(ctx context.Context, b traffic.Batch) (traffic.Ack, error)
}

// trafficTarget is an instance whose traffic the node manager counts.
type trafficTarget struct {
	name, group string
	// url is its status port's /traffic; empty when it is not read: no
	// process runs, or the instance is no longer desired and only its last
	// push is still to come.
	url string
}

// seriesOwner is the group and instance a series' increments belong to.
type seriesOwner struct{ group, instance string }

// collector turns the gateways' traffic snapshots into numbered batches of
// increments, spools each in node.db before it is sent, and sends them to
// the admin node in order, deleting each only once acknowledged
// (docs/metrics.md).
type collector struct {
	node    string
	log     hclog.Logger
	state   *state.Store
	admin   trafficSender
	metrics *metrics.Node
	limits  state.SpoolLimits
	// targets lists the instances the node knows: desired, or still
	// running.
	targets     func() []trafficTarget
	http        *http.Client
	readTimeout time.Duration
	now         func() time.Time
	// spooled wakes the sender when a batch is spooled.
	spooled chan struct{}

	mu sync.Mutex
	// last is each instance's last reading; unstored, the instances whose
	// last reading is newer than the one in node.db.
	last     map[string]*traffic.Snapshot
	unstored map[string]bool
	// replaced is each instance's last reading of the process before the
	// current one: during a restart without downtime both processes serve
	// for a while, and a reading (or the last push) of the old one may
	// come after one of the new.
	replaced map[string]*traffic.Snapshot
	// pending holds the increments read since the last batch.
	pending map[seriesOwner]map[traffic.Key]*traffic.Counts
	// since is when the increments in pending started.
	since time.Time
}

type collectorOptions struct {
	Node     string
	Logger   hclog.Logger
	State    *state.Store
	Admin    trafficSender
	Metrics  *metrics.Node
	Limits   state.SpoolLimits
	Targets  func() []trafficTarget
	Interval time.Duration
}

// newCollector resumes from node.db: the readings the spooled and sent
// batches were computed up to, so that a gateway that kept serving while
// the node manager restarted is neither counted twice nor lost.
func newCollector(o collectorOptions) (*collector, error) {
	readings, err := o.State.TrafficReadings()
	if err != nil {
		return nil, err
	}
	sp, err := o.State.SpoolState()
	if err != nil {
		return nil, fmt.Errorf("read the traffic spool: %w", err)
	}
	c := &collector{
		node: o.Node, log: o.Logger, state: o.State, admin: o.Admin, metrics: o.Metrics, limits: o.Limits, targets: o.Targets,
		http: &http.Client{}, readTimeout: min(o.Interval, maxReadTimeout), now: time.Now, spooled: make(chan struct{}, 1),
		last: readings, unstored: map[string]bool{}, replaced: map[string]*traffic.Snapshot{}, pending: map[seriesOwner]map[traffic.Key]*traffic.Counts{},
		since: sp.LastEnd,
	}
	if c.since.IsZero() {
		c.since = c.now()
	}
	c.metrics.TrafficSpool(sp.Batches, sp.Bytes, sp.Dropped)
	return c, nil
}

// run collects every interval until ctx is done, then spools what the
// gateways pushed since the last collection.
func (c *collector) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.cut()
			return
		case <-t.C:
			c.collect(ctx)
		}
	}
}

// collect reads every running gateway's /traffic, spools the increments
// as one batch, and forgets the instances the node no longer has.
func (c *collector) collect(ctx context.Context) {
	targets := c.targets()
	var wg sync.WaitGroup
	for _, t := range targets {
		if t.url == "" {
			continue
		}
		wg.Go(func() {
			snap, err := c.read(ctx, t.url)
			if err == nil {
				err = c.observe(t, snap)
			}
			c.metrics.TrafficRead(err == nil)
			if err != nil && ctx.Err() == nil {
				// A gateway starting or stopping does not answer: the next
				// reading has its counts.
				c.log.Debug("read traffic of instance", "instance", t.name, "error", err)
			}
		})
	}
	wg.Wait()
	if !c.cut() {
		sp, dropped, err := c.state.PruneSpool(c.limits, c.now())
		if err != nil {
			c.log.Error("prune the traffic spool", "error", err)
		} else {
			c.spoolChanged(sp, dropped)
		}
	}
	c.forget(targets)
}

func (c *collector) read(ctx context.Context, url string) (*traffic.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, c.readTimeout)
	defer cancel()
	return readSnapshot(ctx, c.http, url)
}

var errUnknownInstance = errors.New("unknown instance")

// push takes the last snapshot of a stopping gateway as the instance's
// reading. The instance may no longer be desired (it is being removed),
// so its group is the one the node still knows it by.
func (c *collector) push(name string, snap *traffic.Snapshot) error {
	for _, t := range c.targets() {
		if t.name == name {
			return c.observe(t, snap)
		}
	}
	c.mu.Lock()
	prev := c.last[name]
	c.mu.Unlock()
	if prev == nil {
		return fmt.Errorf("%w %s", errUnknownInstance, name)
	}
	return c.observe(trafficTarget{name: name, group: prev.Group}, snap)
}

// observe adds the increments from the instance's last reading to snap.
func (c *collector) observe(t trafficTarget, snap *traffic.Snapshot) error {
	if snap.Instance != t.name || snap.Group != t.group {
		return fmt.Errorf("snapshot of instance %q of group %q, want %q of %q", snap.Instance, snap.Group, t.name, t.group)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.last[t.name]
	if r := c.replaced[t.name]; r != nil && prev != nil && prev.Boot != snap.Boot && r.Boot == snap.Boot {
		if inc, reset := traffic.Delta(r, snap); !reset {
			c.addLocked(snap.Group, t.name, inc)
			c.replaced[t.name] = snap
		}
		return nil
	}
	inc, reset := traffic.Delta(prev, snap)
	if reset && prev.Boot == snap.Boot {
		// The gateway's readings never go down: this one was taken before
		// the last, which overtook it (a stopping gateway's push while it
		// was being read). Its counts are in the last already.
		return nil
	}
	if reset {
		c.log.Info("gateway restarted: its traffic counts start again from zero", "instance", t.name, "boot", snap.Boot, "previous_boot", prev.Boot)
		c.replaced[t.name] = prev
	}
	c.addLocked(snap.Group, t.name, inc)
	c.last[t.name] = snap
	c.unstored[t.name] = true
	return nil
}

// addLocked adds increments of an instance to the pending batch. c.mu is
// held.
func (c *collector) addLocked(group, instance string, inc []traffic.Series) {
	if len(inc) > 0 {
		o := seriesOwner{group: group, instance: instance}
		series := c.pending[o]
		if series == nil {
			series = map[traffic.Key]*traffic.Counts{}
			c.pending[o] = series
		}
		for i := range inc {
			if sum := series[inc[i].Key]; sum != nil {
				sum.Add(&inc[i].Counts)
			} else {
				series[inc[i].Key] = &inc[i].Counts
			}
		}
	}
}

// cut spools the pending increments as the next batch (several past
// maxBatchSeries series), with the readings they go up to, and reports
// whether it did. An interval without traffic makes no batch. A batch that
// cannot be written stays pending for the next.
func (c *collector) cut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now()
	if len(c.pending) == 0 {
		c.since = end
		return false
	}
	var all []traffic.DomainSeries
	for o, series := range c.pending {
		for k, counts := range series {
			all = append(all, traffic.DomainSeries{Group: o.group, Instance: o.instance, Series: traffic.Series{Key: k, Counts: *counts}})
		}
	}
	slices.SortFunc(all, func(x, y traffic.DomainSeries) int {
		return cmp.Or(cmp.Compare(x.Group, y.Group), cmp.Compare(x.Instance, y.Instance), cmp.Compare(x.Service, y.Service),
			cmp.Compare(x.Route, y.Route), cmp.Compare(x.Consumer, y.Consumer), cmp.Compare(x.Class, y.Class))
	})
	var batches []*traffic.Batch
	for part := range slices.Chunk(all, maxBatchSeries) {
		batches = append(batches, &traffic.Batch{Node: c.node, Start: c.since, End: end, Series: part})
	}
	readings := make([]*traffic.Snapshot, 0, len(c.unstored))
	for name := range c.unstored {
		readings = append(readings, c.last[name])
	}
	sp, dropped, err := c.state.SpoolBatches(batches, readings, c.limits)
	if err != nil {
		c.log.Error("spool traffic batch; its counts wait for the next collection", "error", err)
		return false
	}
	clear(c.pending)
	clear(c.unstored)
	c.since = end
	c.spoolChanged(sp, dropped)
	select {
	case c.spooled <- struct{}{}:
	default:
	}
	return true
}

// forget drops the readings of instances the node no longer has, once
// their increments are spooled (a reading taken since the last batch
// waits for the next): a new instance of the same name starts from a new
// boot anyway.
func (c *collector) forget(targets []trafficTarget) {
	known := make(map[string]bool, len(targets))
	for _, t := range targets {
		known[t.name] = true
	}
	var gone []string
	c.mu.Lock()
	for name := range c.last {
		if !known[name] && !c.unstored[name] {
			gone = append(gone, name)
			delete(c.last, name)
		}
	}
	c.mu.Unlock()
	if len(gone) > 0 {
		if err := c.state.ForgetReadings(gone...); err != nil {
			c.log.Warn("forget the traffic readings of removed instances", "instances", gone, "error", err)
		}
	}
}

func (c *collector) spoolChanged(sp state.Spool, dropped int) {
	c.metrics.TrafficSpool(sp.Batches, sp.Bytes, sp.Dropped)
	if dropped > 0 {
		c.log.Warn("traffic spool past its bounds: oldest batches dropped, their counts are lost",
			"dropped", dropped, "dropped_since_join", sp.Dropped, "spooled", sp.Batches, "bytes", sp.Bytes,
			"max_bytes", c.limits.MaxBytes, "max_age", c.limits.MaxAge)
	}
}

// send sends the spooled batches to the admin node, oldest first, one at a
// time, until ctx is done. A batch leaves the spool when the admin node
// acknowledges it; a failed send is retried with backoff, which is safe
// because the admin node stores each (node, seq) once.
func (c *collector) send(ctx context.Context) {
	for failures := 0; ctx.Err() == nil; {
		b, err := c.state.OldestBatch()
		if err != nil {
			c.log.Error("read the traffic spool", "error", err)
			pause.For(ctx, 10*time.Second)
			continue
		}
		if b == nil {
			select {
			case <-ctx.Done():
				return
			case <-c.spooled:
			}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		ack, err := c.admin.SendTraffic(sctx, *b)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil && ack.Seq < b.Seq {
			err = fmt.Errorf("the admin node acknowledged batches up to %d, not batch %d", ack.Seq, b.Seq)
		}
		var apiErr *client.APIError
		switch {
		case err == nil:
			c.metrics.TrafficSent(metrics.SendOK)
			if failures > 0 {
				c.log.Info("traffic batches reach the admin node again", "seq", b.Seq)
			}
			failures = 0
			sp, err := c.state.AckBatches(ack.Seq)
			if err != nil {
				// Sent again: the admin node keeps it once.
				c.log.Error("delete acknowledged traffic batches", "seq", ack.Seq, "error", err)
				pause.For(ctx, time.Second)
				continue
			}
			c.metrics.TrafficSpool(sp.Batches, sp.Bytes, sp.Dropped)
			continue
		case errors.As(err, &apiErr) && refused(apiErr.Status):
			c.metrics.TrafficSent(metrics.SendRefused)
			sp, derr := c.state.DropBatch(b.Seq)
			if derr != nil {
				c.log.Error("drop refused traffic batch", "seq", b.Seq, "error", derr)
				pause.For(ctx, time.Second)
				continue
			}
			c.log.Error("the admin node refused a traffic batch: dropped, its counts are lost", "seq", b.Seq, "error", err,
				"dropped_since_join", sp.Dropped)
			c.metrics.TrafficSpool(sp.Batches, sp.Bytes, sp.Dropped)
			continue
		}
		c.metrics.TrafficSent(metrics.SendError)
		failures++
		if failures == 1 || failures%20 == 0 {
			c.log.Warn("send traffic batch: admin node unreachable; batches stay spooled", "seq", b.Seq, "error", err, "failures", failures)
		}
		pause.For(ctx, backoff(failures))
	}
}

// refused reports whether an answer of the admin node says that it will
// never store the batch, so that sending it again would block the batches
// behind it for nothing.
func refused(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity
}

// statusTrafficURL is the /traffic of a gateway whose status port listens
// on listen: a port on every address is read on loopback.
func statusTrafficURL(listen string) (string, error) {
	return statusURL(listen, "/traffic")
}
