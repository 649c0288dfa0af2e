package store

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/internal/boltfile"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

var limits = TrafficLimits{MaxRoutes: 100, MaxConsumers: 100}

// series is n requests of a route of group edge on instance i1, each
// taking latency.
func series(route, consumer, class string, n uint64, latency time.Duration) traffic.DomainSeries {
	s := traffic.DomainSeries{Group: "edge", Instance: "i1",
		Series: traffic.Series{Key: traffic.Key{Service: "svc", Route: route, Consumer: consumer, Class: class}}}
	s.Requests, s.BytesIn, s.BytesOut = n, 10*n, 100*n
	s.Latency[traffic.BucketOf(latency)] = n
	s.LatencySumMicros = n * uint64(latency/time.Microsecond)
	return s
}

// batch is a node's batch of the 10 s from at: counted in the point of at.
func batch(node string, seq uint64, at time.Time, ss ...traffic.DomainSeries) traffic.Batch {
	return traffic.Batch{Node: node, Seq: seq, Start: at, End: at.Add(10 * time.Second), Series: ss}
}

func trafficStore(t *testing.T) *Bolt {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	return s
}

func ingest(t *testing.T, s Store, b traffic.Batch, now time.Time) TrafficIngest {
	t.Helper()
	return must[TrafficIngest](t)(s.IngestTraffic(ctx, b, limits, now))
}

func query(t *testing.T, s Store, q TrafficQuery) TrafficResult {
	t.Helper()
	if q.Group == "" {
		q.Group = "edge"
	}
	return must[TrafficResult](t)(s.QueryTraffic(ctx, q))
}

func TestCountsEncoding(t *testing.T) {
	for _, c := range []traffic.Counts{{}, series("r", "", "2xx", 7, 3*time.Millisecond).Counts, {Requests: 1 << 60, Latency: [traffic.NumBuckets]uint64{16: 3}}} {
		var got traffic.Counts
		if rest, err := decodeCounts(encodeCounts(nil, &c), &got); err != nil || got != c || len(rest) != 0 {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	if n := len(encodeCounts(nil, new(series("r", "", "2xx", 7, 3*time.Millisecond).Counts))); n > 12 {
		t.Errorf("a one-bucket point takes %d bytes", n)
	}
}

func TestPointTime(t *testing.T) {
	end := t0.Add(20*time.Second + 300*time.Millisecond)
	for _, tc := range []struct {
		start time.Time
		want  time.Time
	}{
		{end.Add(-10 * time.Second), t0.Add(15*time.Second + 300*time.Millisecond)}, // the middle of a 10 s batch
		{end.Add(-time.Hour), t0.Add(15*time.Second + 300*time.Millisecond)},        // of the last 10 s of a long one
		{end.Add(-4 * time.Second), t0.Add(18*time.Second + 300*time.Millisecond)},
		{time.Time{}, t0.Add(15*time.Second + 300*time.Millisecond)},
		{end, end},
	} {
		if got := pointTime(&traffic.Batch{Start: tc.start, End: end}); !got.Equal(tc.want) {
			t.Errorf("batch from %s to %s counted at %s, want %s", tc.start, end, got, tc.want)
		}
	}
}

func TestIngestDedupeAndQuery(t *testing.T) {
	s := trafficStore(t)
	end := t0.Add(10 * time.Second)
	b1 := batch("h1", 1, end, series("r1", "", "2xx", 90, 2*time.Millisecond), series("r1", "", "5xx", 10, 200*time.Millisecond))
	if got := ingest(t, s, b1, end); !got.Stored || got.Ack != 1 || got.Lost != 0 {
		t.Fatalf("first batch: %+v", got)
	}
	// The same batch again (the acknowledgement was lost): not counted twice.
	if got := ingest(t, s, b1, end); got.Stored || got.Ack != 1 {
		t.Fatalf("retry: %+v", got)
	}
	// Seq 2 and 3 never arrive; 4 is stored and the gap is counted.
	b4 := batch("h1", 4, end.Add(time.Second), series("r1", "", "2xx", 50, 2*time.Millisecond))
	b4.Dropped = 2
	if got := ingest(t, s, b4, end); !got.Stored || got.Ack != 4 || got.Lost != 2 {
		t.Fatalf("batch after a gap: %+v", got)
	}
	if got := ingest(t, s, batch("h1", 3, end), end); got.Stored || got.Ack != 4 {
		t.Fatalf("late lower seq: %+v", got)
	}
	nodes := must[[]TrafficNode](t)(s.ListTrafficNodes(ctx))
	if len(nodes) != 1 || nodes[0].LastSeq != 4 || nodes[0].Batches != 2 || nodes[0].Duplicates != 2 || nodes[0].Lost != 2 || nodes[0].Dropped != 2 || nodes[0].Series != 3 {
		t.Fatalf("node record %+v", nodes)
	}

	r := query(t, s, TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: TrafficFine, Resolution: TrafficFine})
	if len(r.Points) != 3 || r.Points[1].Requests != 150 || r.Points[0].Requests != 0 || r.Points[2].Requests != 0 {
		t.Fatalf("points %+v", r.Points)
	}
	if r.Total.Requests != 150 || r.Total.Class("2xx") != 140 || r.Total.Class("5xx") != 10 || r.Total.BytesOut != 15000 {
		t.Fatalf("total %+v", r.Total)
	}
	if p99 := r.Total.Quantile(0.99); p99 <= 0.1 || p99 > 0.25 {
		t.Errorf("p99 %v, want in the 200 ms bucket", p99)
	}
	r = query(t, s, TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: TrafficFine, Resolution: TrafficFine,
		Filter: TrafficFilter{Route: "r1"}, By: ByInstance})
	if r.Total.Requests != 150 || len(r.Breakdown) != 1 || r.Breakdown[0].Labels.Instance != "i1" {
		t.Fatalf("breakdown %+v", r.Breakdown)
	}
	if r := query(t, s, TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: TrafficFine, Resolution: TrafficFine,
		Filter: TrafficFilter{Route: "r2"}}); r.Total.Requests != 0 {
		t.Errorf("filter on another route: %+v", r.Total)
	}

	// A new node manager for the host starts again at 1.
	if err := s.ResetTrafficNode(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	b := batch("h1", 1, end, series("r1", "", "2xx", 1, time.Millisecond))
	b.Dropped = 1
	if got := ingest(t, s, b, end); !got.Stored || got.Ack != 1 {
		t.Fatalf("after a new join: %+v", got)
	}
	if n := must[[]TrafficNode](t)(s.ListTrafficNodes(ctx))[0]; n.Dropped != 3 {
		t.Errorf("dropped after a new join %d, want 2 before and 1 since", n.Dropped)
	}

	totals := must[[]TrafficGroup](t)(s.TrafficTotals(ctx))
	if len(totals) != 1 || len(totals[0].Totals) != 2 || totals[0].Totals[0].Class != "2xx" || totals[0].Totals[0].Requests != 141 || totals[0].Totals[1].Requests != 10 {
		t.Errorf("totals %+v", totals)
	}
}

func TestIngestRefusals(t *testing.T) {
	s := trafficStore(t)
	for name, b := range map[string]traffic.Batch{
		"no node":   batch("", 1, t0),
		"seq 0":     batch("h1", 0, t0),
		"no end":    {Node: "h1", Seq: 1},
		"bad class": batch("h1", 1, t0, series("r", "", "6xx", 1, 0)),
	} {
		if _, err := s.IngestTraffic(ctx, b, limits, t0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// A series of a group that no longer exists is skipped, the rest stored.
	gone := series("r", "", "2xx", 5, 0)
	gone.Group = "gone"
	if got := ingest(t, s, batch("h1", 1, t0, gone, series("r", "", "2xx", 3, 0)), t0); got.Skipped != 1 || !got.Stored {
		t.Fatalf("batch with a missing group: %+v", got)
	}
	if _, err := s.QueryTraffic(ctx, TrafficQuery{Group: "gone", From: t0, To: t0.Add(time.Minute), Step: TrafficFine, Resolution: TrafficFine}); !errors.Is(err, ErrNotFound) {
		t.Errorf("query of a missing group: %v", err)
	}
	for name, q := range map[string]TrafficQuery{
		"step below resolution": {From: t0, To: t0.Add(time.Hour), Step: TrafficFine, Resolution: TrafficCoarse},
		"unaligned":             {From: t0.Add(5 * time.Second), To: t0.Add(time.Hour), Step: TrafficFine, Resolution: TrafficFine},
		"empty range":           {From: t0, To: t0, Step: TrafficFine, Resolution: TrafficFine},
		"bad breakdown":         {From: t0, To: t0.Add(time.Hour), Step: TrafficFine, Resolution: TrafficFine, By: "class"},
	} {
		q.Group = "edge"
		if _, err := s.QueryTraffic(ctx, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// Deleting the group deletes its traffic: a new group of that name
	// starts empty.
	if err := s.DeleteGroup(ctx, "edge"); err != nil {
		t.Fatal(err)
	}
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	if r := query(t, s, TrafficQuery{From: t0, To: t0.Add(time.Minute), Step: TrafficFine, Resolution: TrafficFine}); r.Total.Requests != 0 {
		t.Errorf("traffic of a deleted group survived: %+v", r.Total)
	}
	if len(must[[]TrafficGroup](t)(s.TrafficTotals(ctx))) != 0 {
		t.Error("totals of a deleted group survived")
	}
}

// An hour of traffic, one batch every 10 s, then the clock moves: the
// 10 s points are rolled up into minutes, which answer the same totals;
// past 24 h the 10 s points go, past 30 days the minutes.
func TestRollupAndPrune(t *testing.T) {
	s := trafficStore(t)
	var seq uint64
	for at := t0; at.Before(t0.Add(time.Hour)); at = at.Add(10 * time.Second) {
		seq++
		ingest(t, s, batch("h1", seq, at, series("r1", "", "2xx", 6, time.Millisecond), series("r1", "", "4xx", 1, time.Millisecond)), at)
	}
	hour := TrafficQuery{From: t0, To: t0.Add(time.Hour), Step: time.Hour, Resolution: TrafficCoarse}
	// Nothing is rolled up yet: the minutes are read from the 10 s points.
	if r := query(t, s, hour); r.Total.Requests != 360*7 {
		t.Fatalf("before roll-up: %d requests, want %d", r.Total.Requests, 360*7)
	}
	m := must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(time.Hour+time.Minute)))
	if m.RolledUp != 60 || m.Pruned != 0 {
		t.Fatalf("maintenance %+v, want 60 minute points of the instance", m)
	}
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		q := hour
		q.Step = step
		r := query(t, s, q)
		if r.Total.Requests != 360*7 || r.Total.Class("4xx") != 360 {
			t.Fatalf("step %s after roll-up: %+v", step, r.Total)
		}
		if step == time.Minute && (len(r.Points) != 60 || r.Points[59].Requests != 42) {
			t.Fatalf("minute points %d, last %+v", len(r.Points), r.Points[len(r.Points)-1])
		}
	}
	// A batch of a minute already rolled up (a node manager back after an
	// outage) is counted at both resolutions.
	seq++
	ingest(t, s, batch("h1", seq, t0, series("r1", "", "2xx", 1000, time.Millisecond)), t0.Add(2*time.Hour))
	if r := query(t, s, hour); r.Total.Requests != 360*7+1000 {
		t.Fatalf("late batch at 1 min: %d", r.Total.Requests)
	}
	fine := hour
	fine.Step, fine.Resolution = TrafficFine, TrafficFine
	if r := query(t, s, fine); r.Total.Requests != 360*7+1000 || r.Points[0].Requests != 1007 {
		t.Fatalf("late batch at 10 s: %d, first point %d", r.Total.Requests, r.Points[0].Requests)
	}
	if m := must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(2*time.Hour))); m.RolledUp != 0 || m.Pruned != 0 {
		t.Fatalf("second maintenance %+v, want nothing to do", m)
	}

	// A day later the 10 s points are gone, the minutes still answer.
	m = must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(25*time.Hour)))
	if m.Pruned != 360 {
		t.Fatalf("maintenance a day later %+v, want the 360 10 s points pruned", m)
	}
	if r := query(t, s, fine); r.Total.Requests != 0 {
		t.Errorf("10 s points after 24 h: %d requests", r.Total.Requests)
	}
	if r := query(t, s, hour); r.Total.Requests != 360*7+1000 {
		t.Errorf("minutes after 24 h: %d requests", r.Total.Requests)
	}
	// After 30 days the minutes go too, and the route no longer counts
	// against the limit; the running totals stay.
	m = must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(31*24*time.Hour)))
	if m.Pruned != 60 || m.Forgotten != 1 {
		t.Fatalf("maintenance after 31 days %+v", m)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrafficGroups).Bucket([]byte("edge")).ForEach(func(k, _ []byte) error {
			if k[0] == prefixSeries || k[0] == prefixSeriesID {
				t.Errorf("series dictionary still holds %q after 31 days", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := query(t, s, hour); r.Total.Requests != 0 {
		t.Errorf("minutes after 30 days: %d requests", r.Total.Requests)
	}
	g := must[[]TrafficGroup](t)(s.TrafficTotals(ctx))[0]
	if g.Routes != 0 || len(g.Totals) != 2 || g.Totals[0].Requests != 360*6+1000 {
		t.Errorf("group after 30 days %+v", g)
	}
}

func TestFoldBeyondLimits(t *testing.T) {
	s := trafficStore(t)
	lim := TrafficLimits{MaxRoutes: 2, MaxConsumers: 1}
	b := batch("h1", 1, t0,
		series("r1", "alice", "2xx", 1, 0),
		series("r2", "alice", "2xx", 2, 0),
		series("r3", "bob", "2xx", 4, 0), // a third route and a second consumer
		series("r1", "carol", "2xx", 8, 0),
	)
	stranger := series("x", "", "2xx", 16, 0)
	stranger.Service = "unknown" // a new service beyond the limit folds whole
	b.Series = append(b.Series, stranger)
	got := must[TrafficIngest](t)(s.IngestTraffic(ctx, b, lim, t0))
	if got.Folded != 3 {
		t.Fatalf("folded %d series, want 3", got.Folded)
	}
	r := query(t, s, TrafficQuery{Group: "edge", From: t0, To: t0.Add(time.Minute), Step: time.Minute, Resolution: TrafficFine, By: ByRoute})
	if !r.Folded || r.Total.Requests != 31 {
		t.Fatalf("answer %+v", r)
	}
	want := map[TrafficFilter]uint64{{Service: "svc", Route: "r1"}: 9, {Service: "svc", Route: "r2"}: 2,
		{Service: "svc", Route: OtherLabel}: 4, {Service: OtherLabel, Route: OtherLabel}: 16}
	if len(r.Breakdown) != len(want) {
		t.Fatalf("breakdown %+v", r.Breakdown)
	}
	for _, bd := range r.Breakdown {
		if want[bd.Labels] != bd.Requests {
			t.Errorf("%+v: %d requests, want %d", bd.Labels, bd.Requests, want[bd.Labels])
		}
	}
	r = query(t, s, TrafficQuery{Group: "edge", From: t0, To: t0.Add(time.Minute), Step: time.Minute, Resolution: TrafficFine, By: ByConsumer})
	if r.Breakdown[0].Labels.Consumer != "" || r.Breakdown[0].Requests != 16 || r.Breakdown[1].Labels.Consumer != OtherLabel || r.Breakdown[1].Requests != 12 {
		t.Errorf("consumers %+v", r.Breakdown)
	}
	g := must[[]TrafficGroup](t)(s.TrafficTotals(ctx))[0]
	if g.Routes != 2 || g.Consumers != 1 || g.FoldedRoutes != 20 || g.FoldedConsumers != 12 {
		t.Errorf("fold counts %+v", g)
	}
}

// A version 3 file (no traffic buckets) upgrades in place, keeps its
// records and takes batches.
func TestUpgradeFromVersion3(t *testing.T) {
	s, path := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	s.Close()
	s2 := reopenAtSchema(t, path, "3", bucketTraffic10s, bucketTraffic1m, bucketTrafficGroups, bucketTrafficNodes)
	if got := ingest(t, s2, batch("h1", 1, t0, series("r", "", "2xx", 3, 0)), t0); !got.Stored {
		t.Fatalf("ingest after upgrade: %+v", got)
	}
	if r := query(t, s2, TrafficQuery{From: t0, To: t0.Add(time.Minute), Step: TrafficFine, Resolution: TrafficFine}); r.Total.Requests != 3 {
		t.Errorf("query after upgrade: %+v", r.Total)
	}
	err := s2.db.View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(boltfile.MetaBucket).Get(boltfile.SchemaKey)); v != fmt.Sprint(SchemaVersion) {
			t.Errorf("schema after upgrade %s", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// benchSeries are a node manager's batch: 10 instances of a group of 20
// routes, 50 requests of two classes each.
func benchSeries() []traffic.DomainSeries {
	var ss []traffic.DomainSeries
	for i := range 10 {
		for r := range 20 {
			for _, class := range []string{traffic.Class2xx, traffic.Class4xx} {
				x := series(fmt.Sprintf("route-%02d", r), "", class, 50, time.Duration(r+1)*time.Millisecond)
				x.Instance = fmt.Sprintf("edge-%02d", i)
				ss = append(ss, x)
			}
		}
	}
	return ss
}

// BenchmarkIngestTraffic stores batches of a node manager with 10
// instances of a group of 20 routes, two classes each, every 10 s, and
// reports the series stored per second and the file's bytes per point.
func BenchmarkIngestTraffic(b *testing.B) {
	s, path := open(b)
	if _, err := s.CreateGroup(ctx, Group{Name: "edge"}); err != nil {
		b.Fatal(err)
	}
	ss := benchSeries()
	b.ResetTimer()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if _, err := s.IngestTraffic(ctx, batch("h1", uint64(i+1), at, ss...), limits, at); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(ss))/b.Elapsed().Seconds(), "series/s")
	if fi, err := os.Stat(path); err == nil && b.N >= 100 {
		b.ReportMetric(float64(fi.Size())/float64(b.N*len(ss)), "file-bytes/point")
	}
	s.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketTraffic10s).Bucket([]byte("edge")).Stats()
		b.ReportMetric(float64(st.LeafInuse+st.BranchInuse+st.LeafOverflowN*4096)/float64(b.N*len(ss)), "used-bytes/point")
		return nil
	})
}

// BenchmarkQueryTraffic24h queries a day at 1 min of a group of 10
// instances × 20 routes × 2 classes.
func BenchmarkQueryTraffic24h(b *testing.B) {
	s, _ := open(b)
	if _, err := s.CreateGroup(ctx, Group{Name: "edge"}); err != nil {
		b.Fatal(err)
	}
	ss := benchSeries()
	for i := range 24 * 60 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if _, err := s.IngestTraffic(ctx, batch("h1", uint64(i+1), at, ss...), limits, at); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.MaintainTraffic(ctx, t0.Add(25*time.Hour)); err != nil {
		b.Fatal(err)
	}
	q := TrafficQuery{Group: "edge", From: t0, To: t0.Add(24 * time.Hour), Step: time.Minute, Resolution: TrafficCoarse}
	b.ResetTimer()
	for range b.N {
		r, err := s.QueryTraffic(ctx, q)
		if err != nil || r.Total.Requests != 24*60*uint64(len(ss))*50 {
			b.Fatalf("%d requests, %v", r.Total.Requests, err)
		}
	}
}
