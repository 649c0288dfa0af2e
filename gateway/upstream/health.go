package upstream

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/valyala/fasthttp"
)

// Defaults that deploy documents for active health checks.
const (
	defaultCheckInterval      = 5 * time.Second
	defaultCheckTimeout       = 2 * time.Second
	defaultHealthyThreshold   = 2
	defaultUnhealthyThreshold = 3
)

// newProbeClient returns the client of the active checks.
func newProbeClient() *fasthttp.Client {
	return &fasthttp.Client{
		Name: "gatehouse-health-check",
		// Each probe is one observation; a retry would hide a failure.
		MaxIdemponentCallAttempts: 1,
		DialDualStack:             true,
		// Large headers (cookies) must not fail an otherwise good answer.
		ReadBufferSize: 16 << 10,
	}
}

// checker probes the targets of one upstream, from one goroutine, until
// stopped.
type checker struct {
	upstream string
	cfg      deploy.ActiveHealthCheck
	targets  []*core
	client   *fasthttp.Client
	env      *env
	stop     chan struct{}
	done     chan struct{}
}

func newChecker(upstream string, cfg deploy.ActiveHealthCheck, targets []*core, client *fasthttp.Client, e *env) *checker {
	return &checker{
		upstream: upstream,
		cfg:      cfg,
		targets:  targets,
		client:   client,
		env:      e,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// run probes at once, so that the targets of a new configuration are
// checked without waiting a whole interval, then every interval.
func (c *checker) run() {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.Interval.Or(defaultCheckInterval))
	defer ticker.Stop()
	for {
		c.round()
		select {
		case <-c.stop:
			return
		case <-ticker.C:
		}
	}
}

// round probes the targets concurrently, so that slow or black-holed
// targets cannot delay the probes of the others beyond the interval.
func (c *checker) round() {
	var wg sync.WaitGroup
	for _, t := range c.targets {
		wg.Go(func() { c.check(t) })
	}
	wg.Wait()
}

func (c *checker) check(t *core) {
	reason := c.probe(t.address)
	healthyAfter := cmp.Or(c.cfg.HealthyThreshold, defaultHealthyThreshold)
	unhealthyAfter := cmp.Or(c.cfg.UnhealthyThreshold, defaultUnhealthyThreshold)
	if !t.recordProbe(reason == "", healthyAfter, unhealthyAfter, c.stop) {
		return
	}
	if reason == "" {
		c.env.logger.Info("target healthy", "upstream", c.upstream, "target", t.address)
	} else {
		c.env.logger.Warn("target unhealthy", "upstream", c.upstream, "target", t.address, "reason", reason)
	}
	t.report(false)
}

// probe returns why the target failed its check, or "" when it passed.
func (c *checker) probe(address string) string {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + address + c.cfg.Path)
	// A new connection per probe also checks that the target accepts
	// connections, which a kept-alive one would hide.
	req.SetConnectionClose()
	// Only the status matters, whatever the size of the body.
	resp.SkipBody = true
	if err := c.client.DoTimeout(req, resp, c.cfg.Timeout.Or(defaultCheckTimeout)); err != nil {
		return err.Error()
	}
	if status := resp.StatusCode(); !c.passes(status) {
		return "status " + strconv.Itoa(status)
	}
	return ""
}

func (c *checker) passes(status int) bool {
	if len(c.cfg.Statuses) == 0 {
		return status >= 200 && status < 400
	}
	return slices.Contains(c.cfg.Statuses, status)
}

// halt stops the checker without waiting for a probe in progress.
func (c *checker) halt() { close(c.stop) }
