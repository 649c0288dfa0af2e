// Package proxy is the gateway's request path: it compiles a configuration
// into an immutable Snapshot (routing table, routes bound to their
// upstreams, certificates) and serves each request from the snapshot that
// is current when the request arrives, so that a reload never disturbs a
// request in flight.
package proxy
