package upstream

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// retireGrace is how long a pool no longer in the configuration is left
// alone before its idle connections are closed: requests of the previous
// configuration may still be starting on it.
const retireGrace = time.Minute

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("upstream registry is closed")

// Registry builds the Upstreams of each configuration, carrying targets'
// pools and health over from the previous one, and runs the active health
// checks of the current one.
type Registry struct {
	env   *env
	probe *fasthttp.Client
	grace time.Duration

	mu       sync.Mutex
	closed   bool
	targets  map[targetKey]*Target
	checkers map[string]*checker
}

type targetKey struct {
	upstream, address string
}

// NewRegistry returns an empty registry that logs health changes to
// logger.Named("health").
func NewRegistry(logger hclog.Logger) *Registry {
	return &Registry{
		env:      &env{logger: logger.Named("health"), now: time.Now},
		probe:    newProbeClient(),
		grace:    retireGrace,
		targets:  make(map[targetKey]*Target),
		checkers: make(map[string]*checker),
	}
}

// OnChange sets a function called with a target's state whenever it starts
// or stops taking traffic, and once with its initial state (healthy) when
// it first appears. Set it before the first Update. It is called from the
// request path and the health checkers, so it must be quick and must not
// call the Registry.
func (r *Registry) OnChange(fn func(upstream, address string, healthy bool)) {
	r.env.hook.Store(&fn)
}

// Update builds the Upstreams of a new configuration, by name, and makes
// them current: health checks follow the new configuration and targets no
// longer in it are retired. On error nothing changes.
//
// A target keeps its *Target, and so its pool and health, when its
// upstream name, address, timeouts and weight are unchanged; when only its
// weight changed, the new *Target still shares the pool and health.
func (r *Registry) Update(ups []deploy.Upstream) (map[string]*Upstream, error) {
	// Configurations are validated as a whole before they get here; this
	// is for callers that skip it, since the balancers rely on the rules.
	// A configuration of upstreams alone has no policy to check.
	if err := (&deploy.Config{Upstreams: ups}).Validate(nil); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	result := make(map[string]*Upstream, len(ups))
	targets := make(map[targetKey]*Target, len(r.targets))
	var created []*core
	for _, cfg := range ups {
		to := resolveTimeouts(cfg.Timeouts)
		ts := make([]*Target, len(cfg.Targets))
		for i, tc := range cfg.Targets {
			key := targetKey{cfg.Name, tc.Address}
			weight := max(tc.Weight, 1)
			old := r.targets[key]
			var t *Target
			switch {
			case old != nil && old.core.timeouts == to && old.Weight == weight:
				t = old
			case old != nil && old.core.timeouts == to:
				t = &Target{Address: tc.Address, DialAddr: old.DialAddr, Weight: weight, Client: old.Client, core: old.core}
			default:
				c := newCore(r.env, cfg.Name, tc.Address, to)
				created = append(created, c)
				t = &Target{Address: tc.Address, DialAddr: c.dialAddr, Weight: weight, Client: c.client, core: c}
			}
			t.core.setPassive(cfg.Passive)
			targets[key] = t
			ts[i] = t
		}
		result[cfg.Name] = newUpstream(cfg, ts)
	}
	for _, c := range created {
		c.report(true)
	}
	for key, old := range r.targets {
		if t := targets[key]; t == nil || t.core != old.core {
			r.retire(old.core)
		}
	}
	r.targets = targets
	// Only once the checkers are stopped can their verdicts be cleared
	// (see recordProbe).
	r.updateCheckers(result)
	for _, u := range result {
		if u.Config.HealthCheck == nil {
			for _, t := range u.Targets {
				t.core.clearActive()
			}
		}
	}
	return result, nil
}

// updateCheckers starts the checkers of the current configuration and
// stops the others. A checker whose settings and targets are unchanged
// keeps running, so that frequent reloads do not multiply probes.
func (r *Registry) updateCheckers(ups map[string]*Upstream) {
	checkers := make(map[string]*checker)
	for name, u := range ups {
		if u.Config.HealthCheck == nil {
			continue
		}
		cores := make([]*core, len(u.Targets))
		for i, t := range u.Targets {
			cores[i] = t.core
		}
		old := r.checkers[name]
		if old != nil && reflect.DeepEqual(old.cfg, *u.Config.HealthCheck) && slices.Equal(old.targets, cores) {
			checkers[name] = old
			delete(r.checkers, name)
			continue
		}
		c := newChecker(name, *u.Config.HealthCheck, cores, r.probe, r.env)
		go c.run()
		checkers[name] = c
	}
	for _, c := range r.checkers {
		c.halt()
	}
	r.checkers = checkers
}

// retire takes a target out of health accounting at once, and closes its
// idle connections after the grace period. Connections still carrying
// requests are closed by the pool when those requests end and the
// connections have been idle for maxIdleConnDuration.
func (r *Registry) retire(c *core) {
	c.retired.Store(true)
	c.passive.Store(nil)
	time.AfterFunc(r.grace, c.client.CloseIdleConnections)
}

// Close stops the health checkers and waits for them to end. Upstreams
// already returned keep working, with the health they had.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, c := range r.checkers {
		c.halt()
	}
	for _, c := range r.checkers {
		<-c.done
	}
	r.checkers = nil
}
