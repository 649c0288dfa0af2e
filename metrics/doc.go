// Package metrics holds the metric definitions shared by gateways, node
// managers and the admin node.
package metrics
