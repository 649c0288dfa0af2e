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

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The domain's traffic follows the bbolt store's rules (store's
// ValidateTrafficBatch, TrafficPointTime, TrafficAccumulator): each
// node's batch is stored once, under the lock of the node's row; a
// group's labels, series numbers and points are written under the lock of
// its traffic_groups row, taken in name order by a batch of several
// groups.

// Resolutions of traffic_points, in seconds.
const (
	resFine   = int(store.TrafficFine / time.Second)
	resCoarse = int(store.TrafficCoarse / time.Second)
)

// countsLen is the length of a counts array.
const countsLen = 4 + traffic.NumBuckets

func countsArray(c *traffic.Counts) []int64 {
	a := make([]int64, 0, countsLen)
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
// instance and by total before writing each once.
type groupWriter struct {
	tx                            pgx.Tx
	group                         string
	now                           int64
	lim                           store.TrafficLimits
	watermark                     int64
	routes, consumers             int
	foldedRoutes, foldedConsumers int64
	lastSeries                    int64
	ids                           map[seriesKey]int64
	// admitted and services remember, for the batch, what admit and the
	// fold's look-up of a service answered: a label's answer cannot change
	// within a batch (once refused, the limit stays reached), and most
	// labels recur across a batch's instances.
	admitted map[labelKey]bool
	services map[string]bool
	points   map[pointKey]*traffic.Counts
	totals   map[totalKey]*traffic.Counts
}

// openGroupWriter locks the group's traffic row, making it on the group's
// first batch; false when the group does not exist.
func openGroupWriter(ctx context.Context, tx pgx.Tx, group string, lim store.TrafficLimits, now time.Time) (*groupWriter, bool, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO traffic_groups (group_name)
		SELECT name FROM groups WHERE name = $1 ON CONFLICT DO NOTHING`, group); err != nil {
		return nil, false, err
	}
	g := &groupWriter{tx: tx, group: group, now: now.Unix(), lim: lim,
		ids: map[seriesKey]int64{}, admitted: map[labelKey]bool{}, services: map[string]bool{}, points: map[pointKey]*traffic.Counts{}, totals: map[totalKey]*traffic.Counts{}}
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

// admit reports whether the label is known or may be added under limit
// (counted in *count), recording it; a known label's last use is
// refreshed at most every TrafficLabelTouchEvery.
func (g *groupWriter) admit(ctx context.Context, kind, service, name string, limit int, count *int) (bool, error) {
	k := labelKey{kind, service, name}
	if ok, seen := g.admitted[k]; seen {
		return ok, nil
	}
	ok, err := g.admitLabel(ctx, kind, service, name, limit, count)
	if err == nil {
		g.admitted[k] = ok
	}
	return ok, err
}

func (g *groupWriter) admitLabel(ctx context.Context, kind, service, name string, limit int, count *int) (bool, error) {
	var seen int64
	err := g.tx.QueryRow(ctx, `SELECT seen FROM traffic_labels
		WHERE group_name = $1 AND kind = $2 AND service = $3 AND name = $4`, g.group, kind, service, name).Scan(&seen)
	switch {
	case err == nil:
		if g.now-seen >= touchEvery {
			_, err = g.tx.Exec(ctx, `UPDATE traffic_labels SET seen = $5
				WHERE group_name = $1 AND kind = $2 AND service = $3 AND name = $4`, g.group, kind, service, name, g.now)
		}
		return true, err
	case !errors.Is(err, pgx.ErrNoRows):
		return false, err
	case *count >= limit:
		return false, nil
	}
	*count++
	_, err = g.tx.Exec(ctx, "INSERT INTO traffic_labels VALUES ($1, $2, $3, $4, $5)", g.group, kind, service, name, g.now)
	return true, err
}

// fold replaces the route and consumer of l by store.OtherLabel beyond the
// group's limits, and reports whether it did; the service of a folded
// route goes too when no route of it is known.
func (g *groupWriter) fold(ctx context.Context, l *store.TrafficFilter, requests uint64) (bool, error) {
	folded := false
	ok, err := g.admit(ctx, "r", l.Service, l.Route, g.lim.MaxRoutes, &g.routes)
	if err != nil {
		return false, err
	}
	if !ok {
		known, asked := g.services[l.Service]
		if !asked {
			if err := g.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM traffic_labels
				WHERE group_name = $1 AND kind = 'r' AND service = $2)`, g.group, l.Service).Scan(&known); err != nil {
				return false, err
			}
			g.services[l.Service] = known
		}
		if !known {
			l.Service = store.OtherLabel
		}
		l.Route = store.OtherLabel
		folded = true
		g.foldedRoutes += int64(requests)
	}
	if l.Consumer != "" {
		ok, err := g.admit(ctx, "c", "", l.Consumer, g.lim.MaxConsumers, &g.consumers)
		if err != nil {
			return false, err
		}
		if !ok {
			l.Consumer = store.OtherLabel
			folded = true
			g.foldedConsumers += int64(requests)
		}
	}
	return folded, nil
}

// seriesID returns the number of the series in the group, adding it if
// new; a known series' last use is refreshed at most every
// TrafficLabelTouchEvery.
func (g *groupWriter) seriesID(ctx context.Context, k seriesKey) (int64, error) {
	if id, ok := g.ids[k]; ok {
		return id, nil
	}
	var id, seen int64
	err := g.tx.QueryRow(ctx, `SELECT id, seen FROM traffic_series
		WHERE group_name = $1 AND service = $2 AND route = $3 AND consumer = $4 AND class = $5`,
		g.group, k.service, k.route, k.consumer, k.class).Scan(&id, &seen)
	switch {
	case err == nil:
		if g.now-seen >= touchEvery {
			if _, err := g.tx.Exec(ctx, "UPDATE traffic_series SET seen = $3 WHERE group_name = $1 AND id = $2", g.group, id, g.now); err != nil {
				return 0, err
			}
		}
	case errors.Is(err, pgx.ErrNoRows):
		g.lastSeries++
		id = g.lastSeries
		if _, err := g.tx.Exec(ctx, "INSERT INTO traffic_series VALUES ($1, $2, $3, $4, $5, $6, $7)",
			g.group, id, k.service, k.route, k.consumer, k.class, g.now); err != nil {
			return 0, err
		}
	default:
		return 0, err
	}
	g.ids[k] = id
	return id, nil
}

func addTo[K comparable](m map[K]*traffic.Counts, k K, c *traffic.Counts) {
	if sum := m[k]; sum != nil {
		sum.Add(c)
		return
	}
	cp := *c
	m[k] = &cp
}

const upsertPoint = `INSERT INTO traffic_points VALUES ($1, $2, $3, $4, $5, $6)
	ON CONFLICT (group_name, resolution, at, instance, series)
	DO UPDATE SET counts = traffic_add(traffic_points.counts, EXCLUDED.counts)`

// flush writes the batch's sums: each instance's points at 10 s (and at
// 1 min when that minute was already rolled up), the totals, and the
// group's counters.
func (g *groupWriter) flush(ctx context.Context, fine, minute int64) error {
	b := &pgx.Batch{}
	for k, c := range g.points {
		b.Queue(upsertPoint, g.group, resFine, fine, k.instance, k.series, countsArray(c))
		if minute < g.watermark {
			b.Queue(upsertPoint, g.group, resCoarse, minute, k.instance, k.series, countsArray(c))
		}
	}
	for k, c := range g.totals {
		b.Queue(`INSERT INTO traffic_totals VALUES ($1, $2, $3, $4)
			ON CONFLICT (group_name, service, class)
			DO UPDATE SET counts = traffic_add(traffic_totals.counts, EXCLUDED.counts)`, g.group, k.service, k.class, countsArray(c))
	}
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

// IngestTraffic implements store.Store. The node's row is locked first:
// a node's batches are stored one at a time, each once, whichever admin
// node receives them.
func (p *PG) IngestTraffic(ctx context.Context, batch traffic.Batch, lim store.TrafficLimits, now time.Time) (store.TrafficIngest, error) {
	var out store.TrafficIngest
	if err := store.ValidateTrafficBatch(&batch, lim); err != nil {
		return out, err
	}
	err := p.tx(ctx, func(tx pgx.Tx) error {
		out = store.TrafficIngest{}
		fresh, err := encode(store.TrafficNode{Node: batch.Node})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO traffic_nodes VALUES ($1, $2) ON CONFLICT DO NOTHING", batch.Node, fresh); err != nil {
			return err
		}
		n, err := mustDoc[store.TrafficNode](ctx, tx, "traffic node", batch.Node, "SELECT doc FROM traffic_nodes WHERE node = $1 FOR UPDATE", batch.Node)
		if err != nil {
			return err
		}
		if batch.Seq <= n.LastSeq {
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

		at := store.TrafficPointTime(&batch).Unix()
		fine, minute := store.FloorTraffic(at, store.TrafficFine), store.FloorTraffic(at, store.TrafficCoarse)
		writers := map[string]*groupWriter{}
		for i := range batch.Series {
			writers[batch.Series[i].Group] = nil
		}
		// In name order, so that batches of several groups lock them alike.
		groups := slices.Sorted(maps.Keys(writers))
		for _, name := range groups {
			g, ok, err := openGroupWriter(ctx, tx, name, lim, now)
			if err != nil {
				return fmt.Errorf("traffic of group %q: %w", name, err)
			}
			if ok {
				writers[name] = g
			}
		}
		for i := range batch.Series {
			s := &batch.Series[i]
			g := writers[s.Group]
			if g == nil {
				out.Skipped++
				continue
			}
			l := store.TrafficFilter{Service: s.Service, Route: s.Route, Consumer: s.Consumer, Instance: s.Instance}
			folded, err := g.fold(ctx, &l, s.Requests)
			if err != nil {
				return fmt.Errorf("traffic of group %q: %w", s.Group, err)
			}
			if folded {
				out.Folded++
			}
			id, err := g.seriesID(ctx, seriesKey{l.Service, l.Route, l.Consumer, s.Class})
			if err != nil {
				return fmt.Errorf("traffic of group %q: %w", s.Group, err)
			}
			addTo(g.points, pointKey{s.Instance, id}, &s.Counts)
			addTo(g.totals, totalKey{l.Service, s.Class}, &s.Counts)
		}
		for _, name := range groups {
			if g := writers[name]; g != nil {
				if err := g.flush(ctx, fine, minute); err != nil {
					return fmt.Errorf("traffic of group %q: %w", name, err)
				}
			}
		}
		n.Series += uint64(len(batch.Series) - out.Skipped)
		n.Skipped += uint64(out.Skipped)
		return putNode(ctx, tx, n)
	})
	return out, err
}

// ResetTrafficNode implements store.Store: a node manager that joins
// numbers its batches from 1 again; what earlier ones dropped is kept.
func (p *PG) ResetTrafficNode(ctx context.Context, node string) error {
	return p.tx(ctx, func(tx pgx.Tx) error {
		n, ok, err := getDoc[store.TrafficNode](ctx, tx, "SELECT doc FROM traffic_nodes WHERE node = $1 FOR UPDATE", node)
		if err != nil || !ok {
			return err
		}
		n.LastSeq = 0
		n.DroppedBase = n.Dropped
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
		var watermark int64
		err := tx.QueryRow(ctx, "SELECT watermark FROM traffic_groups WHERE group_name = $1", q.Group).Scan(&watermark)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // no traffic yet
		}
		if err != nil {
			return err
		}
		scan := func(res int, lo, hi int64) error {
			if lo >= hi {
				return nil
			}
			// A point whose series was forgotten (its time past retention,
			// as when a batch came with a clock far ahead) is left out, as
			// by the bbolt store.
			rows, err := tx.Query(ctx, `SELECT p.at, p.instance, s.service, s.route, s.consumer, s.class, p.counts
				FROM traffic_points p JOIN traffic_series s ON s.group_name = p.group_name AND s.id = p.series
				WHERE p.group_name = $1 AND p.resolution = $2 AND p.at >= $3 AND p.at < $4
				AND ($5 = '' OR p.instance = $5)`, q.Group, res, lo, hi, q.Filter.Instance)
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
			return scan(resFine, from, to)
		}
		if err := scan(resCoarse, from, min(to, watermark)); err != nil {
			return err
		}
		return scan(resFine, max(from, watermark), to)
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

// MaintainTraffic implements store.Store: each group is one transaction
// under its traffic row's lock.
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
	return out, nil
}

// countDistinctPoints runs a statement returning (at, instance) rows and
// counts the distinct points among them: a point, as for the bbolt store,
// is an instance's series at a time.
func countDistinctPoints(ctx context.Context, tx pgx.Tx, sql string, args ...any) (int, error) {
	var n int
	err := tx.QueryRow(ctx, "WITH d AS ("+sql+" RETURNING at, instance) SELECT count(DISTINCT (at, instance)) FROM d", args...).Scan(&n)
	return n, err
}

func maintainGroup(ctx context.Context, tx pgx.Tx, group string, now time.Time) (store.TrafficMaintenance, error) {
	var out store.TrafficMaintenance
	var watermark int64
	err := tx.QueryRow(ctx, "SELECT watermark FROM traffic_groups WHERE group_name = $1 FOR UPDATE", group).Scan(&watermark)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, nil // the group was deleted since the list was read
	}
	if err != nil {
		return out, err
	}
	limit := store.FloorTraffic(now.Add(-store.TrafficRollupGrace).Unix(), store.TrafficCoarse)
	if limit > watermark {
		n, err := countDistinctPoints(ctx, tx, `INSERT INTO traffic_points
			SELECT group_name, $4::int, at - ((at % $6::bigint) + $6) % $6, instance, series, traffic_sum(counts)
			FROM traffic_points WHERE group_name = $1 AND resolution = $5 AND at >= $2 AND at < $3
			GROUP BY 1, 2, 3, 4, 5
			ON CONFLICT (group_name, resolution, at, instance, series)
			DO UPDATE SET counts = traffic_add(traffic_points.counts, EXCLUDED.counts)`,
			group, watermark, limit, resCoarse, resFine, int64(resCoarse))
		if err != nil {
			return out, fmt.Errorf("roll up: %w", err)
		}
		out.RolledUp = n
		watermark = limit
	}
	for _, prune := range []struct {
		res    int
		cutoff int64
	}{
		// 10 s points go only once rolled up.
		{resFine, min(now.Add(-store.TrafficFineRetention).Unix(), watermark)},
		{resCoarse, now.Add(-store.TrafficCoarseRetention).Unix()},
	} {
		n, err := countDistinctPoints(ctx, tx, "DELETE FROM traffic_points WHERE group_name = $1 AND resolution = $2 AND at < $3",
			group, prune.res, prune.cutoff)
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
	_, err = tx.Exec(ctx, `UPDATE traffic_groups SET watermark = $2, routes = routes - $3, consumers = consumers - $4
		WHERE group_name = $1`, group, watermark, routes, consumers)
	return out, err
}
