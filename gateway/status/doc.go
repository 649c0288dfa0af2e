// Package status serves a gateway's status port: liveness (/healthz),
// readiness (/readyz), a JSON description of what it serves (/status) and
// its Prometheus metrics (/metrics). It runs on its own listener so that
// probes and scrapes never queue behind API traffic.
package status
