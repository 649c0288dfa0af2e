package traffic

import (
	"math"
	"time"
)

// LatencyBuckets are the upper bounds of the latency buckets, in seconds,
// fixed so that histograms of different instances can be merged bucket by
// bucket. metrics.LatencyBuckets, the buckets of the Prometheus
// histograms, is this slice: it lives here so that package metrics, whose
// gateway counts Snapshots, can import this package.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NumBuckets is the number of latency buckets: one per bound of
// LatencyBuckets, and one for what is slower than the last.
const NumBuckets = 17

func init() {
	if len(LatencyBuckets)+1 != NumBuckets {
		panic("traffic: NumBuckets does not match LatencyBuckets")
	}
}

// Status classes.
const (
	Class1xx = "1xx"
	Class2xx = "2xx"
	Class3xx = "3xx"
	Class4xx = "4xx"
	Class5xx = "5xx"
	// ClassNone is an exchange that ended without a status (the client
	// went away first).
	ClassNone = "none"
)

var classes = [...]string{ClassNone, Class1xx, Class2xx, Class3xx, Class4xx, Class5xx}

// ClassOf is the class of a status code.
func ClassOf(code int) string {
	if code >= 100 && code < 600 {
		return classes[code/100]
	}
	return ClassNone
}

// Key names a series within a gateway, or (with Group and Instance in
// Series) within a domain.
type Key struct {
	Service string `json:"service"`
	Route   string `json:"route"`
	// Consumer is empty for anonymous requests.
	Consumer string `json:"consumer,omitempty"`
	Class    string `json:"class"`
}

// Counts are a series' counts: cumulative in a Snapshot, increments in a
// Batch, sums in the admin node's store.
type Counts struct {
	Requests uint64 `json:"requests"`
	BytesIn  uint64 `json:"bytes_in,omitempty"`
	BytesOut uint64 `json:"bytes_out,omitempty"`
	// Latency counts requests by duration: Latency[i] those above bound
	// i-1 and at most bound i of LatencyBuckets, the last those
	// above every bound. Buckets are not cumulative.
	Latency [NumBuckets]uint64 `json:"latency"`
	// LatencySumMicros is the sum of the durations, in microseconds.
	LatencySumMicros uint64 `json:"latency_sum_us,omitempty"`
}

// BucketOf is the index of the latency bucket of d.
func BucketOf(d time.Duration) int {
	s := d.Seconds()
	for i, b := range LatencyBuckets {
		if s <= b {
			return i
		}
	}
	return NumBuckets - 1
}

// Add adds o to c.
func (c *Counts) Add(o *Counts) {
	c.Requests += o.Requests
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.LatencySumMicros += o.LatencySumMicros
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
}

// Since returns c − prev, the increments from prev to c; ok is false when
// a count went down, which means c does not follow from prev.
func (c *Counts) Since(prev *Counts) (d Counts, ok bool) {
	sub := func(a, b uint64) uint64 {
		if a < b {
			ok = false
			return 0
		}
		return a - b
	}
	ok = true
	d.Requests = sub(c.Requests, prev.Requests)
	d.BytesIn = sub(c.BytesIn, prev.BytesIn)
	d.BytesOut = sub(c.BytesOut, prev.BytesOut)
	d.LatencySumMicros = sub(c.LatencySumMicros, prev.LatencySumMicros)
	for i := range c.Latency {
		d.Latency[i] = sub(c.Latency[i], prev.Latency[i])
	}
	return d, ok
}

// Zero reports whether c counts nothing.
func (c *Counts) Zero() bool { return c.Requests == 0 && c.BytesIn == 0 && c.BytesOut == 0 }

// Quantile estimates the q-quantile (0 < q < 1) of the latencies in c, in
// seconds, by linear interpolation inside the bucket where it falls; the
// bucket above the last bound reports that bound. NaN without requests.
func (c *Counts) Quantile(q float64) float64 {
	var total uint64
	for _, n := range c.Latency {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var seen uint64
	for i, n := range c.Latency {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		if i == NumBuckets-1 {
			return LatencyBuckets[NumBuckets-2]
		}
		lower := 0.0
		if i > 0 {
			lower = LatencyBuckets[i-1]
		}
		upper := LatencyBuckets[i]
		return lower + (upper-lower)*(rank-float64(seen))/float64(n)
	}
	return LatencyBuckets[NumBuckets-2]
}

// Series is one series' counts.
type Series struct {
	Key
	Counts
}

// Snapshot is what a gateway has counted since it started: GET /traffic
// on its status port, and its last word when it stops.
type Snapshot struct {
	Group    string `json:"group"`
	Instance string `json:"instance"`
	// Boot is unique to the gateway process: counts start again from zero
	// under a new one.
	Boot   string    `json:"boot"`
	At     time.Time `json:"at"`
	Series []Series  `json:"series"`
}

// Delta returns the increments from prev to cur. With no prev, or a prev
// of another process (a restart), cur's counts are all new. A series whose
// counts went down under the same boot is taken as new too, so that
// nothing is lost; reset reports that it happened.
func Delta(prev *Snapshot, cur *Snapshot) (out []Series, reset bool) {
	old := map[Key]*Counts{}
	if prev != nil && prev.Boot == cur.Boot {
		for i := range prev.Series {
			old[prev.Series[i].Key] = &prev.Series[i].Counts
		}
	} else if prev != nil {
		reset = true
	}
	for i := range cur.Series {
		s := &cur.Series[i]
		d := s.Counts
		if p, ok := old[s.Key]; ok {
			var fine bool
			if d, fine = s.Counts.Since(p); !fine {
				d, reset = s.Counts, true
			}
		}
		if !d.Zero() {
			out = append(out, Series{Key: s.Key, Counts: d})
		}
	}
	return out, reset
}

// DomainSeries is a series of one instance of a group.
type DomainSeries struct {
	Group    string `json:"group"`
	Instance string `json:"instance"`
	Series
}

// Batch is one delta batch of a node manager: the increments of its
// gateways' counts between two collections.
type Batch struct {
	// Node and Seq identify the batch: Seq grows by one per batch of the
	// node, so the admin node stores each batch once and can tell a gap.
	Node string `json:"node"`
	Seq  uint64 `json:"seq"`
	// Start and End bound when the increments happened: End is when the
	// gateways were read, Start the previous reading.
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end"`
	Series []DomainSeries `json:"series"`
	// Dropped counts the batches the node has dropped since it joined,
	// because its spool was full or they were too old: a loss the admin
	// node reports, never silently.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Ack is the admin node's answer to a batch: every batch up to Seq is
// stored, the node may delete them from its spool.
type Ack struct {
	Seq uint64 `json:"seq"`
}
