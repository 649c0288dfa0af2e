package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

var limits = store.TrafficLimits{MaxRoutes: 100, MaxConsumers: 100}

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

func trafficStore(t *testing.T, open Opener) store.Store {
	s := open(t)
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	return s
}

func ingest(t *testing.T, s store.Store, b traffic.Batch, now time.Time) store.TrafficIngest {
	t.Helper()
	return must[store.TrafficIngest](t)(s.IngestTraffic(ctx, b, limits, now))
}

func query(t *testing.T, s store.Store, q store.TrafficQuery) store.TrafficResult {
	t.Helper()
	if q.Group == "" {
		q.Group = "edge"
	}
	return must[store.TrafficResult](t)(s.QueryTraffic(ctx, q))
}

func testIngestDedupeAndQuery(t *testing.T, open Opener) {
	s := trafficStore(t, open)
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
	nodes := must[[]store.TrafficNode](t)(s.ListTrafficNodes(ctx))
	if len(nodes) != 1 || nodes[0].LastSeq != 4 || nodes[0].Batches != 2 || nodes[0].Duplicates != 2 || nodes[0].Lost != 2 || nodes[0].Dropped != 2 || nodes[0].Series != 3 {
		t.Fatalf("node record %+v", nodes)
	}

	r := query(t, s, store.TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: store.TrafficFine, Resolution: store.TrafficFine})
	if len(r.Points) != 3 || r.Points[1].Requests != 150 || r.Points[0].Requests != 0 || r.Points[2].Requests != 0 {
		t.Fatalf("points %+v", r.Points)
	}
	if r.Total.Requests != 150 || r.Total.Class("2xx") != 140 || r.Total.Class("5xx") != 10 || r.Total.BytesOut != 15000 {
		t.Fatalf("total %+v", r.Total)
	}
	if p99 := r.Total.Quantile(0.99); p99 <= 0.1 || p99 > 0.25 {
		t.Errorf("p99 %v, want in the 200 ms bucket", p99)
	}
	r = query(t, s, store.TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: store.TrafficFine, Resolution: store.TrafficFine,
		Filter: store.TrafficFilter{Route: "r1"}, By: store.ByInstance})
	if r.Total.Requests != 150 || len(r.Breakdown) != 1 || r.Breakdown[0].Labels.Instance != "i1" {
		t.Fatalf("breakdown %+v", r.Breakdown)
	}
	if r := query(t, s, store.TrafficQuery{From: t0, To: t0.Add(30 * time.Second), Step: store.TrafficFine, Resolution: store.TrafficFine,
		Filter: store.TrafficFilter{Route: "r2"}}); r.Total.Requests != 0 {
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
	if n := must[[]store.TrafficNode](t)(s.ListTrafficNodes(ctx))[0]; n.Dropped != 3 {
		t.Errorf("dropped after a new join %d, want 2 before and 1 since", n.Dropped)
	}

	totals := must[[]store.TrafficGroup](t)(s.TrafficTotals(ctx))
	if len(totals) != 1 || len(totals[0].Totals) != 2 || totals[0].Totals[0].Class != "2xx" || totals[0].Totals[0].Requests != 141 || totals[0].Totals[1].Requests != 10 {
		t.Errorf("totals %+v", totals)
	}
}

func testIngestRefusals(t *testing.T, open Opener) {
	s := trafficStore(t, open)
	for name, b := range map[string]traffic.Batch{
		"no node":   batch("", 1, t0),
		"seq 0":     batch("h1", 0, t0),
		"no end":    {Node: "h1", Seq: 1},
		"bad class": batch("h1", 1, t0, series("r", "", "6xx", 1, 0)),
	} {
		if _, err := s.IngestTraffic(ctx, b, limits, t0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// A series of a group that no longer exists is skipped, the rest stored.
	gone := series("r", "", "2xx", 5, 0)
	gone.Group = "gone"
	if got := ingest(t, s, batch("h1", 1, t0, gone, series("r", "", "2xx", 3, 0)), t0); got.Skipped != 1 || !got.Stored {
		t.Fatalf("batch with a missing group: %+v", got)
	}
	if _, err := s.QueryTraffic(ctx, store.TrafficQuery{Group: "gone", From: t0, To: t0.Add(time.Minute), Step: store.TrafficFine, Resolution: store.TrafficFine}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("query of a missing group: %v", err)
	}
	for name, q := range map[string]store.TrafficQuery{
		"step below resolution": {From: t0, To: t0.Add(time.Hour), Step: store.TrafficFine, Resolution: store.TrafficCoarse},
		"unaligned":             {From: t0.Add(5 * time.Second), To: t0.Add(time.Hour), Step: store.TrafficFine, Resolution: store.TrafficFine},
		"empty range":           {From: t0, To: t0, Step: store.TrafficFine, Resolution: store.TrafficFine},
		"bad breakdown":         {From: t0, To: t0.Add(time.Hour), Step: store.TrafficFine, Resolution: store.TrafficFine, By: "class"},
	} {
		q.Group = "edge"
		if _, err := s.QueryTraffic(ctx, q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// Deleting the group deletes its traffic: a new group of that name
	// starts empty.
	if err := s.DeleteGroup(ctx, "edge"); err != nil {
		t.Fatal(err)
	}
	must[store.Group](t)(s.CreateGroup(ctx, store.Group{Name: "edge"}))
	if r := query(t, s, store.TrafficQuery{From: t0, To: t0.Add(time.Minute), Step: store.TrafficFine, Resolution: store.TrafficFine}); r.Total.Requests != 0 {
		t.Errorf("traffic of a deleted group survived: %+v", r.Total)
	}
	if len(must[[]store.TrafficGroup](t)(s.TrafficTotals(ctx))) != 0 {
		t.Error("totals of a deleted group survived")
	}
}

// An hour of traffic, one batch every 10 s, then the clock moves: the
// 10 s points are rolled up into minutes, which answer the same totals;
// past 24 h the 10 s points go, past 30 days the minutes.
func testRollupAndPrune(t *testing.T, open Opener) {
	s := trafficStore(t, open)
	var seq uint64
	for at := t0; at.Before(t0.Add(time.Hour)); at = at.Add(10 * time.Second) {
		seq++
		ingest(t, s, batch("h1", seq, at, series("r1", "", "2xx", 6, time.Millisecond), series("r1", "", "4xx", 1, time.Millisecond)), at)
	}
	hour := store.TrafficQuery{From: t0, To: t0.Add(time.Hour), Step: time.Hour, Resolution: store.TrafficCoarse}
	// Nothing is rolled up yet: the minutes are read from the 10 s points.
	if r := query(t, s, hour); r.Total.Requests != 360*7 {
		t.Fatalf("before roll-up: %d requests, want %d", r.Total.Requests, 360*7)
	}
	m := must[store.TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(time.Hour+time.Minute)))
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
	fine.Step, fine.Resolution = store.TrafficFine, store.TrafficFine
	if r := query(t, s, fine); r.Total.Requests != 360*7+1000 || r.Points[0].Requests != 1007 {
		t.Fatalf("late batch at 10 s: %d, first point %d", r.Total.Requests, r.Points[0].Requests)
	}
	if m := must[store.TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(2*time.Hour))); m.RolledUp != 0 || m.Pruned != 0 {
		t.Fatalf("second maintenance %+v, want nothing to do", m)
	}

	// A day later the 10 s points are gone, the minutes still answer.
	m = must[store.TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(25*time.Hour)))
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
	m = must[store.TrafficMaintenance](t)(s.MaintainTraffic(ctx, t0.Add(31*24*time.Hour)))
	if m.Pruned != 60 || m.Forgotten != 1 {
		t.Fatalf("maintenance after 31 days %+v", m)
	}
	if r := query(t, s, hour); r.Total.Requests != 0 {
		t.Errorf("minutes after 30 days: %d requests", r.Total.Requests)
	}
	g := must[[]store.TrafficGroup](t)(s.TrafficTotals(ctx))[0]
	if g.Routes != 0 || len(g.Totals) != 2 || g.Totals[0].Requests != 360*6+1000 {
		t.Errorf("group after 30 days %+v", g)
	}
}

func testFoldBeyondLimits(t *testing.T, open Opener) {
	s := trafficStore(t, open)
	lim := store.TrafficLimits{MaxRoutes: 2, MaxConsumers: 1}
	b := batch("h1", 1, t0,
		series("r1", "alice", "2xx", 1, 0),
		series("r2", "alice", "2xx", 2, 0),
		series("r3", "bob", "2xx", 4, 0), // a third route and a second consumer
		series("r1", "carol", "2xx", 8, 0),
	)
	stranger := series("x", "", "2xx", 16, 0)
	stranger.Service = "unknown" // a new service beyond the limit folds whole
	b.Series = append(b.Series, stranger)
	got := must[store.TrafficIngest](t)(s.IngestTraffic(ctx, b, lim, t0))
	if got.Folded != 3 {
		t.Fatalf("folded %d series, want 3", got.Folded)
	}
	r := query(t, s, store.TrafficQuery{Group: "edge", From: t0, To: t0.Add(time.Minute), Step: time.Minute, Resolution: store.TrafficFine, By: store.ByRoute})
	if !r.Folded || r.Total.Requests != 31 {
		t.Fatalf("answer %+v", r)
	}
	want := map[store.TrafficFilter]uint64{{Service: "svc", Route: "r1"}: 9, {Service: "svc", Route: "r2"}: 2,
		{Service: "svc", Route: store.OtherLabel}: 4, {Service: store.OtherLabel, Route: store.OtherLabel}: 16}
	if len(r.Breakdown) != len(want) {
		t.Fatalf("breakdown %+v", r.Breakdown)
	}
	for _, bd := range r.Breakdown {
		if want[bd.Labels] != bd.Requests {
			t.Errorf("%+v: %d requests, want %d", bd.Labels, bd.Requests, want[bd.Labels])
		}
	}
	r = query(t, s, store.TrafficQuery{Group: "edge", From: t0, To: t0.Add(time.Minute), Step: time.Minute, Resolution: store.TrafficFine, By: store.ByConsumer})
	if r.Breakdown[0].Labels.Consumer != "" || r.Breakdown[0].Requests != 16 || r.Breakdown[1].Labels.Consumer != store.OtherLabel || r.Breakdown[1].Requests != 12 {
		t.Errorf("consumers %+v", r.Breakdown)
	}
	g := must[[]store.TrafficGroup](t)(s.TrafficTotals(ctx))[0]
	if g.Routes != 2 || g.Consumers != 1 || g.FoldedRoutes != 20 || g.FoldedConsumers != 12 {
		t.Errorf("fold counts %+v", g)
	}
}

// Node managers retry: each node's batches reach the store twice, from
// two senders at once (two admin nodes, or a retry racing the original).
// Each batch is counted once: the totals are exact, and every node's
// record shows each batch stored once and once a duplicate.
func testIngestOnceConcurrently(t *testing.T, open Opener) {
	s := trafficStore(t, open)
	const nodes, batches, senders = 3, 15, 2
	var wg sync.WaitGroup
	for n := range nodes {
		for range senders {
			wg.Go(func() {
				node := fmt.Sprint("h", n)
				for seq := uint64(1); seq <= batches; seq++ {
					at := t0.Add(time.Duration(seq) * 10 * time.Second)
					b := batch(node, seq, at, series("r1", "", "2xx", seq, time.Millisecond))
					if _, err := s.IngestTraffic(ctx, b, limits, at); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want := uint64(nodes * batches * (batches + 1) / 2)
	r := query(t, s, store.TrafficQuery{From: t0, To: t0.Add(time.Hour), Step: time.Hour, Resolution: store.TrafficFine})
	if r.Total.Requests != want {
		t.Errorf("%d requests stored, want %d: a batch counted twice or lost", r.Total.Requests, want)
	}
	for _, n := range must[[]store.TrafficNode](t)(s.ListTrafficNodes(ctx)) {
		if n.Batches != batches || n.Duplicates != batches*(senders-1) || n.Lost != 0 || n.LastSeq != batches {
			t.Errorf("node %+v", n)
		}
	}
}
