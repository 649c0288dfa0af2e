package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse/metrics/traffic"
)

// The rules every store's traffic follows, shared so that the bbolt and
// PostgreSQL stores check, time and sum alike.

// ValidateTrafficBatch refuses a malformed batch or limits (ErrInvalid).
func ValidateTrafficBatch(b *traffic.Batch, lim TrafficLimits) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if lim.MaxRoutes < 1 || lim.MaxConsumers < 1 {
		return fmt.Errorf("traffic limits %+v: must be at least 1: %w", lim, ErrInvalid)
	}
	return nil
}

// TrafficPointTime is when a batch's increments are counted (pointTime).
func TrafficPointTime(b *traffic.Batch) time.Time { return pointTime(b) }

// FloorTraffic rounds Unix seconds down to a multiple of step.
func FloorTraffic(unix int64, step time.Duration) int64 { return floorTo(unix, step) }

// TrafficClassIndex is the rank of a status class in the order totals
// are sorted by: none, 1xx … 5xx; false for an unknown class.
func TrafficClassIndex(class string) (int, bool) {
	i, ok := classIndex(class)
	return int(i), ok
}

// Add counts c as requests of class.
func (s *TrafficSum) Add(c *traffic.Counts, class string) {
	if i, ok := classIndex(class); ok {
		s.add(c, i)
	}
}

// TrafficAccumulator sums what a store reads for a TrafficQuery into its
// result: points by step, the total, the breakdown and whether folded
// labels are in it.
type TrafficAccumulator struct {
	q         TrafficQuery
	from      int64
	step      int64
	out       TrafficResult
	breakdown map[TrafficFilter]*TrafficSum
}

// NewTrafficAccumulator checks q (ErrInvalid for what TrafficQuery's rules
// refuse) and returns its empty result.
func NewTrafficAccumulator(q TrafficQuery) (*TrafficAccumulator, error) {
	if err := checkQuery(&q); err != nil {
		return nil, err
	}
	a := &TrafficAccumulator{q: q, from: q.From.Unix(), step: int64(q.Step / time.Second), breakdown: map[TrafficFilter]*TrafficSum{}}
	a.out.Points = make([]TrafficPoint, (q.To.Unix()-a.from)/a.step)
	for i := range a.out.Points {
		a.out.Points[i].Time = time.Unix(a.from+int64(i)*a.step, 0).UTC()
	}
	return a, nil
}

// Add counts c, the counts of series l (its instance included) of class
// at Unix time at, which must be in the query's range, unless the query's
// filter leaves it out.
func (a *TrafficAccumulator) Add(at int64, l TrafficFilter, class string, c *traffic.Counts) {
	if i, ok := classIndex(class); ok {
		a.add(at, &l, i, c)
	}
}

func (a *TrafficAccumulator) add(at int64, l *TrafficFilter, class byte, c *traffic.Counts) {
	if !a.q.Filter.match(l) {
		return
	}
	a.out.Points[(at-a.from)/a.step].add(c, class)
	a.out.Total.add(c, class)
	if a.q.By != "" {
		k := byKey(a.q.By, l)
		sum := a.breakdown[k]
		if sum == nil {
			sum = &TrafficSum{}
			a.breakdown[k] = sum
		}
		sum.add(c, class)
	}
	if l.Service == OtherLabel || l.Route == OtherLabel || l.Consumer == OtherLabel {
		a.out.Folded = true
	}
}

// Result returns the sums, the breakdown busiest first.
func (a *TrafficAccumulator) Result() TrafficResult {
	out := a.out
	out.Breakdown = nil
	for l, sum := range a.breakdown {
		out.Breakdown = append(out.Breakdown, TrafficBreakdown{Labels: l, TrafficSum: *sum})
	}
	// Busiest first, then by labels, so that equal answers print alike.
	slices.SortFunc(out.Breakdown, func(a, b TrafficBreakdown) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests),
			cmp.Compare(a.Labels.Service, b.Labels.Service), cmp.Compare(a.Labels.Route, b.Labels.Route),
			cmp.Compare(a.Labels.Consumer, b.Labels.Consumer), cmp.Compare(a.Labels.Instance, b.Labels.Instance))
	})
	return out
}

// Timings of the traffic rules, for every store: how long after a minute
// ends it is rolled up, and how often a known label's last use is
// rewritten.
const (
	TrafficRollupGrace     = rollupGrace
	TrafficLabelTouchEvery = labelTouchEvery
)
