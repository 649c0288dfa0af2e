package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// What the simulated gateways count. Sizes matter here: the store packs
// counts as varints and leaves out zero fields, so a point's bytes depend
// on how many requests, latency buckets and body bytes a series has.

func groupName(g int) string       { return fmt.Sprintf("g%02d", g) }
func hostName(h int) string        { return fmt.Sprintf("host-%04d", h) }
func instanceName(g, i int) string { return fmt.Sprintf("%s-i%02d", groupName(g), i) }

// route is what a group's route serves, the same on each of its
// instances.
type route struct {
	service, name string
	// rate is the requests per second of one instance.
	rate float64
	// bucket is the latency bucket (traffic.LatencyBuckets) of most of
	// its requests.
	bucket int
	// in and out are the body bytes of a request and of its response.
	in, out uint64
}

// routesOf returns the routes of group g: five per service, a few busy
// ones and a long tail (the rate of the r-th is 20/(r+1) a second per
// instance), typical latencies of 1 to 25 ms, responses of 200 B to 5 kB,
// request bodies on a third of them.
func routesOf(g, n int) []route {
	rng := rand.New(rand.NewPCG(uint64(g), 0x7261))
	out := make([]route, n)
	for r := range out {
		out[r] = route{service: fmt.Sprintf("svc-%d", r/5), name: fmt.Sprintf("route-%02d", r),
			rate: 20 / float64(r+1), bucket: 2 + rng.IntN(5), out: 200 + rng.Uint64N(4800)}
		if r%3 == 0 {
			out[r].in = 100 + rng.Uint64N(900)
		}
	}
	return out
}

// latencyShape spreads a route's requests around its bucket: most in it,
// a quarter one slower, a few faster, a tail further up.
var latencyShape = []struct {
	offset int
	share  float64 // cumulative
}{{-1, 0.10}, {0, 0.70}, {1, 0.95}, {2, 0.99}, {4, 1}}

// observe adds n requests of route r to c, their latencies drawn from
// the route's shape shifted by shift buckets.
func observe(c *traffic.Counts, rng *rand.Rand, r *route, n uint64, shift int, in, out uint64) {
	c.Requests += n
	c.BytesIn += n * in
	c.BytesOut += n * out
	for range n {
		u := rng.Float64()
		i := 0
		for latencyShape[i].share < u {
			i++
		}
		b := min(max(r.bucket+shift+latencyShape[i].offset, 0), traffic.NumBuckets-2)
		lo := 0.0
		if b > 0 {
			lo = traffic.LatencyBuckets[b-1]
		}
		c.Latency[b]++
		c.LatencySumMicros += uint64((lo + rng.Float64()*(traffic.LatencyBuckets[b]-lo)) * 1e6)
	}
}

// instanceSeries appends an instance's increments over d: per route, a
// series of 2xx and one of 4xx (about 3 %, faster: refused early, small
// error bodies). Rates vary by ±20 % from one interval to the next; every
// series has at least one request, so that each instance has
// 2 × routes series in every batch.
func instanceSeries(out []traffic.DomainSeries, rng *rand.Rand, group, instance string, routes []route, d time.Duration) []traffic.DomainSeries {
	for i := range routes {
		r := &routes[i]
		n := max(1, uint64(r.rate*d.Seconds()*(0.8+0.4*rng.Float64())))
		errs := max(1, n*3/100)
		ok := traffic.DomainSeries{Group: group, Instance: instance,
			Series: traffic.Series{Key: traffic.Key{Service: r.service, Route: r.name, Class: traffic.Class2xx}}}
		bad := ok
		bad.Class = traffic.Class4xx
		observe(&ok.Counts, rng, r, n, 0, r.in, r.out)
		observe(&bad.Counts, rng, r, errs, -1, r.in, 100)
		out = append(out, ok, bad)
	}
	return out
}
