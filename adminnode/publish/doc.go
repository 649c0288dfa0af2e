// Package publish keeps each group's current signed deployment in object
// storage, under groups/<group>/current, for the node managers and
// standalone gateways that must start while no admin node answers
// (docs/object-storage.md). The admin node holding the background lease
// publishes: at once when a deployment changes, and on start, on taking
// the lease and periodically it reads back what the bucket holds and
// mends whatever differs from the store, so that a publish that failed or
// that another admin node never made is healed. A failure is logged and
// counted, and never touches a deploy.
package publish
