// Package pgstore keeps the admin node's state in PostgreSQL: an
// implementation of store.Store beside the bbolt one, with the same
// semantics, for a domain whose control plane must outlive any one
// machine.
//
// Each record is a JSON document beside the columns that key it, relate it
// (foreign keys keep instances' groups and hosts, bindings' users and
// roles) and order it. Every method is one transaction; a read-modify-write
// locks the row it changes (SELECT ... FOR UPDATE), so that optimistic
// concurrency on drafts, groups and environments holds across admin nodes.
// Freeze and Rollback lock the group's row, which numbers a group's
// deployments without gaps or duplicates and runs build (the signing)
// inside the transaction that stores what it signed. The audit log's
// sequence is a counter row taken in the entry's transaction, so entries
// commit in Seq order.
//
// The schema is versioned: embedded, numbered migrations applied at Open
// under an advisory lock; a database of a newer schema is refused
// (store.ErrNewerSchema).
//
// The domain's traffic (traffic.go) follows the bbolt store's rules, shared
// through the store package: a node's batch is stored once, decided by the
// insert of its row under a unique (node, epoch, seq) key; a group's points
// are rows keyed by time, instance and series in tables partitioned by
// time (trafficpart.go), rolled up by MaintainTraffic, which drops the
// partitions past retention whole.
package pgstore
