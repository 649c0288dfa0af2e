// Package upstream holds what the proxy sends requests to: each upstream's
// targets with their keep-alive connection pools, the balancer that chooses
// among them, and their health.
//
// A Registry turns the upstreams of each configuration into Upstreams. A
// configuration's Upstreams never change, because requests of that
// configuration may still be in flight after a reload. What must outlive a
// reload — a target's connection pool, its health and its count of
// requests in flight — is handed on to the next configuration whenever the
// target's upstream name, address and timeouts are unchanged, so that a
// reload neither reconnects nor forgets which targets are down. A pool
// that is no longer used has its idle connections closed a minute later;
// connections still carrying requests are never cut.
//
// Pick is on every request's path: it takes no lock and does not allocate.
// Round-robin walks a precomputed smooth weighted sequence, least-
// connections scans the targets, and consistent-hash searches a ring of
// virtual nodes; all three pass over targets that are not healthy.
//
// A target takes traffic while its active health check says it is up and
// the passive check has not ejected it. Targets start healthy: a new
// target is trusted until a check or a request proves otherwise, rather
// than held back for a whole check interval. Active checks probe every
// target of an upstream with an HTTP GET on a client of their own, so that
// probes neither use nor hide problems of the proxy's connections. Passive
// checks count consecutive failed requests as the proxy reports them, and
// eject a target for a while once the count reaches the threshold.
//
// When no target of an upstream is healthy, Pick returns nil and the proxy
// answers 503. Sending traffic to targets believed down (as a "panic mode"
// would) was rejected: a fast, explicit 503 is visible to clients and to
// monitoring, where requests piling up on dead targets are not. The price
// is that a fault failing every target at once — a broken health endpoint,
// a shared dependency returning the listed statuses — takes the whole
// upstream out until the checks pass again or the ejections end.
package upstream
