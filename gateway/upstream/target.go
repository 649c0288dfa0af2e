package upstream

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"
)

// Defaults that deploy documents for upstreams.
const (
	defaultConnectTimeout = 5 * time.Second
	defaultReadTimeout    = 60 * time.Second
	defaultWriteTimeout   = 60 * time.Second
	defaultEjectFor       = 30 * time.Second
)

const (
	// maxConnsPerTarget is high so that load, not an arbitrary pool
	// limit, decides when a target is saturated: a low limit would turn a
	// burst into ErrNoFreeConns errors while the target has capacity.
	maxConnsPerTarget = 4096
	// maxIdleConnDuration keeps connections through lulls in traffic. A
	// server that closes idle connections sooner costs a failed write on
	// a stale connection, which fasthttp retries for idempotent requests.
	maxIdleConnDuration = 60 * time.Second
)

// Target is one upstream server as a configuration sees it. Address,
// Weight and Client never change; the health and the count of requests in
// flight are shared with the Targets of the same server in other
// configurations, so that a reload keeps them.
type Target struct {
	Address string
	// Weight is the configured weight, 1 when the configuration left it 0.
	Weight int
	// Client is the keep-alive pool to this target. It is shared with
	// other configurations, so its fields must not be changed.
	Client *fasthttp.HostClient
	// DialAddr is Address with its host resolved to an IP, for engines
	// that must not block on name lookups; it is Address when the host
	// is an IP already or could not be resolved.
	DialAddr string

	core *core
}

// core is the part of a target that outlives configurations.
type core struct {
	upstream, address string
	dialAddr          string
	timeouts          timeouts
	client            *fasthttp.HostClient
	env               *env

	active atomic.Int64
	// down is set by active checks; its zero value makes targets start
	// healthy.
	down     atomic.Bool
	failures atomic.Int64
	// ejectedUntil is the end of a passive ejection in Unix nanoseconds,
	// 0 when the target is not ejected.
	ejectedUntil atomic.Int64
	// passive is nil when the upstream has no passive check; it changes
	// with the configuration while requests use the target.
	passive atomic.Pointer[passivePolicy]
	// retired stops a target that left the configuration from reporting
	// changes that would be taken for those of its successor.
	retired atomic.Bool

	// mu serialises the probe streaks and the reports to the hook, so
	// that the hook sees changes in the order they happened.
	mu                   sync.Mutex
	okStreak, failStreak int
	reportedDown         bool
}

type timeouts struct {
	connect, read, write time.Duration
}

func resolveTimeouts(t deploy.Timeouts) timeouts {
	return timeouts{
		connect: t.Connect.Or(defaultConnectTimeout),
		read:    t.Read.Or(defaultReadTimeout),
		write:   t.Write.Or(defaultWriteTimeout),
	}
}

type passivePolicy struct {
	threshold int64
	ejectFor  time.Duration
	statuses  []int
}

// env is what all targets of a registry share.
type env struct {
	// logger reports health changes.
	logger hclog.Logger
	// now is replaceable so that tests control ejection times.
	now  func() time.Time
	hook atomic.Pointer[func(upstream, address string, healthy bool)]
}

func (e *env) notify(upstream, address string, healthy bool) {
	if h := e.hook.Load(); h != nil {
		(*h)(upstream, address, healthy)
	}
}

func newCore(e *env, upstream, address string, to timeouts) *core {
	return &core{
		upstream: upstream,
		address:  address,
		dialAddr: resolve(e.logger, address),
		timeouts: to,
		client:   newClient(address, to),
		env:      e,
	}
}

// resolve looks a target's host name up once, when the configuration that
// names it is applied, preferring IPv4. A name that does not resolve stays
// as it is: requests to it then fail (502) and passive checks see it.
func resolve(logger hclog.Logger, address string) string {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return address
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return address
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		logger.Warn("cannot resolve target", "address", address, "error", err)
		return address
	}
	best := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			best = ip
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), mustPort(port)).String()
}

func mustPort(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

func newClient(address string, to timeouts) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: address,
		// fasthttp passes the request's own timeout, if any; the shorter
		// of the two applies. Dual stack so that IPv6 targets work.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > to.connect {
				timeout = to.connect
			}
			return fasthttp.DialDualStackTimeout(addr, timeout)
		},
		ReadTimeout:         to.read,
		WriteTimeout:        to.write,
		MaxConns:            maxConnsPerTarget,
		MaxIdleConnDuration: maxIdleConnDuration,
		// Requests go out with the normalised path they were routed on,
		// so that the upstream cannot read a path the router did not see
		// ("/public/../admin").
		NoDefaultUserAgentHeader: true,
		// Bodies are streamed to the client rather than buffered, so
		// their size is the client's business, not the pool's.
		StreamResponseBody:  true,
		MaxResponseBodySize: 0,
		// One more try on a new connection, for an idempotent request
		// only: what the event-loop engine does when a pooled connection
		// turns out closed. On its own fasthttp would send GET, HEAD and
		// PUT up to five times, after timeouts too.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryIdempotent,
	}
}

// retryIdempotent is the client's retry rule: a request that may have
// reached the target is sent again only when its method is idempotent
// (RFC 9110 §9.2.2) and the failure was not a timeout. A POST or PATCH is
// never replayed: the target may have run it.
func retryIdempotent(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	var t interface{ Timeout() bool }
	if errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &t) && t.Timeout() {
		return false, false
	}
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		return false, true
	}
	return false, false
}

// Healthy reports whether the target takes traffic: its active check says
// it is up and the passive check has not ejected it.
func (t *Target) Healthy() bool {
	c := t.core
	if c.down.Load() {
		return false
	}
	// The clock is read only while an ejection is pending, to keep it off
	// the common path.
	e := c.ejectedUntil.Load()
	return e == 0 || c.endEjection(e)
}

// Acquire counts a request to the target as in flight, for least-
// connections. Every Acquire must be followed by one Release.
func (t *Target) Acquire() { t.core.active.Add(1) }

// Release ends a request counted by Acquire and reports its outcome to the
// passive check: ok is false for a connection error or a timeout, and a
// response whose status is among the passive check's statuses also counts
// as a failure. Consecutive failures reaching the threshold eject the
// target for the passive check's eject_for; a success resets the count.
func (t *Target) Release(ok bool, status int) {
	c := t.core
	c.active.Add(-1)
	p := c.passive.Load()
	if p == nil {
		return
	}
	if e := c.ejectedUntil.Load(); e != 0 && !c.endEjection(e) {
		// Outcomes of requests sent before the ejection say nothing new
		// and must not extend it.
		return
	}
	if ok && !slices.Contains(p.statuses, status) {
		// Loading first keeps concurrent successes from all writing the
		// shared cache line.
		if c.failures.Load() != 0 {
			c.failures.Store(0)
		}
		return
	}
	if c.failures.Add(1) < p.threshold {
		return
	}
	if c.ejectedUntil.CompareAndSwap(0, c.env.now().Add(p.ejectFor).UnixNano()) {
		c.env.logger.Warn("target ejected", "upstream", c.upstream, "target", c.address,
			"consecutive_failures", p.threshold, "for", p.ejectFor)
		c.report(false)
	}
}

// endEjection ends an ejection that lasted until until if its time is up,
// and reports whether the target is back.
func (c *core) endEjection(until int64) bool {
	if c.env.now().UnixNano() < until {
		return false
	}
	// Reset before the target is back, so that a failure right after it
	// is counted from zero and does not eject it again at once.
	c.failures.Store(0)
	if c.ejectedUntil.CompareAndSwap(until, 0) && !c.retired.Load() {
		c.env.logger.Info("target back from ejection", "upstream", c.upstream, "target", c.address)
		c.report(false)
	}
	return true
}

// setPassive applies the passive check of a new configuration; without
// one, a pending ejection ends now rather than outliving its check.
func (c *core) setPassive(pc *deploy.PassiveHealthCheck) {
	if pc != nil {
		c.passive.Store(&passivePolicy{
			threshold: int64(pc.ConsecutiveFailures),
			ejectFor:  pc.EjectFor.Or(defaultEjectFor),
			statuses:  pc.Statuses,
		})
		return
	}
	c.passive.Store(nil)
	c.failures.Store(0)
	if c.ejectedUntil.Swap(0) != 0 {
		c.report(false)
	}
}

// recordProbe counts the outcome of an active probe and reports whether
// it changed the target's state. A probe that ends after its checker was
// stopped is dropped: the configuration that asked for it is gone, and
// its result must not land after clearActive, where nothing would undo
// it. Checking stop under mu is what orders the two.
func (c *core) recordProbe(ok bool, healthyAfter, unhealthyAfter int, stop <-chan struct{}) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-stop:
		return false
	default:
	}
	if ok {
		c.failStreak = 0
		c.okStreak++
		return c.okStreak >= healthyAfter && c.down.CompareAndSwap(true, false)
	}
	c.okStreak = 0
	c.failStreak++
	return c.failStreak >= unhealthyAfter && c.down.CompareAndSwap(false, true)
}

// clearActive forgets the active check of an upstream that no longer has
// one: nothing would ever mark its targets up again. The checker must be
// stopped first.
func (c *core) clearActive() {
	c.mu.Lock()
	c.okStreak, c.failStreak = 0, 0
	c.mu.Unlock()
	if c.down.Swap(false) {
		c.report(false)
	}
}

// report tells the hook whether the target takes traffic, if that changed
// since the last report, or in any case when always is set. Several causes
// can flip in a row; only real changes are reported.
func (c *core) report(always bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retired.Load() {
		return
	}
	up := !c.down.Load() && c.ejectedUntil.Load() == 0
	if always || up == c.reportedDown {
		c.reportedDown = !up
		c.env.notify(c.upstream, c.address, up)
	}
}

// TargetState is a snapshot of a target for status pages and the admin
// API.
type TargetState struct {
	Address string
	Weight  int
	// Healthy is whether Pick may choose the target.
	Healthy bool
	// Ejected is whether the passive check has taken the target out.
	Ejected bool
	// Active is the number of requests in flight.
	Active int64
	// ConsecutiveFailures is the passive check's count.
	ConsecutiveFailures int
}

func (t *Target) state() TargetState {
	c := t.core
	e := c.ejectedUntil.Load()
	ejected := e != 0 && !c.endEjection(e)
	return TargetState{
		Address:             t.Address,
		Weight:              t.Weight,
		Healthy:             !c.down.Load() && !ejected,
		Ejected:             ejected,
		Active:              c.active.Load(),
		ConsecutiveFailures: int(c.failures.Load()),
	}
}
