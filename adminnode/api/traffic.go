package api

import (
	"context"
	"maps"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// Queries of the domain's traffic (docs/metrics.md, "Query API").
const (
	defaultMetricsRange = time.Hour
	// maxMetricsPoints bounds an answer, as Prometheus bounds a range
	// query: 11,000 points is over a week at 1 min.
	maxMetricsPoints = 11000
	// defaultMetricsPoints is the most points a default step gives for
	// ranges longer than a day.
	defaultMetricsPoints = 1440
)

func metricsRoutes() []*route {
	return []*route{
		{method: "GET", path: "/metrics/query", action: "metrics.query", summary: "A group's traffic over a time range, by step: rate, status classes, error ratios, latency quantiles, bytes",
			perm: rbac.MetricsRead, scope: scopeQueryGroup, query: []string{"group", "service", "route", "consumer", "instance", "since", "from", "to", "step", "by"},
			out: apitypes.MetricsAnswer{}, handle: (*Server).queryMetrics},
		{method: "GET", path: "/metrics/prometheus", action: "metrics.prometheus", summary: "Traffic totals of the groups the caller may read, by service, in the Prometheus exposition format",
			produces: "text/plain", handle: (*Server).prometheusMetrics},
		{method: "POST", path: "/traffic", action: "node.traffic", summary: "Store a batch of the host's traffic counts, once; answer the highest Seq stored",
			agent: true, noAudit: true, in: traffic.Batch{}, out: traffic.Ack{}, handle: (*Server).ingestTraffic},
	}
}

// ingestTraffic stores a node manager's batch. Series that name an
// instance of another host, or of another group, are refused (a node
// manager speaks for its own gateways only); series of an instance that
// no longer exists are kept, since a gateway's last counts come after its
// instance was deleted.
func (s *Server) ingestTraffic(q *request) (any, error) {
	var in traffic.Batch
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	if in.Node != q.node {
		return nil, newError(http.StatusForbidden, apitypes.CodeForbidden, "batch of node %q sent with the certificate of host %q", in.Node, q.node)
	}
	kept := in.Series[:0]
	refused := 0
	for _, ser := range in.Series {
		inst, ok, err := s.hosts.instance(q.ctx, s, ser.Instance)
		if err != nil {
			return nil, err
		}
		if ok && (inst.Host != q.node || inst.Group != ser.Group) {
			refused++
			continue
		}
		kept = append(kept, ser)
	}
	in.Series = kept
	if refused > 0 {
		s.refusedMu.Lock()
		s.refused[q.node] += uint64(refused)
		s.refusedMu.Unlock()
		s.log.Warn("traffic series of instances of another host or group refused", "node", q.node, "seq", in.Seq, "series", refused)
	}
	res, err := s.store.IngestTraffic(q.ctx, in, s.traffic, s.now())
	if err != nil {
		return nil, err
	}
	if res.Lost > 0 {
		s.log.Warn("traffic batches lost upstream: the node manager never delivered them", "node", q.node, "batches", res.Lost, "before_seq", in.Seq)
	}
	if res.Skipped > 0 {
		s.log.Debug("traffic series of deleted groups skipped", "node", q.node, "seq", in.Seq, "series", res.Skipped)
	}
	return traffic.Ack{Seq: res.Ack}, nil
}

// MaintainTraffic rolls the traffic store up and prunes it; the admin
// node calls it every minute.
func (s *Server) MaintainTraffic(ctx context.Context) (store.TrafficMaintenance, error) {
	return s.store.MaintainTraffic(ctx, s.now())
}

func (s *Server) queryMetrics(q *request) (any, error) {
	v := q.r.URL.Query()
	now := s.now()
	from, to, err := metricsRange(v, now)
	if err != nil {
		return nil, err
	}
	step, res, err := metricsStep(v.Get("step"), from, to, now)
	if err != nil {
		return nil, err
	}
	from, to = alignDown(from, step), alignDown(to.Add(step-time.Second), step)
	if n := to.Sub(from) / step; n > maxMetricsPoints {
		return nil, badRequest("step", "%d points of %s: at most %d; take a larger step", n, step, maxMetricsPoints)
	}
	tq := store.TrafficQuery{Group: q.group.Name, From: from, To: to, Step: step, Resolution: res, By: v.Get("by"),
		Filter: store.TrafficFilter{Service: v.Get("service"), Route: v.Get("route"), Consumer: v.Get("consumer"), Instance: v.Get("instance")}}
	switch tq.By {
	case "", apitypes.MetricsByService, apitypes.MetricsByRoute, apitypes.MetricsByConsumer, apitypes.MetricsByInstance:
	default:
		return nil, badRequest("by", "by %q: want service, route, consumer or instance", tq.By)
	}
	r, err := s.store.QueryTraffic(q.ctx, tq)
	if err != nil {
		return nil, err
	}
	dropped, err := s.groupDropped(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	out := apitypes.MetricsAnswer{Group: q.group.Name, Service: tq.Filter.Service, Route: tq.Filter.Route, Consumer: tq.Filter.Consumer,
		Instance: tq.Filter.Instance, From: from, To: to, StepSeconds: int64(step / time.Second), ResolutionSeconds: int64(res / time.Second),
		Points: make([]apitypes.MetricsPoint, len(r.Points)), Totals: metricsValues(&r.Total, to.Sub(from)),
		Folded: r.Folded, DroppedBatches: dropped}
	for i := range r.Points {
		out.Points[i] = apitypes.MetricsPoint{Time: r.Points[i].Time, MetricsValues: metricsValues(&r.Points[i].TrafficSum, step)}
	}
	for i := range r.Breakdown {
		b := &r.Breakdown[i]
		out.Breakdown = append(out.Breakdown, apitypes.MetricsSeries{Service: b.Labels.Service, Route: b.Labels.Route,
			Consumer: b.Labels.Consumer, Instance: b.Labels.Instance, MetricsValues: metricsValues(&b.TrafficSum, to.Sub(from))})
	}
	return out, nil
}

// metricsRange reads since, or from and to; the default is the last hour.
func metricsRange(v url.Values, now time.Time) (from, to time.Time, err error) {
	since, fromS, toS := v.Get("since"), v.Get("from"), v.Get("to")
	if since != "" && (fromS != "" || toS != "") {
		return from, to, badRequest("since", "give since, or from and to, not both")
	}
	to = now
	if toS != "" {
		if to, err = time.Parse(time.RFC3339, toS); err != nil {
			return from, to, badRequest("to", "to %q: want an RFC 3339 time", toS)
		}
	}
	switch {
	case fromS != "":
		if from, err = time.Parse(time.RFC3339, fromS); err != nil {
			return from, to, badRequest("from", "from %q: want an RFC 3339 time", fromS)
		}
	case since != "":
		d, err := time.ParseDuration(since)
		if err != nil || d <= 0 {
			return from, to, badRequest("since", "since %q: want a positive duration such as 1h", since)
		}
		from = now.Add(-d)
	default:
		from = to.Add(-defaultMetricsRange)
	}
	if !from.Before(to) {
		return from, to, badRequest("from", "from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// metricsStep picks the step and the resolution it is read at. A step is
// rounded up to a multiple of 10 s. One that is a multiple of a minute is
// read from the 1 min points (the same sums, six times fewer points);
// another needs the 10 s points, kept 24 h, and is refused for an older
// range. Without a step: 10 s up to an hour, 1 min up to a day, beyond
// whole minutes giving at most defaultMetricsPoints points.
func metricsStep(param string, from, to, now time.Time) (step, res time.Duration, err error) {
	fine := !from.Before(now.Add(-store.TrafficFineRetention))
	if param == "" {
		switch span := to.Sub(from); {
		case span <= time.Hour && fine:
			step = store.TrafficFine
		case span <= 24*time.Hour:
			step = store.TrafficCoarse
		default:
			step = ceilTo(span/defaultMetricsPoints, store.TrafficCoarse)
		}
	} else {
		d, err := time.ParseDuration(param)
		if err != nil || d <= 0 {
			return 0, 0, badRequest("step", "step %q: want a positive duration such as 1m", param)
		}
		step = ceilTo(d, store.TrafficFine)
	}
	if step%store.TrafficCoarse == 0 {
		return step, store.TrafficCoarse, nil
	}
	if !fine {
		return 0, 0, badRequest("step", "step %s is finer than a minute, but the range starts more than %s ago, where points are kept by the minute", step, store.TrafficFineRetention)
	}
	return step, store.TrafficFine, nil
}

// alignDown is t down to a multiple of step since the Unix epoch, where
// the store's points are (time.Truncate counts from year 1, which differs
// for steps that do not divide a day).
func alignDown(t time.Time, step time.Duration) time.Time {
	s := int64(step / time.Second)
	u := t.Unix()
	return time.Unix(u-((u%s)+s)%s, 0).UTC()
}

func ceilTo(d, unit time.Duration) time.Duration {
	return (d + unit - 1) / unit * unit
}

// metricsValues makes the answer of a sum over an interval.
func metricsValues(sum *store.TrafficSum, interval time.Duration) apitypes.MetricsValues {
	c := sum.Class
	v := apitypes.MetricsValues{Requests: sum.Requests, BytesIn: sum.BytesIn, BytesOut: sum.BytesOut,
		Status: apitypes.StatusClasses{S1xx: c(traffic.Class1xx), S2xx: c(traffic.Class2xx), S3xx: c(traffic.Class3xx),
			S4xx: c(traffic.Class4xx), S5xx: c(traffic.Class5xx), None: c(traffic.ClassNone)}}
	if interval > 0 {
		v.Rate = float64(sum.Requests) / interval.Seconds()
	}
	if sum.Requests > 0 {
		v.ErrorRatio4xx = ptr(float64(v.Status.S4xx) / float64(sum.Requests))
		v.ErrorRatio5xx = ptr(float64(v.Status.S5xx) / float64(sum.Requests))
	}
	quantile := func(q float64) *float64 {
		if x := sum.Quantile(q); !math.IsNaN(x) {
			return &x
		}
		return nil
	}
	v.P50, v.P95, v.P99 = quantile(0.5), quantile(0.95), quantile(0.99)
	return v
}

func ptr[T any](v T) *T { return &v }

// groupDropped sums the batches lost by the node managers of the hosts
// that run the group's instances. A batch a node manager drops from its
// spool is never sent, so it is also a gap in the sequence: per host the
// loss is the larger of the two counts, not their sum.
func (s *Server) groupDropped(ctx context.Context, group string) (uint64, error) {
	all, _, err := s.hosts.current(ctx, s)
	if err != nil {
		return 0, err
	}
	hosts := map[string]bool{}
	for _, in := range all {
		if in.Group == group {
			hosts[in.Host] = true
		}
	}
	if len(hosts) == 0 {
		return 0, nil
	}
	nodes, err := s.store.ListTrafficNodes(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, tn := range nodes {
		if hosts[tn.Node] {
			n += max(tn.Dropped, tn.Lost)
		}
	}
	return n, nil
}

// hostTraffic returns what each host's node managers delivered.
func (s *Server) hostTraffic(ctx context.Context) (map[string]*apitypes.HostTraffic, error) {
	nodes, err := s.store.ListTrafficNodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*apitypes.HostTraffic, len(nodes))
	for _, n := range nodes {
		out[n.Node] = &apitypes.HostTraffic{LastSeq: n.LastSeq, LastBatchAt: n.LastBatchAt, Batches: n.Batches, Dropped: n.Dropped, Lost: n.Lost}
	}
	return out, nil
}

var (
	descRequests = prometheus.NewDesc(metrics.DomainRequests, "Requests of the domain's gateways, by group, service and status class.",
		[]string{"group", "service", "class"}, nil)
	descDuration = prometheus.NewDesc(metrics.DomainDuration, "Request latency of the domain's gateways, by group and service.",
		[]string{"group", "service"}, nil)
	descBytesIn = prometheus.NewDesc(metrics.DomainBytesIn, "Request body bytes received by the domain's gateways, by group and service.",
		[]string{"group", "service"}, nil)
	descBytesOut = prometheus.NewDesc(metrics.DomainBytesOut, "Response body bytes sent by the domain's gateways, by group and service.",
		[]string{"group", "service"}, nil)
	descFolded = prometheus.NewDesc(metrics.DomainFolded, `Requests whose route or consumer was folded into "(other)" by the group's limits.`,
		[]string{"group", "label"}, nil)
	descLabels = prometheus.NewDesc(metrics.DomainLabels, "Distinct routes and consumers the admin node keeps apart for the group.",
		[]string{"group", "label"}, nil)
	descBatches = prometheus.NewDesc(metrics.AdminTrafficBatches, "Traffic batches of a node stored, and retries of stored ones acknowledged.",
		[]string{"node", "result"}, nil)
	descLost = prometheus.NewDesc(metrics.AdminTrafficLost, "Traffic batches of a node that never arrived (gaps in its sequence).",
		[]string{"node"}, nil)
	descDropped = prometheus.NewDesc(metrics.AdminTrafficDropped, "Traffic batches a node's node managers dropped from their spools, as they reported.",
		[]string{"node"}, nil)
	descLastBatch = prometheus.NewDesc(metrics.AdminTrafficLastBatch, "When the last traffic batch of a node was stored.",
		[]string{"node"}, nil)
	descBackups           = prometheus.NewDesc(metrics.AdminBackups, "Scheduled backups taken by this admin node since it started, by result.", []string{"result"}, nil)
	descBackupLastSuccess = prometheus.NewDesc(metrics.AdminBackupLastSuccess, "When this admin node last stored a scheduled backup (0: not since it started).", nil, nil)
	descBackupLastFailure = prometheus.NewDesc(metrics.AdminBackupLastFailure, "When a scheduled backup of this admin node last failed (0: not since it started).", nil, nil)
	descBackupLastSize    = prometheus.NewDesc(metrics.AdminBackupLastSize, "Size of the last scheduled backup stored, in bytes.", nil, nil)
	descBackupKept        = prometheus.NewDesc(metrics.AdminBackupKept, "Backups of the domain the backup location held after the last pruning.", nil, nil)
	descBackupRunning     = prometheus.NewDesc(metrics.AdminBackupRunning, "1 while this admin node holds the background lease and so takes the scheduled backups.", nil, nil)
	descSeries            = prometheus.NewDesc(metrics.AdminTrafficSeries, "Traffic series of a node: stored, skipped (group deleted), refused (since start: instance of another host or group).",
		[]string{"node", "result"}, nil)
)

// constMetrics is a scrape's metrics, made from the store; it describes
// nothing, which makes it an unchecked collector.
type constMetrics []prometheus.Metric

func (constMetrics) Describe(chan<- *prometheus.Desc) {}

func (c constMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// prometheusMetrics exposes the running totals of the groups the caller
// may read metrics of, and, to a caller who may read the whole domain's,
// what the admin node received from each node.
func (s *Server) prometheusMetrics(q *request) (any, error) {
	totals, err := s.store.TrafficTotals(q.ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*store.Group, len(groups))
	for i := range groups {
		byName[groups[i].Name] = &groups[i]
	}
	var ms constMetrics
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...))
	}
	for _, g := range totals {
		if grp := byName[g.Group]; grp == nil || !q.allowed(rbac.MetricsRead, grp) {
			continue
		}
		services := map[string]*traffic.Counts{}
		var order []string
		for _, t := range g.Totals {
			counter(descRequests, t.Requests, g.Group, t.Service, t.Class)
			if services[t.Service] == nil {
				services[t.Service] = &traffic.Counts{}
				order = append(order, t.Service)
			}
			services[t.Service].Add(&t.Counts)
		}
		for _, svc := range order {
			c := services[svc]
			buckets := make(map[float64]uint64, len(metrics.LatencyBuckets))
			var cum uint64
			for i, bound := range metrics.LatencyBuckets {
				cum += c.Latency[i]
				buckets[bound] = cum
			}
			cum += c.Latency[traffic.NumBuckets-1]
			ms = append(ms, prometheus.MustNewConstHistogram(descDuration, cum, float64(c.LatencySumMicros)/1e6, buckets, g.Group, svc))
			counter(descBytesIn, c.BytesIn, g.Group, svc)
			counter(descBytesOut, c.BytesOut, g.Group, svc)
		}
		counter(descFolded, g.FoldedRoutes, g.Group, "route")
		counter(descFolded, g.FoldedConsumers, g.Group, "consumer")
		ms = append(ms, prometheus.MustNewConstMetric(descLabels, prometheus.GaugeValue, float64(g.Routes), g.Group, "route"),
			prometheus.MustNewConstMetric(descLabels, prometheus.GaugeValue, float64(g.Consumers), g.Group, "consumer"))
	}
	if q.allowed(rbac.MetricsRead, nil) {
		nodes, err := s.store.ListTrafficNodes(q.ctx)
		if err != nil {
			return nil, err
		}
		s.refusedMu.Lock()
		refused := maps.Clone(s.refused)
		s.refusedMu.Unlock()
		for _, n := range nodes {
			counter(descBatches, n.Batches, n.Node, "stored")
			counter(descBatches, n.Duplicates, n.Node, "duplicate")
			counter(descLost, n.Lost, n.Node)
			counter(descDropped, n.Dropped, n.Node)
			counter(descSeries, n.Series, n.Node, "stored")
			counter(descSeries, n.Skipped, n.Node, "skipped")
			counter(descSeries, refused[n.Node], n.Node, "refused")
			ms = append(ms, prometheus.MustNewConstMetric(descLastBatch, prometheus.GaugeValue, float64(n.LastBatchAt.UnixMilli())/1e3, n.Node))
		}
	}
	if s.backups != nil && q.allowed(rbac.MetricsRead, nil) {
		ms = append(ms, backupMetrics(s.backups())...)
	}
	certs, err := s.certificates(q, s.now())
	if err != nil {
		return nil, err
	}
	ms = append(ms, certificateMetrics(certs)...)
	reg := prometheus.NewRegistry()
	reg.MustRegister(ms)
	if q.allowed(rbac.MetricsRead, nil) {
		s.collectorsMu.Lock()
		for _, c := range s.collectors {
			reg.MustRegister(c)
		}
		s.collectorsMu.Unlock()
	}
	return served{promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

// AddMetrics adds the metrics of this admin node's own work (such as
// publishing deployments) to what /metrics/prometheus exposes to a caller
// who may read the whole domain's metrics.
func (s *Server) AddMetrics(c prometheus.Collector) {
	s.collectorsMu.Lock()
	defer s.collectorsMu.Unlock()
	s.collectors = append(s.collectors, c)
}

var (
	certLabels       = []string{"kind", "name", "group"}
	descCertExpiry   = prometheus.NewDesc(metrics.CertificateExpiry, "When the certificate expires (its NotAfter).", certLabels, nil)
	descCertLifeLeft = prometheus.NewDesc(metrics.CertificateLifeLeft, "Fraction of the certificate's validity still ahead (0 once expired).", certLabels, nil)
	descCertWarning  = prometheus.NewDesc(metrics.CertificateWarning, "1 when the certificate has less than the warning fraction of its life left, or has expired.", certLabels, nil)
)

// certificateMetrics are the gauges of the certificates' lifetimes.
func certificateMetrics(certs []apitypes.CertificateExpiry) []prometheus.Metric {
	var out []prometheus.Metric
	for _, c := range certs {
		warn := 0.0
		if c.State != apitypes.CertOK {
			warn = 1
		}
		out = append(out,
			prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(c.NotAfter.UnixMilli())/1e3, c.Kind, c.Name, c.Group),
			prometheus.MustNewConstMetric(descCertLifeLeft, prometheus.GaugeValue, c.LifeLeft, c.Kind, c.Name, c.Group),
			prometheus.MustNewConstMetric(descCertWarning, prometheus.GaugeValue, warn, c.Kind, c.Name, c.Group))
	}
	return out
}

// backupMetrics are the metrics of the scheduled backups.
func backupMetrics(b apitypes.OverviewBackups) []prometheus.Metric {
	seconds := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixMilli()) / 1e3
	}
	running := 0.0
	if b.Running {
		running = 1
	}
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(descBackups, prometheus.CounterValue, float64(b.Successes), "ok"),
		prometheus.MustNewConstMetric(descBackups, prometheus.CounterValue, float64(b.Failures), "error"),
		prometheus.MustNewConstMetric(descBackupLastSuccess, prometheus.GaugeValue, seconds(b.LastSuccess)),
		prometheus.MustNewConstMetric(descBackupLastFailure, prometheus.GaugeValue, seconds(b.LastFailure)),
		prometheus.MustNewConstMetric(descBackupLastSize, prometheus.GaugeValue, float64(b.LastSize)),
		prometheus.MustNewConstMetric(descBackupKept, prometheus.GaugeValue, float64(b.Kept)),
		prometheus.MustNewConstMetric(descBackupRunning, prometheus.GaugeValue, running),
	}
}
