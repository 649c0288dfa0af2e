// Package store keeps the configurations a gateway has applied in a local
// bbolt file, so that a gateway restarted while its control plane is down
// still serves its last good configuration.
//
// The file holds the current configuration and the previous ten, each with
// its checksum, the time it was applied and, for a signed deployment, its
// number. It carries a schema version, and Open upgrades older files in
// place: the file outlives the binary.
package store
