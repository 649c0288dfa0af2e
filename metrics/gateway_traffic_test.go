package metrics

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

func TestClassIndexIsClassOf(t *testing.T) {
	for _, code := range []int{-1, 0, 99, 100, 101, 200, 204, 304, 404, 499, 500, 599, 600, 999} {
		if got, want := classNames[classIndex(code)], traffic.ClassOf(code); got != want {
			t.Errorf("class of %d = %s, traffic.ClassOf says %s", code, got, want)
		}
	}
}

func TestTraffic(t *testing.T) {
	g := NewGateway(prometheus.NewRegistry(), "edge")
	orders := g.Route("shop", "orders")
	orders.Observe("", 200, 3*time.Millisecond, time.Millisecond, 10, 100)
	orders.Observe("", 201, 20*time.Millisecond, 0, -1, -1)
	orders.Observe("alice", 200, time.Millisecond, 0, 5, 7)
	orders.Observe("alice", 503, 2*time.Minute, 0, 0, 0)
	g.Route("", "").Observe("", 404, 0, 0, -1, -1)

	snap := g.Traffic("edge", "edge-1", "b1")
	if snap.Group != "edge" || snap.Instance != "edge-1" || snap.Boot != "b1" || snap.At.IsZero() {
		t.Fatalf("snapshot names %+v", snap)
	}
	want := map[traffic.Key]traffic.Counts{
		{Service: "", Route: "", Class: traffic.Class4xx}: {Requests: 1},
		{Service: "shop", Route: "orders", Class: traffic.Class2xx}: {Requests: 2, BytesIn: 10, BytesOut: 100,
			LatencySumMicros: 23000},
		{Service: "shop", Route: "orders", Consumer: "alice", Class: traffic.Class2xx}: {Requests: 1, BytesIn: 5, BytesOut: 7,
			LatencySumMicros: 1000},
		{Service: "shop", Route: "orders", Consumer: "alice", Class: traffic.Class5xx}: {Requests: 1, LatencySumMicros: 120e6},
	}
	set := func(k traffic.Key, bucket int, n uint64) {
		c := want[k]
		c.Latency[bucket] += n
		want[k] = c
	}
	set(traffic.Key{Class: traffic.Class4xx}, 0, 1)
	set(traffic.Key{Service: "shop", Route: "orders", Class: traffic.Class2xx}, traffic.BucketOf(3*time.Millisecond), 1)
	set(traffic.Key{Service: "shop", Route: "orders", Class: traffic.Class2xx}, traffic.BucketOf(20*time.Millisecond), 1)
	set(traffic.Key{Service: "shop", Route: "orders", Consumer: "alice", Class: traffic.Class2xx}, traffic.BucketOf(time.Millisecond), 1)
	set(traffic.Key{Service: "shop", Route: "orders", Consumer: "alice", Class: traffic.Class5xx}, traffic.NumBuckets-1, 1)
	if len(snap.Series) != len(want) {
		t.Fatalf("%d series, want %d: %+v", len(snap.Series), len(want), snap.Series)
	}
	for i, s := range snap.Series {
		if s.Counts != want[s.Key] {
			t.Errorf("%+v: %+v, want %+v", s.Key, s.Counts, want[s.Key])
		}
		if i > 0 && !keyLess(snap.Series[i-1].Key, s.Key) {
			t.Errorf("series not sorted: %+v before %+v", snap.Series[i-1].Key, s.Key)
		}
	}
}

func keyLess(a, b traffic.Key) bool {
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	if a.Route != b.Route {
		return a.Route < b.Route
	}
	if a.Consumer != b.Consumer {
		return a.Consumer < b.Consumer
	}
	return a.Class < b.Class
}

// Readings taken while requests are counted never go down, so that the
// node manager's deltas between them are never negative.
func TestTrafficReadingsGrow(t *testing.T) {
	g := NewGateway(prometheus.NewRegistry(), "edge")
	r := g.Route("s", "r")
	var wg sync.WaitGroup
	const workers, each = 4, 2000
	for w := range workers {
		wg.Go(func() {
			consumer := []string{"", "bob"}[w%2]
			for range each {
				r.Observe(consumer, 200, time.Millisecond, 0, 1, 1)
			}
		})
	}
	prev := g.Traffic("edge", "i", "b")
	for range 50 {
		cur := g.Traffic("edge", "i", "b")
		if _, reset := traffic.Delta(&prev, &cur); reset {
			t.Fatal("a later reading counts less than an earlier one")
		}
		prev = cur
	}
	wg.Wait()
	var total uint64
	for _, s := range g.Traffic("edge", "i", "b").Series {
		total += s.Requests
	}
	if total != workers*each {
		t.Fatalf("counted %d requests, want %d", total, workers*each)
	}
}

// Once a route, consumer and class have been seen, counting allocates
// nothing: Observe is on every request's path.
func TestObserveDoesNotAllocate(t *testing.T) {
	g := NewGateway(prometheus.NewRegistry(), "edge")
	r := g.Route("s", "r")
	r.Observe("alice", 200, time.Millisecond, time.Millisecond, 1, 1)
	r.Observe("", 200, time.Millisecond, time.Millisecond, 1, 1)
	if n := testing.AllocsPerRun(100, func() {
		r.Observe("alice", 200, time.Millisecond, time.Millisecond, 1, 1)
		r.Observe("", 200, time.Millisecond, time.Millisecond, 1, 1)
	}); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	g := NewGateway(prometheus.NewRegistry(), "edge")
	r := g.Route("s", "r")
	for _, consumer := range []string{"", "alice"} {
		b.Run("consumer="+consumer, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Observe(consumer, 200, 3*time.Millisecond, time.Millisecond, 100, 1000)
			}
		})
	}
}
