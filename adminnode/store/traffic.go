package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The domain's traffic (schema version 4) is kept in four buckets:
//
//   - traffic_10s and traffic_1m hold a bucket per group whose keys are the
//     point's time (8 bytes, big-endian Unix seconds) followed by an
//     instance's name, and whose values pack the counts of that instance's
//     series at that time: for each, its id in the group's dictionary
//     (uvarint) and its Counts (encodeCounts). Time first, so that a range
//     of a group is one cursor walk; one value per instance rather than per
//     series, because bbolt's overhead per key (16 bytes, plus the key)
//     would otherwise outweigh the dozen bytes of counts.
//   - traffic_groups holds a bucket per group: the series dictionary ('k'
//     labels class → id, last seen; 'K' id → labels class), the labels
//     known for the cardinality limits ('r' service route, 'c' consumer →
//     last seen), their numbers ('#r', '#c'), the requests folded ('!r',
//     '!c'), the roll-up watermark ('w') and the running totals per service
//     and class ('t' service class → Counts) that the Prometheus scrape
//     reads. Labels are a uvarint length and their bytes; a class is a byte.
//   - traffic_nodes maps a node (host) to its JSON TrafficNode: the highest
//     Seq stored, which makes a retried batch a no-op, and its loss counts.
//
// Integers in traffic_groups values are uvarints.

// Resolutions and retentions of the traffic store.
const (
	TrafficFine            = 10 * time.Second
	TrafficFineRetention   = 24 * time.Hour
	TrafficCoarse          = time.Minute
	TrafficCoarseRetention = 30 * 24 * time.Hour
	// rollupGrace is how long after a minute ends it is rolled up: node
	// managers send every 10 s, so by then its batches have normally
	// arrived. One that comes later (a node manager that could not reach
	// the admin node) is written to both resolutions at once.
	rollupGrace = 30 * time.Second
	// labelTouchEvery bounds how often a known label's last-seen time is
	// rewritten: once an hour is precise enough to forget labels after
	// 30 days, and spares a write per series per batch.
	labelTouchEvery = time.Hour
	// MaxTrafficLabel bounds the length of a label value, in bytes.
	MaxTrafficLabel = 256
)

// OtherLabel is the route (and, for a service never seen, the service) or
// consumer that labels beyond a group's limit fold into. Parenthesised, it
// cannot be the name of a real route or consumer (deploy's names are
// letters, digits, '.', '_' and '-'), which "other" could.
const OtherLabel = "(other)"

var (
	bucketTraffic10s    = []byte("traffic_10s")
	bucketTraffic1m     = []byte("traffic_1m")
	bucketTrafficGroups = []byte("traffic_groups")
	bucketTrafficNodes  = []byte("traffic_nodes")

	keyRouteCount    = []byte("#r")
	keyConsumerCount = []byte("#c")
	keyFoldedRoutes  = []byte("!r")
	keyFoldedCons    = []byte("!c")
	keyWatermark     = []byte("w")
)

const (
	prefixRoute    = 'r'
	prefixConsumer = 'c'
	prefixTotal    = 't'
	prefixSeries   = 'k'
	prefixSeriesID = 'K'
)

// trafficClasses are the status classes in the order of their byte in a
// series key.
var trafficClasses = [...]string{traffic.ClassNone, traffic.Class1xx, traffic.Class2xx, traffic.Class3xx, traffic.Class4xx, traffic.Class5xx}

func classIndex(class string) (byte, bool) {
	i := slices.Index(trafficClasses[:], class)
	return byte(i), i >= 0
}

// TrafficLimits bound the labels of a group: at most MaxRoutes
// service/route pairs and MaxConsumers consumers; beyond, the label folds
// into OtherLabel.
type TrafficLimits struct {
	MaxRoutes    int
	MaxConsumers int
}

// TrafficIngest says what IngestTraffic did with a batch.
type TrafficIngest struct {
	// Stored is false for a batch whose Seq was already stored: a retry.
	Stored bool
	// Ack is the highest Seq stored for the node.
	Ack uint64
	// Lost is the number of Seqs skipped between the previous batch
	// stored and this one: batches the node never delivered.
	Lost uint64
	// Folded counts the series whose route or consumer was folded.
	Folded int
	// Skipped counts the series of groups that do not exist (deleted
	// while the batch waited in a spool).
	Skipped int
}

// TrafficNode is what the store knows of a node's batches.
type TrafficNode struct {
	Node        string    `json:"node"`
	LastSeq     uint64    `json:"last_seq"`
	LastBatchAt time.Time `json:"last_batch_at"`
	// Batches counts the batches stored, Duplicates the retries of stored
	// ones, Lost the Seqs that never arrived.
	Batches    uint64 `json:"batches"`
	Duplicates uint64 `json:"duplicates"`
	Lost       uint64 `json:"lost"`
	// Dropped counts the batches the host's node managers dropped from
	// their spools, as they reported it: DroppedBase for the node managers
	// before the last join, plus the current one's count.
	Dropped     uint64 `json:"dropped"`
	DroppedBase uint64 `json:"dropped_base"`
	// Series counts the series stored, Skipped those of missing groups.
	Series  uint64 `json:"series"`
	Skipped uint64 `json:"skipped"`
}

// TrafficFilter selects series; empty fields match all.
type TrafficFilter struct {
	Service  string
	Route    string
	Consumer string
	Instance string
}

func (f *TrafficFilter) match(l *TrafficFilter) bool {
	return (f.Service == "" || f.Service == l.Service) && (f.Route == "" || f.Route == l.Route) &&
		(f.Consumer == "" || f.Consumer == l.Consumer) && (f.Instance == "" || f.Instance == l.Instance)
}

// Breakdowns of TrafficQuery.By.
const (
	ByService  = "service"
	ByRoute    = "route"
	ByConsumer = "consumer"
	ByInstance = "instance"
)

// TrafficQuery asks for a group's traffic in [From, To) by Step, read at
// Resolution (TrafficFine or TrafficCoarse). From and To are multiples of
// Step, Step a multiple of Resolution. By, when set, also sums the range
// per service, service and route, consumer or instance.
type TrafficQuery struct {
	Group  string
	Filter TrafficFilter
	From   time.Time
	To     time.Time
	Step   time.Duration
	// Resolution is TrafficFine or TrafficCoarse.
	Resolution time.Duration
	By         string
}

// TrafficSum is the merged counts of series, with the requests of each
// status class.
type TrafficSum struct {
	traffic.Counts
	classes [len(trafficClasses)]uint64
}

// Class returns the requests of a status class (traffic.Class2xx…).
func (s *TrafficSum) Class(class string) uint64 {
	if i, ok := classIndex(class); ok {
		return s.classes[i]
	}
	return 0
}

func (s *TrafficSum) add(c *traffic.Counts, class byte) {
	s.Counts.Add(c)
	s.classes[class] += c.Requests
}

// TrafficPoint is a step of a query: the traffic from Time to Time+Step.
type TrafficPoint struct {
	Time time.Time
	TrafficSum
}

// TrafficBreakdown is the range's traffic of one service, route, consumer
// or instance (the other labels empty).
type TrafficBreakdown struct {
	Labels TrafficFilter
	TrafficSum
}

// TrafficResult answers a TrafficQuery.
type TrafficResult struct {
	Points    []TrafficPoint
	Total     TrafficSum
	Breakdown []TrafficBreakdown
	// Folded says that some series of the answer carry OtherLabel.
	Folded bool
}

// TrafficTotal is the running total of a service's requests of one class
// in a group.
type TrafficTotal struct {
	Service string
	Class   string
	traffic.Counts
}

// TrafficGroup is a group's running totals and cardinality state.
type TrafficGroup struct {
	Group string
	// Routes and Consumers are the distinct labels tracked.
	Routes, Consumers int
	// FoldedRoutes and FoldedConsumers count the requests whose route or
	// consumer was folded into OtherLabel.
	FoldedRoutes, FoldedConsumers uint64
	Totals                        []TrafficTotal
}

// TrafficMaintenance says what MaintainTraffic did.
type TrafficMaintenance struct {
	// RolledUp counts the 1 min points written from 10 s ones, and Pruned
	// the points removed past retention (a point is an instance's series
	// at a time); Forgotten the routes and consumers unseen for the 1 min
	// retention, which no longer count against the limits.
	RolledUp, Pruned, Forgotten int
}

// appendLabel appends a length-prefixed label.
func appendLabel(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readLabel(b []byte) (string, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, errors.New("bad label")
	}
	return string(b[w : w+int(n)]), b[w+int(n):], nil
}

// seriesLabels encodes a series' labels but its instance, and its class,
// as the dictionary knows them (without the prefix).
func seriesLabels(l *TrafficFilter, class byte) []byte {
	b := appendLabel(nil, l.Service)
	b = appendLabel(b, l.Route)
	b = appendLabel(b, l.Consumer)
	return append(b, class)
}

func parseSeriesLabels(b []byte) (l TrafficFilter, class byte, err error) {
	for _, f := range []*string{&l.Service, &l.Route, &l.Consumer} {
		if *f, b, err = readLabel(b); err != nil {
			return l, 0, err
		}
	}
	if len(b) != 1 || int(b[0]) >= len(trafficClasses) {
		return l, 0, errors.New("bad class")
	}
	return l, b[0], nil
}

func seriesIDKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixSeriesID}, id)
}

func timeKey(b []byte, unix int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(unix)) }

// pointKey is the key of an instance's point at unix.
func pointKey(unix int64, instance string) []byte {
	return append(timeKey(make([]byte, 0, 8+len(instance)), unix), instance...)
}

func keyTime(k []byte) int64 { return int64(binary.BigEndian.Uint64(k[:8])) }

// countsFields lists the fields of Counts in their encoded order.
func countsFields(c *traffic.Counts) [4 + traffic.NumBuckets]*uint64 {
	var f [4 + traffic.NumBuckets]*uint64
	f[0], f[1], f[2], f[3] = &c.Requests, &c.BytesIn, &c.BytesOut, &c.LatencySumMicros
	for i := range c.Latency {
		f[4+i] = &c.Latency[i]
	}
	return f
}

// encodeCounts writes a uvarint bitmap of the non-zero fields, then each
// of them as a uvarint: most series have few latency buckets in use, so a
// point is typically a dozen bytes.
func encodeCounts(b []byte, c *traffic.Counts) []byte {
	fields := countsFields(c)
	var mask uint64
	for i, f := range fields {
		if *f != 0 {
			mask |= 1 << i
		}
	}
	b = binary.AppendUvarint(b, mask)
	for _, f := range fields {
		if *f != 0 {
			b = binary.AppendUvarint(b, *f)
		}
	}
	return b
}

// decodeCounts reads counts at the start of b and returns the rest.
func decodeCounts(b []byte, c *traffic.Counts) ([]byte, error) {
	mask, w := binary.Uvarint(b)
	if w <= 0 || mask>>(4+traffic.NumBuckets) != 0 {
		return nil, errors.New("bad counts")
	}
	b = b[w:]
	for i, f := range countsFields(c) {
		if mask&(1<<i) == 0 {
			continue
		}
		if *f, w = binary.Uvarint(b); w <= 0 {
			return nil, errors.New("bad counts")
		}
		b = b[w:]
	}
	return b, nil
}

// mergeCounts adds c to the counts at key.
func mergeCounts(bk *bolt.Bucket, key []byte, c *traffic.Counts) error {
	sum := *c
	if v := bk.Get(key); v != nil {
		var old traffic.Counts
		if rest, err := decodeCounts(v, &old); err != nil || len(rest) != 0 {
			return fmt.Errorf("traffic key %x: bad counts", key)
		}
		sum.Add(&old)
	}
	return bk.Put(key, encodeCounts(nil, &sum))
}

// point is an instance's counts at a time, by series id.
type point map[uint64]*traffic.Counts

func (p point) add(id uint64, c *traffic.Counts) {
	if sum := p[id]; sum != nil {
		sum.Add(c)
		return
	}
	cp := *c
	p[id] = &cp
}

// eachCounts calls fn with every series of a packed point. The counts are
// fn's only during the call: one variable serves them all, since a day of
// a group's points is hundreds of thousands of them.
func eachCounts(v []byte, fn func(id uint64, c *traffic.Counts)) error {
	var c traffic.Counts
	for len(v) > 0 {
		id, w := binary.Uvarint(v)
		if w <= 0 {
			return errors.New("bad series id")
		}
		c = traffic.Counts{}
		rest, err := decodeCounts(v[w:], &c)
		if err != nil {
			return err
		}
		fn(id, &c)
		v = rest
	}
	return nil
}

// mergePoint adds p into the packed point at key.
func mergePoint(bk *bolt.Bucket, key []byte, p point) error {
	sum := point{}
	if v := bk.Get(key); v != nil {
		if err := eachCounts(v, sum.add); err != nil {
			return fmt.Errorf("traffic key %x: %w", key, err)
		}
	}
	for id, c := range p {
		sum.add(id, c)
	}
	var b []byte
	for _, id := range slices.Sorted(maps.Keys(sum)) {
		b = binary.AppendUvarint(b, id)
		b = encodeCounts(b, sum[id])
	}
	return bk.Put(key, b)
}

func getUint(bk *bolt.Bucket, key []byte) uint64 {
	n, _ := binary.Uvarint(bk.Get(key))
	return n
}

func putUint(bk *bolt.Bucket, key []byte, n uint64) error {
	return bk.Put(key, binary.AppendUvarint(nil, n))
}

func floorTo(unix int64, step time.Duration) int64 {
	s := int64(step / time.Second)
	return unix - ((unix%s)+s)%s
}

func checkBatch(b *traffic.Batch) error {
	switch {
	case b.Node == "":
		return fmt.Errorf("traffic batch without a node: %w", ErrInvalid)
	case b.Seq == 0:
		return fmt.Errorf("traffic batch of node %q: seq must be at least 1: %w", b.Node, ErrInvalid)
	case b.End.IsZero():
		return fmt.Errorf("traffic batch %d of node %q: no end time: %w", b.Seq, b.Node, ErrInvalid)
	}
	for i := range b.Series {
		s := &b.Series[i]
		if s.Group == "" {
			return fmt.Errorf("traffic batch %d of node %q: series[%d]: no group: %w", b.Seq, b.Node, i, ErrInvalid)
		}
		if _, ok := classIndex(s.Class); !ok {
			return fmt.Errorf("traffic batch %d of node %q: series[%d]: unknown class %q: %w", b.Seq, b.Node, i, s.Class, ErrInvalid)
		}
		for _, l := range []string{s.Group, s.Instance, s.Service, s.Route, s.Consumer} {
			if len(l) > MaxTrafficLabel {
				return fmt.Errorf("traffic batch %d of node %q: series[%d]: label longer than %d bytes: %w", b.Seq, b.Node, i, MaxTrafficLabel, ErrInvalid)
			}
		}
	}
	return nil
}

// groupWriter writes one group's series of a batch: it folds their
// labels, finds their ids, and sums them by instance and by total before
// writing each once.
type groupWriter struct {
	fine, coarse, meta *bolt.Bucket
	watermark          int64
	now                uint64
	lim                TrafficLimits
	ids                map[string]uint64
	points             map[string]point
	totals             map[string]*traffic.Counts
}

func newGroupWriter(tx *bolt.Tx, group string, lim TrafficLimits, now time.Time) (*groupWriter, error) {
	name := []byte(group)
	g := &groupWriter{now: uint64(now.Unix()), lim: lim, ids: map[string]uint64{}, points: map[string]point{}, totals: map[string]*traffic.Counts{}}
	var err error
	if g.fine, err = tx.Bucket(bucketTraffic10s).CreateBucketIfNotExists(name); err != nil {
		return nil, err
	}
	if g.coarse, err = tx.Bucket(bucketTraffic1m).CreateBucketIfNotExists(name); err != nil {
		return nil, err
	}
	if g.meta, err = tx.Bucket(bucketTrafficGroups).CreateBucketIfNotExists(name); err != nil {
		return nil, err
	}
	g.watermark = int64(getUint(g.meta, keyWatermark))
	return g, nil
}

// admit reports whether the label at key is known or may be added under
// limit (counted at countKey), recording it; a known label's last-seen
// time is refreshed at most every labelTouchEvery.
func (g *groupWriter) admit(key, countKey []byte, limit int) (bool, error) {
	if v := g.meta.Get(key); v != nil {
		if seen, _ := binary.Uvarint(v); g.now-seen >= uint64(labelTouchEvery/time.Second) {
			return true, putUint(g.meta, key, g.now)
		}
		return true, nil
	}
	n := getUint(g.meta, countKey)
	if n >= uint64(limit) {
		return false, nil
	}
	if err := putUint(g.meta, countKey, n+1); err != nil {
		return false, err
	}
	return true, putUint(g.meta, key, g.now)
}

// seriesID returns the id of the series in the group's dictionary, adding
// it if new; a known series' last-seen time is refreshed at most every
// labelTouchEvery.
func (g *groupWriter) seriesID(l *TrafficFilter, class byte) (uint64, error) {
	labels := seriesLabels(l, class)
	if id, ok := g.ids[string(labels)]; ok {
		return id, nil
	}
	key := append([]byte{prefixSeries}, labels...)
	var id uint64
	if v := g.meta.Get(key); v != nil {
		var w int
		id, w = binary.Uvarint(v)
		if seen, _ := binary.Uvarint(v[w:]); g.now-seen >= uint64(labelTouchEvery/time.Second) {
			if err := g.meta.Put(key, binary.AppendUvarint(binary.AppendUvarint(nil, id), g.now)); err != nil {
				return 0, err
			}
		}
	} else {
		var err error
		if id, err = g.meta.NextSequence(); err != nil {
			return 0, err
		}
		if err := g.meta.Put(key, binary.AppendUvarint(binary.AppendUvarint(nil, id), g.now)); err != nil {
			return 0, err
		}
		if err := g.meta.Put(seriesIDKey(id), labels); err != nil {
			return 0, err
		}
	}
	g.ids[string(labels)] = id
	return id, nil
}

// add counts a series of the batch.
func (g *groupWriter) add(instance string, id uint64, totalKey []byte, c *traffic.Counts) {
	p := g.points[instance]
	if p == nil {
		p = point{}
		g.points[instance] = p
	}
	p.add(id, c)
	if t := g.totals[string(totalKey)]; t != nil {
		t.Add(c)
	} else {
		cp := *c
		g.totals[string(totalKey)] = &cp
	}
}

// flush writes the batch's sums: each instance's point at 10 s (and at
// 1 min when that minute was already rolled up) and the totals.
func (g *groupWriter) flush(fine, minute int64) error {
	for instance, p := range g.points {
		if err := mergePoint(g.fine, pointKey(fine, instance), p); err != nil {
			return err
		}
		if minute < g.watermark {
			if err := mergePoint(g.coarse, pointKey(minute, instance), p); err != nil {
				return err
			}
		}
	}
	for key, c := range g.totals {
		if err := mergeCounts(g.meta, []byte(key), c); err != nil {
			return err
		}
	}
	return nil
}

// fold replaces the route and consumer of l by OtherLabel when they are
// beyond the group's limits, and reports whether it did. The service of a
// folded route stays unless no route of it is known: otherwise a node
// could add services without bound.
func (g *groupWriter) fold(l *TrafficFilter, requests uint64) (bool, error) {
	folded := false
	routeKey := appendLabel(appendLabel([]byte{prefixRoute}, l.Service), l.Route)
	ok, err := g.admit(routeKey, keyRouteCount, g.lim.MaxRoutes)
	if err != nil {
		return false, err
	}
	if !ok {
		prefix := appendLabel([]byte{prefixRoute}, l.Service)
		if k, _ := g.meta.Cursor().Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
			l.Service = OtherLabel
		}
		l.Route = OtherLabel
		folded = true
		if err := putUint(g.meta, keyFoldedRoutes, getUint(g.meta, keyFoldedRoutes)+requests); err != nil {
			return false, err
		}
	}
	if l.Consumer != "" {
		ok, err := g.admit(appendLabel([]byte{prefixConsumer}, l.Consumer), keyConsumerCount, g.lim.MaxConsumers)
		if err != nil {
			return false, err
		}
		if !ok {
			l.Consumer = OtherLabel
			folded = true
			if err := putUint(g.meta, keyFoldedCons, getUint(g.meta, keyFoldedCons)+requests); err != nil {
				return false, err
			}
		}
	}
	return folded, nil
}

// pointTime is when a batch's increments are counted: the middle of its
// span, or of its last 10 s when it spans more (a node manager's first
// reading of a gateway, or a batch without a Start). A batch spans one
// collection interval, 10 s, ending when the gateways were read: its
// End's point would hold what happened mostly in the point before.
func pointTime(b *traffic.Batch) time.Time {
	if !b.Start.Before(b.End) {
		return b.End
	}
	return b.End.Add(-min(b.End.Sub(b.Start), TrafficFine) / 2)
}

// IngestTraffic stores a node's batch in one transaction, unless its Seq
// is not above the node's last one (a retry, acknowledged without being
// stored again). Each series is added into the 10 s point of the batch's
// pointTime, and into the 1 min point too when that minute was already
// rolled up; series of groups that do not exist are skipped. now stamps
// the node's last batch and the labels' last use.
func (b *Bolt) IngestTraffic(ctx context.Context, batch traffic.Batch, lim TrafficLimits, now time.Time) (TrafficIngest, error) {
	var out TrafficIngest
	if err := ValidateTrafficBatch(&batch, lim); err != nil {
		return out, err
	}
	err := b.update(ctx, func(tx *bolt.Tx) error {
		out = TrafficIngest{}
		nodes := tx.Bucket(bucketTrafficNodes)
		n := TrafficNode{Node: batch.Node}
		if _, err := get(nodes, batch.Node, &n); err != nil {
			return err
		}
		if batch.Seq <= n.LastSeq {
			n.Duplicates++
			out.Ack = n.LastSeq
			return put(nodes, []byte(batch.Node), n)
		}
		out.Stored, out.Ack = true, batch.Seq
		out.Lost = batch.Seq - n.LastSeq - 1
		n.Lost += out.Lost
		n.LastSeq = batch.Seq
		n.LastBatchAt = now.UTC()
		n.Batches++
		n.Dropped = max(n.Dropped, n.DroppedBase+batch.Dropped)

		at := pointTime(&batch).Unix()
		fine, minute := floorTo(at, TrafficFine), floorTo(at, TrafficCoarse)
		writers := map[string]*groupWriter{}
		groups := tx.Bucket(bucketGroups)
		for i := range batch.Series {
			s := &batch.Series[i]
			g, ok := writers[s.Group]
			if !ok {
				if groups.Get([]byte(s.Group)) != nil {
					var err error
					if g, err = newGroupWriter(tx, s.Group, lim, now); err != nil {
						return err
					}
				}
				writers[s.Group] = g
			}
			if g == nil {
				out.Skipped++
				continue
			}
			l := TrafficFilter{Service: s.Service, Route: s.Route, Consumer: s.Consumer, Instance: s.Instance}
			folded, err := g.fold(&l, s.Requests)
			if err != nil {
				return err
			}
			if folded {
				out.Folded++
			}
			class, _ := classIndex(s.Class)
			id, err := g.seriesID(&l, class)
			if err != nil {
				return err
			}
			g.add(s.Instance, id, append(appendLabel([]byte{prefixTotal}, l.Service), class), &s.Counts)
		}
		for _, g := range writers {
			if g == nil {
				continue
			}
			if err := g.flush(fine, minute); err != nil {
				return err
			}
		}
		n.Series += uint64(len(batch.Series) - out.Skipped)
		n.Skipped += uint64(out.Skipped)
		return put(nodes, []byte(batch.Node), n)
	})
	return out, err
}

// ResetTrafficNode starts the node's sequence again: a node manager that
// joins has a new data dir, hence a new spool numbered from 1. What the
// earlier one reported dropped is kept.
func (b *Bolt) ResetTrafficNode(ctx context.Context, node string) error {
	return b.update(ctx, func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketTrafficNodes)
		var n TrafficNode
		ok, err := get(nodes, node, &n)
		if err != nil || !ok {
			return err
		}
		n.LastSeq = 0
		n.DroppedBase = n.Dropped
		return put(nodes, []byte(node), n)
	})
}

// ListTrafficNodes returns what the store knows of every node's batches,
// sorted by node.
func (b *Bolt) ListTrafficNodes(ctx context.Context) ([]TrafficNode, error) {
	return list[TrafficNode](ctx, b, bucketTrafficNodes, nil)
}

func checkQuery(q *TrafficQuery) error {
	step, res := q.Step, q.Resolution
	switch {
	case res != TrafficFine && res != TrafficCoarse:
		return fmt.Errorf("traffic resolution %s: want %s or %s: %w", res, TrafficFine, TrafficCoarse, ErrInvalid)
	case step < res || step%res != 0:
		return fmt.Errorf("traffic step %s: must be a multiple of the resolution %s: %w", step, res, ErrInvalid)
	case !q.To.After(q.From):
		return fmt.Errorf("traffic range %s to %s is empty: %w", q.From, q.To, ErrInvalid)
	case q.From.Unix()%int64(step/time.Second) != 0 || q.To.Unix()%int64(step/time.Second) != 0:
		return fmt.Errorf("traffic range %s to %s: not aligned to the step %s: %w", q.From, q.To, step, ErrInvalid)
	}
	switch q.By {
	case "", ByService, ByRoute, ByConsumer, ByInstance:
	default:
		return fmt.Errorf("traffic breakdown %q: want service, route, consumer or instance: %w", q.By, ErrInvalid)
	}
	return nil
}

// byKey keeps of l what a breakdown by `by` is made of.
func byKey(by string, l *TrafficFilter) TrafficFilter {
	switch by {
	case ByService:
		return TrafficFilter{Service: l.Service}
	case ByRoute:
		return TrafficFilter{Service: l.Service, Route: l.Route}
	case ByConsumer:
		return TrafficFilter{Consumer: l.Consumer}
	}
	return TrafficFilter{Instance: l.Instance}
}

// QueryTraffic sums a group's series in steps. At TrafficCoarse, the
// minutes not rolled up yet are read from the 10 s points.
func (b *Bolt) QueryTraffic(ctx context.Context, q TrafficQuery) (TrafficResult, error) {
	acc, err := NewTrafficAccumulator(q)
	if err != nil {
		return TrafficResult{}, err
	}
	// series are the dictionary's entries met so far; nil for an id the
	// dictionary no longer has (a point whose time is past its
	// retention, as when a batch came with a clock far ahead).
	type entry struct {
		labels TrafficFilter
		class  byte
	}
	series := map[uint64]*entry{}
	var meta *bolt.Bucket
	lookup := func(id uint64) (*entry, error) {
		if e, ok := series[id]; ok {
			return e, nil
		}
		var e *entry
		if v := meta.Get(seriesIDKey(id)); v != nil {
			l, class, err := parseSeriesLabels(v)
			if err != nil {
				return nil, fmt.Errorf("traffic of group %q: series %d: %w", q.Group, id, err)
			}
			e = &entry{labels: l, class: class}
		}
		series[id] = e
		return e, nil
	}
	scan := func(bk *bolt.Bucket, lo, hi int64) error {
		if bk == nil || lo >= hi {
			return nil
		}
		c := bk.Cursor()
		for k, v := c.Seek(timeKey(nil, lo)); k != nil && keyTime(k) < hi; k, v = c.Next() {
			instance := string(k[8:])
			if q.Filter.Instance != "" && q.Filter.Instance != instance {
				continue
			}
			var lookupErr error
			err := eachCounts(v, func(id uint64, counts *traffic.Counts) {
				e, err := lookup(id)
				if err != nil {
					lookupErr = err
				}
				if e == nil {
					return
				}
				l := e.labels
				l.Instance = instance
				acc.add(keyTime(k), &l, e.class, counts)
			})
			if err == nil {
				err = lookupErr
			}
			if err != nil {
				return fmt.Errorf("traffic of group %q: key %x: %w", q.Group, k, err)
			}
		}
		return nil
	}
	from, to := q.From.Unix(), q.To.Unix()
	err = b.view(ctx, func(tx *bolt.Tx) error {
		if err := exists(tx, bucketGroups, "group", q.Group); err != nil {
			return err
		}
		name := []byte(q.Group)
		if meta = tx.Bucket(bucketTrafficGroups).Bucket(name); meta == nil {
			return nil // no traffic yet
		}
		fine := tx.Bucket(bucketTraffic10s).Bucket(name)
		if q.Resolution == TrafficFine {
			return scan(fine, from, to)
		}
		watermark := int64(getUint(meta, keyWatermark))
		if err := scan(tx.Bucket(bucketTraffic1m).Bucket(name), from, min(to, watermark)); err != nil {
			return err
		}
		return scan(fine, max(from, watermark), to)
	})
	if err != nil {
		return TrafficResult{}, err
	}
	return acc.Result(), nil
}

// TrafficTotals returns every group's running totals, sorted by group,
// service and class.
func (b *Bolt) TrafficTotals(ctx context.Context) ([]TrafficGroup, error) {
	var out []TrafficGroup
	err := b.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrafficGroups).ForEachBucket(func(name []byte) error {
			meta := tx.Bucket(bucketTrafficGroups).Bucket(name)
			g := TrafficGroup{Group: string(name),
				Routes: int(getUint(meta, keyRouteCount)), Consumers: int(getUint(meta, keyConsumerCount)),
				FoldedRoutes: getUint(meta, keyFoldedRoutes), FoldedConsumers: getUint(meta, keyFoldedCons)}
			c := meta.Cursor()
			for k, v := c.Seek([]byte{prefixTotal}); k != nil && k[0] == prefixTotal; k, v = c.Next() {
				service, rest, err := readLabel(k[1:])
				if err != nil || len(rest) != 1 || int(rest[0]) >= len(trafficClasses) {
					return fmt.Errorf("traffic totals of group %q: bad key %x", name, k)
				}
				t := TrafficTotal{Service: service, Class: trafficClasses[rest[0]]}
				if rest, err := decodeCounts(v, &t.Counts); err != nil || len(rest) != 0 {
					return fmt.Errorf("traffic totals of group %q: key %x: bad counts", name, k)
				}
				g.Totals = append(g.Totals, t)
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

// MaintainTraffic rolls the 10 s points of every minute that ended more
// than rollupGrace before now up into 1 min points, removes the points
// past their retention (10 s ones only once rolled up), and forgets labels
// unseen for TrafficCoarseRetention. Each group is one transaction.
func (b *Bolt) MaintainTraffic(ctx context.Context, now time.Time) (TrafficMaintenance, error) {
	var out TrafficMaintenance
	var groups []string
	err := b.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTrafficGroups).ForEachBucket(func(name []byte) error {
			groups = append(groups, string(name))
			return nil
		})
	})
	if err != nil {
		return out, err
	}
	for _, g := range groups {
		err := b.update(ctx, func(tx *bolt.Tx) error {
			m, err := maintainGroup(tx, g, now)
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

func maintainGroup(tx *bolt.Tx, group string, now time.Time) (TrafficMaintenance, error) {
	var out TrafficMaintenance
	name := []byte(group)
	meta := tx.Bucket(bucketTrafficGroups).Bucket(name)
	fine := tx.Bucket(bucketTraffic10s).Bucket(name)
	coarse := tx.Bucket(bucketTraffic1m).Bucket(name)
	if meta == nil || fine == nil || coarse == nil {
		return out, nil // the group was deleted since the list was read
	}
	watermark := int64(getUint(meta, keyWatermark))
	limit := floorTo(now.Add(-rollupGrace).Unix(), TrafficCoarse)
	if limit > watermark {
		sums := map[string]point{}
		c := fine.Cursor()
		for k, v := c.Seek(timeKey(nil, watermark)); k != nil && keyTime(k) < limit; k, v = c.Next() {
			key := string(pointKey(floorTo(keyTime(k), TrafficCoarse), string(k[8:])))
			sum := sums[key]
			if sum == nil {
				sum = point{}
				sums[key] = sum
			}
			if err := eachCounts(v, sum.add); err != nil {
				return out, fmt.Errorf("key %x: %w", k, err)
			}
		}
		for key, sum := range sums {
			if err := mergePoint(coarse, []byte(key), sum); err != nil {
				return out, err
			}
		}
		out.RolledUp = len(sums)
		watermark = limit
		if err := putUint(meta, keyWatermark, uint64(watermark)); err != nil {
			return out, err
		}
	}
	pruned, err := prune(fine, min(now.Add(-TrafficFineRetention).Unix(), watermark))
	if err != nil {
		return out, err
	}
	out.Pruned += pruned
	if pruned, err = prune(coarse, now.Add(-TrafficCoarseRetention).Unix()); err != nil {
		return out, err
	}
	out.Pruned += pruned
	if out.Forgotten, err = forgetLabels(meta, uint64(now.Add(-TrafficCoarseRetention).Unix())); err != nil {
		return out, err
	}
	// A series is last seen up to labelTouchEvery after its stamp: an hour
	// more, and none of its points are left.
	return out, forgetSeries(meta, uint64(now.Add(-TrafficCoarseRetention-labelTouchEvery).Unix()))
}

// forgetSeries removes from the dictionary the series last seen before
// cutoff, whose points are all gone.
func forgetSeries(meta *bolt.Bucket, cutoff uint64) error {
	var old [][]byte
	c := meta.Cursor()
	for k, v := c.Seek([]byte{prefixSeries}); k != nil && k[0] == prefixSeries; k, v = c.Next() {
		id, w := binary.Uvarint(v)
		if seen, _ := binary.Uvarint(v[w:]); seen < cutoff {
			old = append(old, slices.Clone(k), seriesIDKey(id))
		}
	}
	for _, k := range old {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes the points before cutoff. Keys are collected first:
// deleting under a bbolt cursor makes it skip the next key.
func prune(bk *bolt.Bucket, cutoff int64) (int, error) {
	var old [][]byte
	c := bk.Cursor()
	for k, _ := c.First(); k != nil && keyTime(k) < cutoff; k, _ = c.Next() {
		old = append(old, slices.Clone(k))
	}
	for _, k := range old {
		if err := bk.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// forgetLabels removes the routes and consumers last seen before cutoff:
// their points are gone, and they no longer take a place under the limit.
func forgetLabels(meta *bolt.Bucket, cutoff uint64) (int, error) {
	forgotten := 0
	for _, kind := range []struct {
		prefix byte
		count  []byte
	}{{prefixRoute, keyRouteCount}, {prefixConsumer, keyConsumerCount}} {
		var old [][]byte
		c := meta.Cursor()
		for k, v := c.Seek([]byte{kind.prefix}); k != nil && k[0] == kind.prefix; k, v = c.Next() {
			if seen, _ := binary.Uvarint(v); seen < cutoff {
				old = append(old, slices.Clone(k))
			}
		}
		for _, k := range old {
			if err := meta.Delete(k); err != nil {
				return 0, err
			}
		}
		if len(old) > 0 {
			if err := putUint(meta, kind.count, getUint(meta, kind.count)-uint64(len(old))); err != nil {
				return 0, err
			}
		}
		forgotten += len(old)
	}
	return forgotten, nil
}

// deleteGroupTraffic removes a deleted group's traffic, so that a new
// group of the same name starts empty.
func deleteGroupTraffic(tx *bolt.Tx, group string) error {
	for _, bucket := range [][]byte{bucketTraffic10s, bucketTraffic1m, bucketTrafficGroups} {
		bk := tx.Bucket(bucket)
		if bk.Bucket([]byte(group)) == nil {
			continue
		}
		if err := bk.DeleteBucket([]byte(group)); err != nil {
			return err
		}
	}
	return nil
}
