package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// Names of the gateway's metrics.
const (
	GatewayRequests        = "gatehouse_gateway_requests_total"
	GatewayDuration        = "gatehouse_gateway_request_duration_seconds"
	GatewayUpstreamLatency = "gatehouse_gateway_upstream_duration_seconds"
	GatewayBytesIn         = "gatehouse_gateway_request_bytes_total"
	GatewayBytesOut        = "gatehouse_gateway_response_bytes_total"
	GatewayConnections     = "gatehouse_gateway_active_connections"
	GatewayReloads         = "gatehouse_gateway_config_reloads_total"
	GatewayConfigApplied   = "gatehouse_gateway_config_applied_timestamp_seconds"
	GatewayTargetHealthy   = "gatehouse_gateway_upstream_target_healthy"
	GatewayConsumerReqs    = "gatehouse_gateway_consumer_requests_total"
	GatewayLogDropped      = "gatehouse_gateway_policy_log_dropped_total"
	GatewayExternalFailed  = "gatehouse_gateway_external_policy_failures_total"
)

// LatencyBuckets are the histogram buckets of every latency metric, in
// seconds: the buckets of the domain's traffic counts, so that a
// Prometheus histogram and the admin node's merged ones agree.
var LatencyBuckets = traffic.LatencyBuckets

// Gateway is the set of metrics one gateway exports.
type Gateway struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	upstreamLatency *prometheus.HistogramVec
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	connections     prometheus.Gauge
	reloads         *prometheus.CounterVec
	configApplied   prometheus.Gauge
	targetHealthy   *prometheus.GaugeVec
	consumerReqs    *prometheus.CounterVec
	logDropped      *prometheus.CounterVec
	externalFailed  *prometheus.CounterVec

	consumersMu sync.RWMutex
	consumers   map[consumerCode]prometheus.Counter

	mu     sync.Mutex
	routes map[[2]string]*Route
	// trafficMu makes Traffic's readings follow one another: every count
	// of a reading is at least that of the reading before, which is how
	// the node manager tells an older reading that arrives late.
	trafficMu sync.Mutex
}

// NewGateway defines the gateway's metrics, labelled with its group, and
// registers them with reg.
func NewGateway(reg prometheus.Registerer, group string) *Gateway {
	constLabels := prometheus.Labels{"group": group}
	routeLabels := []string{"service", "route"}
	g := &Gateway{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayRequests, Help: "Requests served, by service, route and status code.", ConstLabels: constLabels,
		}, []string{"service", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: GatewayDuration, Help: "Time from request received to response headers sent upstream's answer, in seconds.",
			ConstLabels: constLabels, Buckets: LatencyBuckets,
		}, routeLabels),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: GatewayUpstreamLatency, Help: "Time spent waiting for the upstream's response headers, in seconds.",
			ConstLabels: constLabels, Buckets: LatencyBuckets,
		}, routeLabels),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayBytesIn, Help: "Request body bytes of known length received.", ConstLabels: constLabels,
		}, routeLabels),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayBytesOut, Help: "Response body bytes of known length sent.", ConstLabels: constLabels,
		}, routeLabels),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: GatewayConnections, Help: "Open client connections.", ConstLabels: constLabels,
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayReloads, Help: "Configuration applications, by result (success, failure).", ConstLabels: constLabels,
		}, []string{"result"}),
		configApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: GatewayConfigApplied, Help: "Unix time the current configuration was applied.", ConstLabels: constLabels,
		}),
		targetHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: GatewayTargetHealthy, Help: "1 when an upstream target takes traffic, 0 when it is unhealthy or ejected.", ConstLabels: constLabels,
		}, []string{"upstream", "target"}),
		consumerReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayConsumerReqs, Help: "Requests of identified consumers, by consumer and status code.", ConstLabels: constLabels,
		}, []string{"consumer", "code"}),
		logDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayLogDropped, Help: "Log entries a policy dropped: its buffer was full or its endpoint kept failing.", ConstLabels: constLabels,
		}, []string{"policy"}),
		externalFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: GatewayExternalFailed, Help: "Calls of external policies that failed, by plugin and reason (timeout, crash, error).", ConstLabels: constLabels,
		}, []string{"plugin", "reason"}),
		consumers: make(map[consumerCode]prometheus.Counter),
		routes:    make(map[[2]string]*Route),
	}
	reg.MustRegister(g.requests, g.duration, g.upstreamLatency, g.bytesIn, g.bytesOut,
		g.connections, g.reloads, g.configApplied, g.targetHealthy,
		g.consumerReqs, g.logDropped, g.externalFailed)
	return g
}

// Route returns the metrics of one route, the same object for the same
// names, so that a compiled configuration holds them and the hot path never
// looks labels up.
func (g *Gateway) Route(service, route string) *Route {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := [2]string{service, route}
	if r, ok := g.routes[key]; ok {
		return r
	}
	r := &Route{
		service:  service,
		route:    route,
		requests: g.requests,
		duration: g.duration.WithLabelValues(service, route),
		upstream: g.upstreamLatency.WithLabelValues(service, route),
		bytesIn:  g.bytesIn.WithLabelValues(service, route),
		bytesOut: g.bytesOut.WithLabelValues(service, route),
	}
	r.codes.Store(&[]codeCounter{})
	g.routes[key] = r
	return r
}

// ConnOpened and ConnClosed track open client connections.
func (g *Gateway) ConnOpened() { g.connections.Inc() }

// ConnClosed is ConnOpened's counterpart.
func (g *Gateway) ConnClosed() { g.connections.Dec() }

// Reload counts one configuration application.
func (g *Gateway) Reload(ok bool, at time.Time) {
	if ok {
		g.reloads.WithLabelValues("success").Inc()
		g.configApplied.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	g.reloads.WithLabelValues("failure").Inc()
}

// TargetHealth records whether an upstream target takes traffic.
func (g *Gateway) TargetHealth(upstream, target string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	g.targetHealthy.WithLabelValues(upstream, target).Set(v)
}

type consumerCode struct {
	consumer string
	code     int
}

// ConsumerRequest counts a request of an identified consumer.
func (g *Gateway) ConsumerRequest(consumer string, code int) {
	key := consumerCode{consumer, code}
	g.consumersMu.RLock()
	c, ok := g.consumers[key]
	g.consumersMu.RUnlock()
	if !ok {
		g.consumersMu.Lock()
		if c, ok = g.consumers[key]; !ok {
			c = g.consumerReqs.WithLabelValues(consumer, strconv.Itoa(code))
			g.consumers[key] = c
		}
		g.consumersMu.Unlock()
	}
	c.Inc()
}

// LogDropped implements policy.Metrics.
func (g *Gateway) LogDropped(policy string, n int) {
	g.logDropped.WithLabelValues(policy).Add(float64(n))
}

// ExternalFailed implements policy.Metrics.
func (g *Gateway) ExternalFailed(plugin, reason string) {
	g.externalFailed.WithLabelValues(plugin, reason).Inc()
}

// Route holds one route's metrics.
type Route struct {
	service, route string
	requests       *prometheus.CounterVec
	duration       prometheus.Observer
	upstream       prometheus.Observer
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter

	// codes is copy-on-write: a route sees a handful of status codes, so a
	// short slice scanned without locks beats a labelled lookup per request.
	codes   atomic.Pointer[[]codeCounter]
	codesMu sync.Mutex

	// anonymous and consumers hold the route's traffic counts
	// (Gateway.Traffic). consumers is copy-on-write: a consumer is added
	// once, at its first request on the route, and looked up without a
	// lock after that.
	anonymous   consumerTraffic
	consumers   atomic.Pointer[map[string]*consumerTraffic]
	consumersMu sync.Mutex
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

// Observe records one request of consumer ("" when anonymous). upstream is
// zero when no upstream was asked; a negative byte count means unknown and
// is not counted.
func (r *Route) Observe(consumer string, code int, total, upstream time.Duration, in, out int) {
	r.consumerTraffic(consumer).cell(classIndex(code)).add(total, in, out)
	r.counter(code).Inc()
	r.duration.Observe(total.Seconds())
	if upstream > 0 {
		r.upstream.Observe(upstream.Seconds())
	}
	if in > 0 {
		r.bytesIn.Add(float64(in))
	}
	if out > 0 {
		r.bytesOut.Add(float64(out))
	}
}

func (r *Route) counter(code int) prometheus.Counter {
	for _, c := range *r.codes.Load() {
		if c.code == code {
			return c.counter
		}
	}
	r.codesMu.Lock()
	defer r.codesMu.Unlock()
	cur := *r.codes.Load()
	for _, c := range cur {
		if c.code == code {
			return c.counter
		}
	}
	c := codeCounter{code: code, counter: r.requests.WithLabelValues(r.service, r.route, strconv.Itoa(code))}
	next := append(append(make([]codeCounter, 0, len(cur)+1), cur...), c)
	r.codes.Store(&next)
	return c.counter
}
