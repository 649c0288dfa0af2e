// Package metrics holds the metric definitions shared by gateways, node
// managers and the admin node: their names, labels and buckets are the
// contract between the process that counts and the ones that collect.
package metrics
