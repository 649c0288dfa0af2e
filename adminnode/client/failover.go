package client

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// lookupTimeout bounds the resolution of an address's host name.
const lookupTimeout = 5 * time.Second

// endpoint is one admin node the client may talk to: one address of the
// configuration, or one IP address of a name that has several.
type endpoint struct {
	// base is the URL requests are made to; it keeps the configured host
	// name, so that the Host header, SNI and certificate check use it.
	base string
	// name is how the endpoint is reported: the address, and the IP dialled
	// when a name was resolved.
	name string
	// http is swapped by Reconnect; u and ip make a new one.
	http atomic.Pointer[http.Client]
	u    *url.URL
	ip   net.IP
	// left is closed when the client moves off the endpoint, to end the
	// requests still waiting on it that can go on at the next (a
	// blocking query on an admin node that stopped answering). Guarded
	// by endpoints.mu.
	left chan struct{}
}

// address is one configured admin node address.
type address struct {
	url *url.URL
	// resolve: the host is a DNS name to be resolved to its IPs, each an
	// endpoint of its own.
	resolve bool
}

// endpoints picks the admin node to talk to. It sticks to the current one
// and moves to the next on failure, in the configured order, names
// expanded into their IP addresses in the resolver's order.
type endpoints struct {
	addrs    []address
	resolver Resolver
	// newHTTP makes the HTTP client of an endpoint; ip, when not nil, is
	// dialled instead of the URL's host.
	newHTTP func(u *url.URL, ip net.IP) *http.Client
	// onMove is Config.OnFailover.
	onMove func(from, to string, cause error)

	mu sync.Mutex
	// list is nil until the names are resolved, which happens at the first
	// request and again after a request found every endpoint failing, so
	// that a name's new addresses are found.
	list  []*endpoint
	cur   int
	stale bool
	// known keeps the endpoints by base and IP across resolutions, so that
	// their connections are reused.
	known map[string]*endpoint
}

// current returns the endpoints and the index of the one to try first.
func (e *endpoints) current(ctx context.Context) ([]*endpoint, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.list == nil || e.stale {
		e.expand(ctx)
	}
	return e.list, e.cur
}

// expand resolves the names and rebuilds the list, staying on the current
// endpoint when it is still in it. Called with mu held.
func (e *endpoints) expand(ctx context.Context) {
	var was *endpoint
	if e.cur < len(e.list) {
		was = e.list[e.cur]
	}
	var list []*endpoint
	for _, a := range e.addrs {
		var ips []net.IP
		if a.resolve {
			ips = e.lookup(ctx, a.url.Hostname())
		}
		if len(ips) < 2 {
			// One address (or none, the lookup failed): an ordinary
			// dial, which reports the resolution error itself.
			list = append(list, e.endpoint(a.url, nil))
			continue
		}
		for _, ip := range ips {
			list = append(list, e.endpoint(a.url, ip))
		}
	}
	e.list, e.cur, e.stale = list, 0, false
	if i := slices.Index(list, was); i >= 0 {
		e.cur = i
	}
}

func (e *endpoints) lookup(ctx context.Context, host string) []net.IP {
	// The list serves every request from now on: a lookup cut short by
	// this request's end would leave the name unexpanded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
	defer cancel()
	found, err := e.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, f := range found {
		if !slices.ContainsFunc(ips, f.IP.Equal) {
			ips = append(ips, f.IP)
		}
	}
	return ips
}

func (e *endpoints) endpoint(u *url.URL, ip net.IP) *endpoint {
	key := u.String()
	name := u.Host
	if ip != nil {
		key += " " + ip.String()
		name += " (" + ip.String() + ")"
	}
	if ep, ok := e.known[key]; ok {
		return ep
	}
	ep := &endpoint{base: u.String(), name: name, u: u, ip: ip, left: make(chan struct{})}
	ep.http.Store(e.newHTTP(u, ip))
	e.known[key] = ep
	return ep
}

// reconnect gives every endpoint a new HTTP client, closing the idle
// connections of the old one; requests under way finish on theirs.
func (e *endpoints) reconnect() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ep := range e.known {
		ep.http.Swap(e.newHTTP(ep.u, ep.ip)).CloseIdleConnections()
	}
}

// failed moves off ep, if it is still the current endpoint: a request
// that failed on it after another had already moved on must not move
// again, past a good one.
func (e *endpoints) failed(ep *endpoint, cause error) {
	e.mu.Lock()
	if len(e.list) < 2 || e.list[e.cur] != ep {
		e.mu.Unlock()
		return
	}
	e.cur = (e.cur + 1) % len(e.list)
	to := e.list[e.cur]
	close(ep.left)
	ep.left = make(chan struct{})
	e.mu.Unlock()
	if e.onMove != nil {
		e.onMove(ep.name, to.name, cause)
	}
}

// leftOf returns the channel closed when the client next moves off ep.
func (e *endpoints) leftOf(ep *endpoint) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return ep.left
}

// exhausted is told that a request failed on every endpoint: the names are
// resolved again before the next request.
func (e *endpoints) exhausted() {
	if !slices.ContainsFunc(e.addrs, func(a address) bool { return a.resolve }) {
		return
	}
	e.mu.Lock()
	e.stale = true
	e.mu.Unlock()
}

// movesOn says whether an answer's status makes the client move to the
// next admin node: those of an admin node that cannot serve now, or of a
// proxy that found none behind it. 501 and 505 would be the same on every
// admin node, and a 4xx is an answer about the request.
func movesOn(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// splitAddresses reads a comma-separated list of addresses; blanks around
// the commas are allowed, empty entries are not.
func splitAddresses(s string) []string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}
