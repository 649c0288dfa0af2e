// Package traffic is the contract of the domain's traffic metrics between
// the three processes that handle them: a gateway counts its requests by
// service, route, consumer and status class (a Snapshot of cumulative
// counts, read by its node manager); the node manager turns successive
// snapshots into increments and sends them to the admin node in numbered
// Batches; the admin node adds them up per group. Latencies travel as
// histogram buckets (the bounds of LatencyBuckets) so that
// percentiles are computed from merged histograms, never averaged.
package traffic
