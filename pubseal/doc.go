// Package pubseal seals the deployments an admin node publishes to object
// storage (docs/object-storage.md), so that a reader of the bucket learns
// nothing of a group's configuration — environment secrets are resolved
// into it. A published object is the signed deployment, exactly as the
// agent API serves it, encrypted with XChaCha20-Poly1305 under the
// domain's publish key and bound to the domain and group it was published
// for: an object copied under another group, or into another domain's
// bucket, does not open. The signature inside is checked by whoever opens
// it, as for a deployment received from an admin node.
//
// A publish key is 32 random bytes. The admin node keeps the domain's keys
// in its store, sealed with its settings key; node managers receive them
// over the agent API and a standalone gateway reads them from a key file
// (WriteKeyFile, ReadKeyFile). The first key seals, every key opens, so
// that objects sealed before a rotation still open while they are
// rewritten.
package pubseal
