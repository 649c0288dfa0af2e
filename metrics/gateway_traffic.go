package metrics

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The gateway's traffic counts are what its node manager collects for the
// domain (metrics/traffic): per route, consumer and status class, the
// requests, bytes and a latency histogram, cumulative since the process
// started. They are kept beside the Prometheus metrics rather than read
// back from them, because a Prometheus histogram has no consumer or class
// label and a scrape would cost the text format's encoding and parsing
// every few seconds.

// classNames are the status classes by classIndex.
var classNames = [...]string{traffic.ClassNone, traffic.Class1xx, traffic.Class2xx, traffic.Class3xx, traffic.Class4xx, traffic.Class5xx}

// classIndex is the index in classNames of code's class: traffic.ClassOf
// as an array index, so that the request path compares no strings.
func classIndex(code int) int {
	if code >= 100 && code < 600 {
		return code / 100
	}
	return 0
}

// trafficCell is the counts of one route, consumer and class. Its
// requests are the sum of its latency buckets, which saves an atomic add
// per request.
type trafficCell struct {
	bytesIn, bytesOut, latencySum atomic.Uint64
	latency                       [traffic.NumBuckets]atomic.Uint64
}

func (c *trafficCell) add(total time.Duration, in, out int) {
	c.latency[traffic.BucketOf(total)].Add(1)
	c.latencySum.Add(uint64(max(total.Microseconds(), 0)))
	if in > 0 {
		c.bytesIn.Add(uint64(in))
	}
	if out > 0 {
		c.bytesOut.Add(uint64(out))
	}
}

func (c *trafficCell) read() traffic.Counts {
	out := traffic.Counts{
		BytesIn:          c.bytesIn.Load(),
		BytesOut:         c.bytesOut.Load(),
		LatencySumMicros: c.latencySum.Load(),
	}
	for i := range c.latency {
		out.Latency[i] = c.latency[i].Load()
		out.Requests += out.Latency[i]
	}
	return out
}

// consumerTraffic is one consumer's cells on a route, made at the first
// request of each class.
type consumerTraffic struct {
	consumer string
	classes  [len(classNames)]atomic.Pointer[trafficCell]
}

func (t *consumerTraffic) cell(class int) *trafficCell {
	if c := t.classes[class].Load(); c != nil {
		return c
	}
	c := new(trafficCell)
	if t.classes[class].CompareAndSwap(nil, c) {
		return c
	}
	return t.classes[class].Load()
}

func (t *consumerTraffic) appendSeries(out []traffic.Series, service, route string) []traffic.Series {
	for class := range t.classes {
		if c := t.classes[class].Load(); c != nil {
			key := traffic.Key{Service: service, Route: route, Consumer: t.consumer, Class: classNames[class]}
			out = append(out, traffic.Series{Key: key, Counts: c.read()})
		}
	}
	return out
}

// consumerTraffic returns the route's cells of consumer, adding them at
// its first request. Consumers come from the configuration, so a route
// has a bounded number of them.
func (r *Route) consumerTraffic(consumer string) *consumerTraffic {
	if consumer == "" {
		return &r.anonymous
	}
	if m := r.consumers.Load(); m != nil {
		if t, ok := (*m)[consumer]; ok {
			return t
		}
	}
	r.consumersMu.Lock()
	defer r.consumersMu.Unlock()
	cur := r.consumers.Load()
	if cur != nil {
		if t, ok := (*cur)[consumer]; ok {
			return t
		}
	}
	next := make(map[string]*consumerTraffic, 1)
	if cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	t := &consumerTraffic{consumer: consumer}
	next[consumer] = t
	r.consumers.Store(&next)
	return t
}

func (r *Route) appendTraffic(out []traffic.Series) []traffic.Series {
	out = r.anonymous.appendSeries(out, r.service, r.route)
	if m := r.consumers.Load(); m != nil {
		for _, t := range *m {
			out = t.appendSeries(out, r.service, r.route)
		}
	}
	return out
}

// Traffic reads the gateway's traffic counts: what it has served since it
// started, under every route it has had (routes removed by a later
// configuration keep their counts), requests that matched no route under
// service and route "". group, instance and boot name the gateway in the
// snapshot.
func (g *Gateway) Traffic(group, instance, boot string) traffic.Snapshot {
	g.trafficMu.Lock()
	defer g.trafficMu.Unlock()
	g.mu.Lock()
	routes := make([]*Route, 0, len(g.routes))
	for _, r := range g.routes {
		routes = append(routes, r)
	}
	g.mu.Unlock()
	snap := traffic.Snapshot{Group: group, Instance: instance, Boot: boot, At: time.Now(), Series: []traffic.Series{}}
	for _, r := range routes {
		snap.Series = r.appendTraffic(snap.Series)
	}
	slices.SortFunc(snap.Series, func(a, b traffic.Series) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Route, b.Route),
			cmp.Compare(a.Consumer, b.Consumer), cmp.Compare(a.Class, b.Class))
	})
	return snap
}
