package apitypes

import "time"

// Breakdowns of GET /metrics/query's `by`.
const (
	MetricsByService  = "service"
	MetricsByRoute    = "route"
	MetricsByConsumer = "consumer"
	MetricsByInstance = "instance"
)

// MetricsOther is the route (and, for a service beyond the limit, the
// service) or consumer that labels beyond a group's limits are folded
// into.
const MetricsOther = "(other)"

// MetricsAnswer is the answer of GET /metrics/query: a group's traffic,
// optionally of one service, route, consumer or instance, from From to To
// by Step.
type MetricsAnswer struct {
	Group    string    `json:"group"`
	Service  string    `json:"service,omitempty"`
	Route    string    `json:"route,omitempty"`
	Consumer string    `json:"consumer,omitempty"`
	Instance string    `json:"instance,omitempty"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// StepSeconds is the length of a point; ResolutionSeconds that of the
	// stored points it was summed from (10 or 60).
	StepSeconds       int64           `json:"step_seconds"`
	ResolutionSeconds int64           `json:"resolution_seconds"`
	Points            []MetricsPoint  `json:"points"`
	Totals            MetricsValues   `json:"totals"`
	Breakdown         []MetricsSeries `json:"breakdown,omitempty"`
	// Folded says that some of the traffic counted carries a route or
	// consumer folded into MetricsOther: the group has more than the
	// admin node's limit of them.
	Folded bool `json:"folded"`
	// DroppedBatches counts the batches of counts the node managers of the
	// group's hosts dropped (spool full or too old) or never delivered:
	// counts of this answer may be short by them.
	DroppedBatches uint64 `json:"dropped_batches"`
}

// MetricsPoint is the traffic from Time to Time + step.
type MetricsPoint struct {
	Time time.Time `json:"time"`
	MetricsValues
}

// MetricsSeries is the range's traffic of one service, service and route,
// consumer or instance, as `by` asked; the other labels are empty.
type MetricsSeries struct {
	Service  string `json:"service,omitempty"`
	Route    string `json:"route,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	Instance string `json:"instance,omitempty"`
	MetricsValues
}

// MetricsValues are the traffic of a step or a range. Rate is in requests
// per second over the interval; ratios and latency quantiles (seconds,
// from the merged latency histograms) are null without requests.
type MetricsValues struct {
	Requests      uint64        `json:"requests"`
	Rate          float64       `json:"rate"`
	Status        StatusClasses `json:"status"`
	ErrorRatio4xx *float64      `json:"error_ratio_4xx"`
	ErrorRatio5xx *float64      `json:"error_ratio_5xx"`
	P50           *float64      `json:"p50"`
	P95           *float64      `json:"p95"`
	P99           *float64      `json:"p99"`
	BytesIn       uint64        `json:"bytes_in"`
	BytesOut      uint64        `json:"bytes_out"`
}

// StatusClasses counts requests by status class; None those that ended
// without a status (the client went away first).
type StatusClasses struct {
	S1xx uint64 `json:"1xx"`
	S2xx uint64 `json:"2xx"`
	S3xx uint64 `json:"3xx"`
	S4xx uint64 `json:"4xx"`
	S5xx uint64 `json:"5xx"`
	None uint64 `json:"none"`
}

// HostTraffic is what the admin node received of a host's traffic
// batches: the last one, and the losses its node managers reported
// (Dropped, from their spools) or it saw (Lost, numbers that never came).
type HostTraffic struct {
	LastSeq     uint64    `json:"last_seq"`
	LastBatchAt time.Time `json:"last_batch_at,omitzero"`
	Batches     uint64    `json:"batches"`
	Dropped     uint64    `json:"dropped"`
	Lost        uint64    `json:"lost"`
}
