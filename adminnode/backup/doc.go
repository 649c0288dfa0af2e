// Package backup takes and restores the backup of a domain: Write streams
// a snapshot of the store (store.Store.Snapshot) in the backupfile format,
// signed by the domain's key, paced to leave the admin node's requests
// most of the machine; Restore reads one into an empty store in one
// transaction that a backup failing its checks rolls back; Scheduler takes
// them every interval on the admin node holding the background lease.
//
// The keys of the data dir are never in a backup. What the store keeps
// sealed (gossip keys, the resolved configurations of deployments, the
// environments' secrets) stays sealed under the settings key; password
// and token hashes are the store's hashes.
package backup
