package pgstore

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

var trafficLimits = store.TrafficLimits{MaxRoutes: 10, MaxConsumers: 10}

func oneSeries(node string, seq uint64, at time.Time, requests uint64) traffic.Batch {
	return traffic.Batch{Node: node, Seq: seq, Start: at, End: at.Add(10 * time.Second), Series: []traffic.DomainSeries{{
		Group: "edge", Instance: "i1", Series: traffic.Series{Key: traffic.Key{Service: "svc", Route: "r1", Class: traffic.Class2xx},
			Counts: traffic.Counts{Requests: requests}}}}}
}

// partitionsOf lists the partitions of a point table, by name.
func partitionsOf(t *testing.T, s *PG, table string) []string {
	t.Helper()
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func requestsIn(t *testing.T, s store.Store, from time.Time, res time.Duration) uint64 {
	t.Helper()
	r, err := s.QueryTraffic(ctx, store.TrafficQuery{Group: "edge", From: from, To: from.Add(time.Hour), Step: time.Hour, Resolution: res})
	if err != nil {
		t.Fatal(err)
	}
	return r.Total.Requests
}

// Past retention a partition of points is dropped whole, the next
// period's is made ahead, and queries still answer from what is left.
func TestTrafficPartitionsDropped(t *testing.T) {
	s := openAt(t, pgtest.Need(t, pg))
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday; weeks of the epoch start on Thursdays
	for i := range 6 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if _, err := s.IngestTraffic(ctx, oneSeries("h1", uint64(i+1), at, 5), trafficLimits, at); err != nil {
			t.Fatal(err)
		}
	}
	if got := partitionsOf(t, s, "traffic_fine"); !slices.Contains(got, "traffic_fine_p20261123") {
		t.Fatalf("10 s partitions after ingest %v", got)
	}
	if got := partitionsOf(t, s, "traffic_coarse"); !slices.Contains(got, "traffic_coarse_p20261119") {
		t.Fatalf("1 min partitions after ingest %v", got)
	}

	// Two days on, the day of t0 is entirely past the 24 h of 10 s points.
	later := t0.Add(48 * time.Hour)
	if _, err := s.MaintainTraffic(ctx, later); err != nil {
		t.Fatal(err)
	}
	fine := partitionsOf(t, s, "traffic_fine")
	if slices.Contains(fine, "traffic_fine_p20261123") || !slices.Contains(fine, "traffic_fine_p20261126") {
		t.Errorf("10 s partitions two days on %v, want that of 23 Nov dropped and that of 26 Nov made", fine)
	}
	if got := requestsIn(t, s, t0, store.TrafficFine); got != 0 {
		t.Errorf("10 s points two days on: %d requests", got)
	}
	if got := requestsIn(t, s, t0, store.TrafficCoarse); got != 30 {
		t.Errorf("1 min points two days on: %d requests, want 30", got)
	}

	// Past 30 days the week of t0 is dropped too.
	if _, err := s.MaintainTraffic(ctx, t0.Add(40*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := partitionsOf(t, s, "traffic_coarse"); slices.Contains(got, "traffic_coarse_p20261119") {
		t.Errorf("1 min partitions 40 days on %v, want that of the week of 19 Nov dropped", got)
	}
	if got := requestsIn(t, s, t0, store.TrafficCoarse); got != 0 {
		t.Errorf("1 min points 40 days on: %d requests", got)
	}
}

// A partition one admin node remembers and another drops is made again
// when the first next writes into it: the batch is stored, not refused.
func TestTrafficPartitionDroppedByAnother(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	a, b := openAt(t, dsn), openAt(t, dsn)
	if _, err := a.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, err := a.IngestTraffic(ctx, oneSeries("h1", 1, t0, 5), trafficLimits, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.MaintainTraffic(ctx, t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := partitionsOf(t, a, "traffic_fine"); slices.Contains(got, "traffic_fine_p20261123") {
		t.Fatalf("partitions %v: want that of 23 Nov dropped", got)
	}
	at := t0.Add(10 * time.Second)
	got, err := a.IngestTraffic(ctx, oneSeries("h1", 2, at, 5), trafficLimits, at)
	if err != nil || !got.Stored {
		t.Fatalf("ingest into a partition dropped by another admin node: %+v, %v", got, err)
	}
	if got := partitionsOf(t, a, "traffic_fine"); !slices.Contains(got, "traffic_fine_p20261123") {
		t.Errorf("partitions %v: want that of 23 Nov made again", got)
	}
}

// The same batches delivered at once to two admin nodes (two stores, two
// connection pools on one database) are each stored once: one delivery
// stores it, the other is told it is a duplicate.
func TestIngestOnceAcrossTwoPools(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	stores := []*PG{openAt(t, dsn), openAt(t, dsn)}
	if _, err := stores[0].CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	const batches = 20
	for seq := uint64(1); seq <= batches; seq++ {
		at := t0.Add(time.Duration(seq) * 10 * time.Second)
		var wg sync.WaitGroup
		var stored [2]bool
		start := make(chan struct{})
		for i, s := range stores {
			wg.Go(func() {
				<-start
				got, err := s.IngestTraffic(ctx, oneSeries("h1", seq, at, seq), trafficLimits, at)
				if err != nil {
					t.Error(err)
				}
				if got.Ack != seq {
					t.Errorf("batch %d through store %d acknowledged as %d", seq, i, got.Ack)
				}
				stored[i] = got.Stored
			})
		}
		close(start)
		wg.Wait()
		if stored[0] == stored[1] {
			t.Errorf("batch %d stored by both or neither: %v", seq, stored)
		}
	}
	want := uint64(batches * (batches + 1) / 2)
	for i, s := range stores {
		if got := requestsIn(t, s, t0, store.TrafficFine); got != want {
			t.Errorf("through store %d: %d requests, want %d", i, got, want)
		}
	}
	nodes, err := stores[1].ListTrafficNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Batches != batches || nodes[0].Duplicates != batches || nodes[0].Lost != 0 {
		t.Errorf("nodes %+v", nodes)
	}
	var rows int
	if err := stores[0].pool.QueryRow(ctx, "SELECT count(*) FROM traffic_batches WHERE node = 'h1'").Scan(&rows); err != nil || rows != batches {
		t.Errorf("%d stored batch rows, %v; want %d", rows, err, batches)
	}
}

// A node manager that joins again numbers its batches from 1: they are
// stored, not taken for the earlier ones.
func TestIngestAfterReset(t *testing.T) {
	s := openAt(t, pgtest.Need(t, pg))
	if _, err := s.CreateGroup(ctx, store.Group{Name: "edge"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if got, err := s.IngestTraffic(ctx, oneSeries("h1", 1, t0, 3), trafficLimits, t0); err != nil || !got.Stored {
		t.Fatalf("first batch %+v, %v", got, err)
	}
	if err := s.ResetTrafficNode(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(10 * time.Second)
	if got, err := s.IngestTraffic(ctx, oneSeries("h1", 1, at, 4), trafficLimits, at); err != nil || !got.Stored {
		t.Fatalf("batch 1 after the node joined again %+v, %v", got, err)
	}
	if got := requestsIn(t, s, t0, store.TrafficFine); got != 7 {
		t.Errorf("%d requests, want 7", got)
	}
}

// Migration 0004 moves the points of 0002's single table into the
// partitioned ones: a domain's traffic answers the same after it.
func TestTrafficMigratedToPartitions(t *testing.T) {
	dsn := pgtest.Need(t, pg)
	steps, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE schema_version (id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, m := range steps[:3] {
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	doc, err := encode(store.Group{Name: "edge", Type: store.GroupTypeGateway, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).Unix()
	fine, coarse := make([]int64, countsLen), make([]int64, countsLen)
	fine[0], coarse[0] = 7, 14
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO schema_version VALUES (1, 3)", nil},
		{"INSERT INTO groups VALUES ('edge', $1)", []any{doc}},
		{"INSERT INTO traffic_groups (group_name, watermark, routes, last_series) VALUES ('edge', $1, 1, 1)", []any{t0 + 60}},
		{"INSERT INTO traffic_labels VALUES ('edge', 'r', 'svc', 'r1', $1)", []any{t0}},
		{"INSERT INTO traffic_series VALUES ('edge', 1, 'svc', 'r1', '', '2xx', $1)", []any{t0}},
		{"INSERT INTO traffic_points VALUES ('edge', 10, $1, 'i1', 1, $2), ('edge', 10, $1 + 10, 'i1', 1, $2), ('edge', 60, $1, 'i1', 1, $3)",
			[]any{t0, fine, coarse}},
	} {
		if _, err := conn.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%s: %v", stmt.sql, err)
		}
	}
	s := openAt(t, dsn)
	at := time.Unix(t0, 0)
	if got := requestsIn(t, s, at, store.TrafficFine); got != 14 {
		t.Errorf("10 s points after migration: %d requests, want 14", got)
	}
	if got := requestsIn(t, s, at, store.TrafficCoarse); got != 14 {
		t.Errorf("1 min points after migration: %d requests, want 14", got)
	}
	if got := partitionsOf(t, s, "traffic_fine"); !slices.Equal(got, []string{"traffic_fine_p20261123"}) {
		t.Errorf("10 s partitions after migration %v", got)
	}
	var old *string
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('traffic_points')::text").Scan(&old); err != nil || old != nil {
		t.Errorf("traffic_points after migration: %v, %v", old, err)
	}
}
