// Package state is the node manager's own bbolt file (node.db): the
// host's desired instances and each group's current deployment as last
// received from the admin node, and the per-instance secrets gateways
// authenticate with. It is what lets the node manager start, supervise and
// feed its gateways while the admin node is unreachable.
package state
