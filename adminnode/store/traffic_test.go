package store

import (
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

// After 30 days without traffic a series leaves the group's dictionary
// with its last points.
func TestSeriesDictionaryForgotten(t *testing.T) {
	s, _ := open(t)
	must[Group](t)(s.CreateGroup(ctx, Group{Name: "edge"}))
	ingest(t, s, batch("h1", 1, t0, series("r1", "", "2xx", 6, time.Millisecond)), t0)
	must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(time.Hour)))
	must[TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(31*24*time.Hour)))
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
}
