// Package store keeps the admin node's state: the domain, its groups,
// hosts and instances, each group's draft and deployment history, users,
// roles, role bindings, API tokens, the audit log, the domain's traffic
// (traffic.go: 10 s and 1 min points per group, rolled up and pruned by
// MaintainTraffic, each node manager's batch stored once), and its
// settings (settings.go: environments, their secrets, sealed by the
// caller, and trusted domains).
//
// Store is the interface the admin node programs against; Bolt keeps it in
// one bbolt file, and package pgstore in PostgreSQL. The interface carries
// no storage types and every method is a transaction of its own: a caller
// never holds a transaction across calls. Package storetest is its contract
// as tests, run against both; trafficshared.go holds the traffic rules
// both follow. Freeze is the one
// operation that reads and writes several kinds at once, because a
// deployment must be numbered and must freeze exactly the draft version its
// author saw.
//
// Errors wrap the sentinels ErrNotFound, ErrExists, ErrConflict, ErrInUse
// and ErrInvalid with the name of what was concerned; callers test them
// with errors.Is.
//
// Unlike the gateway's store, a damaged file is never set aside for an
// empty one: the admin node's file is the domain's source of truth (users,
// deployment history, audit), so starting afresh would silently create a
// new, empty domain. Open fails and the operator restores a backup.
package store
