// Package status serves a gateway's status port: liveness (/healthz),
// readiness (/readyz), a JSON description of what it serves (/status), its
// Prometheus metrics (/metrics) and its traffic counts for the node manager
// (/traffic). It runs on its own listener so that
// probes and scrapes never queue behind API traffic.
package status
