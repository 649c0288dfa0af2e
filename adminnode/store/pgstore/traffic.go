package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The domain's traffic follows the bbolt store's rules (store's
// ValidateTrafficBatch, TrafficPointTime, TrafficAccumulator). A batch is
// stored when its row in traffic_batches, under the unique key (node,
// epoch, seq), is inserted; a group's labels, series numbers and points
// are written under the lock of its traffic_groups row, taken in name
// order by a batch of several groups. Points are in the time-partitioned
// tables traffic_fine (10 s) and traffic_coarse (1 min), see
// trafficpart.go.

// countsLen is the length of a counts array.
const countsLen = 4 + traffic.NumBuckets

func countsArray(c *traffic.Counts) []int64 {
	a := make([]int64, 0, countsLen)
	return appendCounts(a, c)
}

func appendCounts(a []int64, c *traffic.Counts) []int64 {
	a = append(a, int64(c.Requests), int64(c.BytesIn), int64(c.BytesOut), int64(c.LatencySumMicros))
	for _, n := range c.Latency {
		a = append(a, int64(n))
	}
	return a
}

func countsOf(a []int64) (traffic.Counts, error) {
	var c traffic.Counts
	if len(a) != countsLen {
		return c, fmt.Errorf("counts of %d numbers, want %d", len(a), countsLen)
	}
	c.Requests, c.BytesIn, c.BytesOut, c.LatencySumMicros = uint64(a[0]), uint64(a[1]), uint64(a[2]), uint64(a[3])
	for i := range c.Latency {
		c.Latency[i] = uint64(a[4+i])
	}
	return c, nil
}

type seriesKey struct {
	service, route, consumer, class string
}

type pointKey struct {
	instance string
	series   int64
}

type labelKey struct {
	kind, service, name string
}

type totalKey struct {
	service, class string
}

// groupWriter writes one group's series of a batch, as the bbolt store's
// does: it folds their labels, finds their numbers, and sums them by
// instance and by total before writing each once. It reads what it needs
// of the group's labels and series in one query each, and writes
// everything in one round trip.
type groupWriter struct {
	tx                            pgx.Tx
	group                         string
	now                           int64
	lim                           store.TrafficLimits
	watermark                     int64
	routes, consumers             int
	foldedRoutes, foldedConsumers int64
	lastSeries                    int64
	// labels holds the last use of the batch's known labels, and
	// routeServices the services with a known route: a label refused once
	// stays refused within a batch, since the limit stays reached.
	labels        map[labelKey]int64
	routeServices map[string]bool
	newLabels     []labelKey
	touchedLabels []labelKey
	ids           map[seriesKey]int64
	newSeries     []seriesKey
	touchedSeries []int64
	points        map[pointKey]*traffic.Counts
	totals        map[totalKey]*traffic.Counts
}

// openGroupWriter locks the group's traffic row, making it on the group's
// first batch; false when the group does not exist.
func openGroupWriter(ctx context.Context, tx pgx.Tx, group string, lim store.TrafficLimits, now time.Time) (*groupWriter, bool, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO traffic_groups (group_name)
		SELECT name FROM groups WHERE name = $1 ON CONFLICT DO NOTHING`, group); err != nil {
		return nil, false, err
	}
	g := &groupWriter{tx: tx, group: group, now: now.Unix(), lim: lim,
		labels: map[labelKey]int64{}, routeServices: map[string]bool{}, ids: map[seriesKey]int64{},
		points: map[pointKey]*traffic.Counts{}, totals: map[totalKey]*traffic.Counts{}}
	err := tx.QueryRow(ctx, `SELECT watermark, routes, consumers, folded_routes, folded_consumers, last_series
		FROM traffic_groups WHERE group_name = $1 FOR UPDATE`, group).
		Scan(&g.watermark, &g.routes, &g.consumers, &g.foldedRoutes, &g.foldedConsumers, &g.lastSeries)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g, true, nil
}

var touchEvery = int64(store.TrafficLabelTouchEvery / time.Second)

// loadLabels reads which of the series' labels the group knows, and
// which of their services have a known route.
func (g *groupWriter) loadLabels(ctx context.Context, series []*traffic.DomainSeries) error {
	var kinds, services, names, routeServices []string
	asked := map[labelKey]bool{}
	ask := func(k labelKey) {
		if !asked[k] {
			asked[k] = true
			kinds, services, names = append(kinds, k.kind), append(services, k.service), append(names, k.name)
		}
	}
	for _, s := range series {
		ask(labelKey{"r", s.Service, s.Route})
		if s.Consumer != "" {
			ask(labelKey{"c", "", s.Consumer})
		}
		if !slices.Contains(routeServices, s.Service) {
			routeServices = append(routeServices, s.Service)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT kind, service, name, seen FROM traffic_labels WHERE group_name = $1
		AND (kind, service, name) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]))`,
		g.group, kinds, services, names).Query(func(rows pgx.Rows) error {
		var k labelKey
		var seen int64
		_, err := pgx.ForEachRow(rows, []any{&k.kind, &k.service, &k.name, &seen}, func() error {
			g.labels[k] = seen
			return nil
		})
		return err
	})
	b.Queue(`SELECT DISTINCT service FROM traffic_labels WHERE group_name = $1 AND kind = 'r' AND service = ANY($2::text[])`,
		g.group, routeServices).Query(func(rows pgx.Rows) error {
		var service string
		_, err := pgx.ForEachRow(rows, []any{&service}, func() error {
			g.routeServices[service] = true
			return nil
		})
		return err
	})
	return g.tx.SendBatch(ctx, b).Close()
}

// admit reports whether the label is known or may be added under limit
// (counted in *count), recording it; a known label's last use is
// refreshed at most every TrafficLabelTouchEvery.
func (g *groupWriter) admit(kind, service, name string, limit int, count *int) bool {
	k := labelKey{kind, service, name}
	if seen, ok := g.labels[k]; ok {
		if g.now-seen >= touchEvery {
			g.labels[k] = g.now
			g.touchedLabels = append(g.touchedLabels, k)
		}
		return true
	}
	if *count >= limit {
		return false
	}
	*count++
	g.labels[k] = g.now
	g.newLabels = append(g.newLabels, k)
	if kind == "r" {
		g.routeServices[service] = true
	}
	return true
}

// fold replaces the route and consumer of l by store.OtherLabel beyond the
// group's limits, and reports whether it did; the service of a folded
// route goes too when no route of it is known.
func (g *groupWriter) fold(l *store.TrafficFilter, requests uint64) bool {
	folded := false
	if !g.admit("r", l.Service, l.Route, g.lim.MaxRoutes, &g.routes) {
		if !g.routeServices[l.Service] {
			l.Service = store.OtherLabel
		}
		l.Route = store.OtherLabel
		folded = true
		g.foldedRoutes += int64(requests)
	}
	if l.Consumer != "" && !g.admit("c", "", l.Consumer, g.lim.MaxConsumers, &g.consumers) {
		l.Consumer = store.OtherLabel
		folded = true
		g.foldedConsumers += int64(requests)
	}
	return folded
}

// loadSeries finds the numbers of the series keys, numbering the new ones
// in the order of keys; a known series' last use is refreshed at most
// every TrafficLabelTouchEvery.
func (g *groupWriter) loadSeries(ctx context.Context, keys []seriesKey) error {
	var services, routes, consumers, classes []string
	asked := map[seriesKey]bool{}
	for _, k := range keys {
		if !asked[k] {
			asked[k] = true
			services, routes, consumers, classes = append(services, k.service), append(routes, k.route), append(consumers, k.consumer), append(classes, k.class)
		}
	}
	rows, err := g.tx.Query(ctx, `SELECT id, seen, service, route, consumer, class FROM traffic_series WHERE group_name = $1
		AND (service, route, consumer, class) IN (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]))`,
		g.group, services, routes, consumers, classes)
	if err != nil {
		return err
	}
	var id, seen int64
	var k seriesKey
	_, err = pgx.ForEachRow(rows, []any{&id, &seen, &k.service, &k.route, &k.consumer, &k.class}, func() error {
		g.ids[k] = id
		if g.now-seen >= touchEvery {
			g.touchedSeries = append(g.touchedSeries, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, ok := g.ids[k]; !ok {
			g.lastSeries++
			g.ids[k] = g.lastSeries
			g.newSeries = append(g.newSeries, k)
		}
	}
	return nil
}

func addTo[K comparable](m map[K]*traffic.Counts, k K, c *traffic.Counts) {
	if sum := m[k]; sum != nil {
		sum.Add(c)
		return
	}
	cp := *c
	m[k] = &cp
}

// write folds, numbers and sums the group's series of a batch, then
// writes them; it returns how many series it folded.
func (g *groupWriter) write(ctx context.Context, series []*traffic.DomainSeries, fine, minute int64) (int, error) {
	if err := g.loadLabels(ctx, series); err != nil {
		return 0, fmt.Errorf("read labels: %w", err)
	}
	folded := 0
	labels := make([]store.TrafficFilter, len(series))
	keys := make([]seriesKey, len(series))
	for i, s := range series {
		l := store.TrafficFilter{Service: s.Service, Route: s.Route, Consumer: s.Consumer, Instance: s.Instance}
		if g.fold(&l, s.Requests) {
			folded++
		}
		labels[i], keys[i] = l, seriesKey{l.Service, l.Route, l.Consumer, s.Class}
	}
	if err := g.loadSeries(ctx, keys); err != nil {
		return 0, fmt.Errorf("read series: %w", err)
	}
	for i, s := range series {
		addTo(g.points, pointKey{s.Instance, g.ids[keys[i]]}, &s.Counts)
		addTo(g.totals, totalKey{labels[i].Service, s.Class}, &s.Counts)
	}
	return folded, g.flush(ctx, fine, minute)
}

// upsertPoints adds $5's counts (countsLen numbers a point, flattened) to
// the points of group $1 at $2, instances $3 and series $4.
func upsertPoints(table string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s (group_name, at, instance, series, counts)
		SELECT $1, $2, u.instance, u.series, ($5::bigint[])[(u.n - 1) * %[2]d + 1 : u.n * %[2]d]
		FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY AS u (instance, series, n)
		ON CONFLICT (group_name, at, instance, series)
		DO UPDATE SET counts = traffic_add(%[1]s.counts, EXCLUDED.counts)`, table, countsLen)
}

var (
	upsertFine   = upsertPoints(fineTable.name)
	upsertCoarse = upsertPoints(coarseTable.name)
)

// flush writes the batch's labels, series and sums in one round trip:
// each instance's points at 10 s (and at 1 min when that minute was
// already rolled up), the totals, and the group's counters.
func (g *groupWriter) flush(ctx context.Context, fine, minute int64) error {
	b := &pgx.Batch{}
	if len(g.newLabels) > 0 || len(g.touchedLabels) > 0 {
		for _, ls := range []struct {
			sql    string
			labels []labelKey
		}{
			{`INSERT INTO traffic_labels (group_name, kind, service, name, seen)
				SELECT $1, k, s, n, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u (k, s, n)`, g.newLabels},
			{`UPDATE traffic_labels l SET seen = $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u (k, s, n)
				WHERE l.group_name = $1 AND l.kind = u.k AND l.service = u.s AND l.name = u.n`, g.touchedLabels},
		} {
			var kinds, services, names []string
			for _, k := range ls.labels {
				kinds, services, names = append(kinds, k.kind), append(services, k.service), append(names, k.name)
			}
			if len(kinds) > 0 {
				b.Queue(ls.sql, g.group, kinds, services, names, g.now)
			}
		}
	}
	if len(g.newSeries) > 0 {
		ids := make([]int64, len(g.newSeries))
		var services, routes, consumers, classes []string
		for i, k := range g.newSeries {
			ids[i] = g.ids[k]
			services, routes, consumers, classes = append(services, k.service), append(routes, k.route), append(consumers, k.consumer), append(classes, k.class)
		}
		b.Queue(`INSERT INTO traffic_series (group_name, id, service, route, consumer, class, seen)
			SELECT $1, i, s, r, c, cl, $7 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u (i, s, r, c, cl)`,
			g.group, ids, services, routes, consumers, classes, g.now)
	}
	if len(g.touchedSeries) > 0 {
		b.Queue("UPDATE traffic_series SET seen = $3 WHERE group_name = $1 AND id = ANY($2::bigint[])", g.group, g.touchedSeries, g.now)
	}
	instances := make([]string, 0, len(g.points))
	series := make([]int64, 0, len(g.points))
	counts := make([]int64, 0, len(g.points)*countsLen)
	for k, c := range g.points {
		instances, series, counts = append(instances, k.instance), append(series, k.series), appendCounts(counts, c)
	}
	b.Queue(upsertFine, g.group, fine, instances, series, counts)
	if minute < g.watermark {
		b.Queue(upsertCoarse, g.group, minute, instances, series, counts)
	}
	services := make([]string, 0, len(g.totals))
	classes := make([]string, 0, len(g.totals))
	totals := make([]int64, 0, len(g.totals)*countsLen)
	for k, c := range g.totals {
		services, classes, totals = append(services, k.service), append(classes, k.class), appendCounts(totals, c)
	}
	b.Queue(fmt.Sprintf(`INSERT INTO traffic_totals (group_name, service, class, counts)
		SELECT $1, u.s, u.c, ($4::bigint[])[(u.n - 1) * %[1]d + 1 : u.n * %[1]d]
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (s, c, n)
		ON CONFLICT (group_name, service, class)
		DO UPDATE SET counts = traffic_add(traffic_totals.counts, EXCLUDED.counts)`, countsLen), g.group, services, classes, totals)
	b.Queue(`UPDATE traffic_groups SET routes = $2, consumers = $3, folded_routes = $4, folded_consumers = $5,
		last_series = $6 WHERE group_name = $1`, g.group, g.routes, g.consumers, g.foldedRoutes, g.foldedConsumers, g.lastSeries)
	return g.tx.SendBatch(ctx, b).Close()
}

func putNode(ctx context.Context, tx pgx.Tx, n store.TrafficNode) error {
	doc, err := encode(n)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE traffic_nodes SET doc = $2 WHERE node = $1", n.Node, doc)
	return err
}

// noPartition is PostgreSQL's error for a row that no partition takes.
const noPartition = "23514"

// IngestTraffic implements store.Store. The partitions for the batch's
// time are made first, outside the batch's transaction.
func (p *PG) IngestTraffic(ctx context.Context, batch traffic.Batch, lim store.TrafficLimits, now time.Time) (store.TrafficIngest, error) {
	if err := store.ValidateTrafficBatch(&batch, lim); err != nil {
		return store.TrafficIngest{}, err
	}
	at := store.TrafficPointTime(&batch).Unix()
	fine, minute := store.FloorTraffic(at, store.TrafficFine), store.FloorTraffic(at, store.TrafficCoarse)
	for retried := false; ; retried = true {
		if err := p.ensurePartitions(ctx, now, fineTable.partition(fine), coarseTable.partition(minute)); err != nil {
			return store.TrafficIngest{}, fmt.Errorf("traffic batch %d of node %q: %w", batch.Seq, batch.Node, err)
		}
		out, err := p.ingest(ctx, &batch, lim, now, fine, minute)
		// A partition remembered but dropped since by another admin node:
		// made again, once.
		var pgErr *pgconn.PgError
		if !retried && errors.As(err, &pgErr) && pgErr.Code == noPartition {
			p.parts.forget()
			continue
		}
		return out, err
	}
}

// ingest stores the batch in one transaction. Inserting the batch's row
// decides: of two deliveries of one batch at once, to one admin node or
// two, the second waits on the first's row and finds it there. A batch
// numbered at or below the node's last one (older than what
// traffic_batches keeps, or arriving out of order) is a duplicate too, as
// for the bbolt store.
func (p *PG) ingest(ctx context.Context, batch *traffic.Batch, lim store.TrafficLimits, now time.Time, fine, minute int64) (store.TrafficIngest, error) {
	var out store.TrafficIngest
	err := p.tx(ctx, func(tx pgx.Tx) error {
		out = store.TrafficIngest{}
		fresh, err := encode(store.TrafficNode{Node: batch.Node})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO traffic_nodes VALUES ($1, $2) ON CONFLICT DO NOTHING", batch.Node, fresh); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO traffic_batches (node, epoch, seq, received)
			SELECT node, epoch, $2, $3 FROM traffic_nodes WHERE node = $1 ON CONFLICT DO NOTHING`,
			batch.Node, int64(batch.Seq), now.Unix())
		if err != nil {
			return err
		}
		// NO KEY UPDATE: the batch row's foreign key holds a KEY SHARE lock
		// on the node's row, which a concurrent batch of the node holds too.
		n, err := mustDoc[store.TrafficNode](ctx, tx, "traffic node", batch.Node, "SELECT doc FROM traffic_nodes WHERE node = $1 FOR NO KEY UPDATE", batch.Node)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 || batch.Seq <= n.LastSeq {
			n.Duplicates++
			out.Ack = n.LastSeq
			return putNode(ctx, tx, n)
		}
		out.Stored, out.Ack = true, batch.Seq
		out.Lost = batch.Seq - n.LastSeq - 1
		n.Lost += out.Lost
		n.LastSeq = batch.Seq
		n.LastBatchAt = now.UTC()
		n.Batches++
		n.Dropped = max(n.Dropped, n.DroppedBase+batch.Dropped)

		byGroup := map[string][]*traffic.DomainSeries{}
		for i := range batch.Series {
			s := &batch.Series[i]
			byGroup[s.Group] = append(byGroup[s.Group], s)
		}
		// In name order, so that batches of several groups lock them alike.
		groups := slices.Sorted(maps.Keys(byGroup))
		writers := map[string]*groupWriter{}
		for _, name := range groups {
			g, ok, err := openGroupWriter(ctx, tx, name, lim, now)
			if err != nil {
				return fmt.Errorf("traffic of group %q: %w", name, err)
			}
			if ok {
				writers[name] = g
			} else {
				out.Skipped += len(byGroup[name])
			}
		}
		for _, name := range groups {
			if g := writers[name]; g != nil {
				folded, err := g.write(ctx, byGroup[name], fine, minute)
				if err != nil {
					return fmt.Errorf("traffic of group %q: %w", name, err)
				}
				out.Folded += folded
			}
		}
		n.Series += uint64(len(batch.Series) - out.Skipped)
		n.Skipped += uint64(out.Skipped)
		return putNode(ctx, tx, n)
	})
	return out, err
}

// ResetTrafficNode implements store.Store: a node manager that joins
// numbers its batches from 1 again, in a new epoch of the node; what
// earlier ones dropped is kept.
func (p *PG) ResetTrafficNode(ctx context.Context, node string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		n, ok, err := getDoc[store.TrafficNode](ctx, tx, "SELECT doc FROM traffic_nodes WHERE node = $1 FOR NO KEY UPDATE", node)
		if err != nil || !ok {
			return err
		}
		n.LastSeq = 0
		n.DroppedBase = n.Dropped
		if _, err := tx.Exec(ctx, "UPDATE traffic_nodes SET epoch = epoch + 1 WHERE node = $1", node); err != nil {
			return err
		}
		return putNode(ctx, tx, n)
	})
}

// ListTrafficNodes implements store.Store.
func (p *PG) ListTrafficNodes(ctx context.Context) ([]store.TrafficNode, error) {
	return listDocs[store.TrafficNode](ctx, p.pool, "SELECT doc FROM traffic_nodes ORDER BY node")
}

// snapshot runs fn in a read-only transaction that sees one state of the
// database throughout, as a bbolt read does.
func (p *PG) snapshot(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// QueryTraffic implements store.Store. At TrafficCoarse, the minutes not
// rolled up yet are read from the 10 s points.
func (p *PG) QueryTraffic(ctx context.Context, q store.TrafficQuery) (store.TrafficResult, error) {
	acc, err := store.NewTrafficAccumulator(q)
	if err != nil {
		return store.TrafficResult{}, err
	}
	from, to := q.From.Unix(), q.To.Unix()
	err = p.snapshot(ctx, func(tx pgx.Tx) error {
		if err := exists(ctx, tx, "groups", "name", "group", q.Group); err != nil {
			return err
		}
		var watermark, fineBefore, coarseBefore int64
		err := tx.QueryRow(ctx, "SELECT watermark, fine_before, coarse_before FROM traffic_groups WHERE group_name = $1", q.Group).
			Scan(&watermark, &fineBefore, &coarseBefore)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // no traffic yet
		}
		if err != nil {
			return err
		}
		// Points below the group's horizon are past retention, left for
		// their partition's drop.
		scan := func(table string, lo, hi int64) error {
			if lo >= hi {
				return nil
			}
			// A point whose series was forgotten (its time past retention,
			// as when a batch came with a clock far ahead) is left out, as
			// by the bbolt store.
			rows, err := tx.Query(ctx, `SELECT p.at, p.instance, s.service, s.route, s.consumer, s.class, p.counts
				FROM `+table+` p JOIN traffic_series s ON s.group_name = p.group_name AND s.id = p.series
				WHERE p.group_name = $1 AND p.at >= $2 AND p.at < $3
				AND ($4 = '' OR p.instance = $4)`, q.Group, lo, hi, q.Filter.Instance)
			if err != nil {
				return err
			}
			defer rows.Close()
			var at int64
			var l store.TrafficFilter
			var class string
			var counts []int64
			for rows.Next() {
				if err := rows.Scan(&at, &l.Instance, &l.Service, &l.Route, &l.Consumer, &class, &counts); err != nil {
					return err
				}
				c, err := countsOf(counts)
				if err != nil {
					return fmt.Errorf("point at %d of instance %q: %w", at, l.Instance, err)
				}
				acc.Add(at, l, class, &c)
			}
			return rows.Err()
		}
		if q.Resolution == store.TrafficFine {
			return scan(fineTable.name, max(from, fineBefore), to)
		}
		if err := scan(coarseTable.name, max(from, coarseBefore), min(to, watermark)); err != nil {
			return err
		}
		return scan(fineTable.name, max(from, watermark, fineBefore), to)
	})
	if err != nil {
		return store.TrafficResult{}, fmt.Errorf("traffic of group %q: %w", q.Group, err)
	}
	return acc.Result(), nil
}

// TrafficTotals implements store.Store: sorted by group, service and class.
func (p *PG) TrafficTotals(ctx context.Context) ([]store.TrafficGroup, error) {
	var out []store.TrafficGroup
	err := p.snapshot(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT group_name, routes, consumers, folded_routes, folded_consumers
			FROM traffic_groups ORDER BY group_name`)
		if err != nil {
			return err
		}
		index := map[string]int{}
		for rows.Next() {
			var g store.TrafficGroup
			var fr, fc int64
			if err := rows.Scan(&g.Group, &g.Routes, &g.Consumers, &fr, &fc); err != nil {
				rows.Close()
				return err
			}
			g.FoldedRoutes, g.FoldedConsumers = uint64(fr), uint64(fc)
			index[g.Group] = len(out)
			out = append(out, g)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT group_name, service, class, counts FROM traffic_totals")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var group string
			var t store.TrafficTotal
			var counts []int64
			if err := rows.Scan(&group, &t.Service, &t.Class, &counts); err != nil {
				return err
			}
			if t.Counts, err = countsOf(counts); err != nil {
				return fmt.Errorf("traffic totals of group %q: %w", group, err)
			}
			if i, ok := index[group]; ok {
				out[i].Totals = append(out[i].Totals, t)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		slices.SortFunc(out[i].Totals, func(a, b store.TrafficTotal) int {
			ca, _ := store.TrafficClassIndex(a.Class)
			cb, _ := store.TrafficClassIndex(b.Class)
			return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(ca, cb))
		})
	}
	return out, nil
}

// batchKeep is how long a stored batch's row is kept: long enough for
// every delivery of it in flight at once. An older one delivered again is
// refused all the same, being numbered below the node's last.
const batchKeep = time.Hour

// MaintainTraffic implements store.Store: each group is one transaction
// under its traffic row's lock, which rolls up its 10 s points and moves
// its horizons to retention; then the partitions entirely past retention
// are dropped, and those of the current and next periods made.
func (p *PG) MaintainTraffic(ctx context.Context, now time.Time) (store.TrafficMaintenance, error) {
	var out store.TrafficMaintenance
	if err := ctx.Err(); err != nil {
		return out, err
	}
	rows, err := p.pool.Query(ctx, "SELECT group_name FROM traffic_groups ORDER BY group_name")
	if err != nil {
		return out, err
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return out, err
	}
	for _, g := range groups {
		err := p.tx(ctx, func(tx pgx.Tx) error {
			m, err := maintainGroup(ctx, tx, g, now)
			if err != nil {
				return fmt.Errorf("traffic of group %q: %w", g, err)
			}
			out.RolledUp += m.RolledUp
			out.Pruned += m.Pruned
			out.Forgotten += m.Forgotten
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	if _, err := p.pool.Exec(ctx, "DELETE FROM traffic_batches WHERE received < $1", now.Add(-batchKeep).Unix()); err != nil {
		return out, fmt.Errorf("forget stored batches: %w", err)
	}
	at := now.Unix()
	for _, t := range []pointTable{fineTable, coarseTable} {
		if err := p.ensurePartitions(ctx, now, t.partition(at), t.partition(at+t.period)); err != nil {
			return out, fmt.Errorf("partitions of %s: %w", t.name, err)
		}
		if _, err := p.dropPartitions(ctx, t, now); err != nil {
			return out, err
		}
	}
	return out, nil
}

// countPoints counts the group's points of table in [lo, hi): a point, as
// for the bbolt store, is an instance's series at a time.
func countPoints(ctx context.Context, tx pgx.Tx, table, group string, lo, hi int64) (int, error) {
	var n int
	err := tx.QueryRow(ctx, "SELECT count(DISTINCT (at, instance)) FROM "+table+" WHERE group_name = $1 AND at >= $2 AND at < $3",
		group, lo, hi).Scan(&n)
	return n, err
}

func maintainGroup(ctx context.Context, tx pgx.Tx, group string, now time.Time) (store.TrafficMaintenance, error) {
	var out store.TrafficMaintenance
	var watermark, fineBefore, coarseBefore int64
	err := tx.QueryRow(ctx, "SELECT watermark, fine_before, coarse_before FROM traffic_groups WHERE group_name = $1 FOR UPDATE", group).
		Scan(&watermark, &fineBefore, &coarseBefore)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, nil // the group was deleted since the list was read
	}
	if err != nil {
		return out, err
	}
	limit := store.FloorTraffic(now.Add(-store.TrafficRollupGrace).Unix(), store.TrafficCoarse)
	if limit > watermark {
		var n int
		err := tx.QueryRow(ctx, `WITH d AS (INSERT INTO traffic_coarse (group_name, at, instance, series, counts)
			SELECT group_name, at - ((at % 60) + 60) % 60, instance, series, traffic_sum(counts)
			FROM traffic_fine WHERE group_name = $1 AND at >= $2 AND at < $3
			GROUP BY 1, 2, 3, 4
			ON CONFLICT (group_name, at, instance, series)
			DO UPDATE SET counts = traffic_add(traffic_coarse.counts, EXCLUDED.counts)
			RETURNING at, instance) SELECT count(DISTINCT (at, instance)) FROM d`, group, watermark, limit).Scan(&n)
		if err != nil {
			return out, fmt.Errorf("roll up: %w", err)
		}
		out.RolledUp = n
		watermark = limit
	}
	// The horizons only move on; 10 s points pass theirs only once rolled
	// up. What passes is counted here, and goes with its partition.
	newFine := max(fineBefore, min(now.Add(-store.TrafficFineRetention).Unix(), watermark))
	newCoarse := max(coarseBefore, now.Add(-store.TrafficCoarseRetention).Unix())
	for _, h := range []struct {
		table  string
		lo, hi int64
	}{{fineTable.name, fineBefore, newFine}, {coarseTable.name, coarseBefore, newCoarse}} {
		if h.hi <= h.lo {
			continue
		}
		n, err := countPoints(ctx, tx, h.table, group, h.lo, h.hi)
		if err != nil {
			return out, fmt.Errorf("prune: %w", err)
		}
		out.Pruned += n
	}
	cutoff := now.Add(-store.TrafficCoarseRetention).Unix()
	var routes, consumers int
	err = tx.QueryRow(ctx, `WITH d AS (DELETE FROM traffic_labels WHERE group_name = $1 AND seen < $2 RETURNING kind)
		SELECT count(*) FILTER (WHERE kind = 'r'), count(*) FILTER (WHERE kind = 'c') FROM d`, group, cutoff).Scan(&routes, &consumers)
	if err != nil {
		return out, fmt.Errorf("forget labels: %w", err)
	}
	out.Forgotten = routes + consumers
	// A series is last seen up to TrafficLabelTouchEvery after its stamp:
	// that much more, and none of its points are left.
	if _, err := tx.Exec(ctx, "DELETE FROM traffic_series WHERE group_name = $1 AND seen < $2",
		group, cutoff-touchEvery); err != nil {
		return out, fmt.Errorf("forget series: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE traffic_groups SET watermark = $2, fine_before = $3, coarse_before = $4,
		routes = routes - $5, consumers = consumers - $6 WHERE group_name = $1`, group, watermark, newFine, newCoarse, routes, consumers)
	return out, err
}
