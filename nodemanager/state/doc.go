// Package state is the node manager's own bbolt file (node.db): the
// host's desired instances and each group's current deployment as last
// received from the admin node, the per-instance secrets gateways
// authenticate with, and the traffic spool (batches of the gateways'
// traffic counts waiting for the admin node). It is what lets the node
// manager start, supervise and feed its gateways, and keep their counts,
// while the admin node is unreachable.
package state
