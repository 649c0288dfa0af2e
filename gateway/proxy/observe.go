package proxy

import (
	"time"
)

// Exchange is one finished exchange as the gateway's access log and
// request tracing see it. Its byte slices are the engine's and valid only
// during the Observer's call.
type Exchange struct {
	Method, Path, RequestID []byte
	// Service and Route name the route that matched; both empty when
	// none did.
	Service, Route string
	Status         int
	Duration       time.Duration
	UpstreamTime   time.Duration
}

// Observer is called with every exchange once it ends, on the engine's
// thread: it must not block for long.
type Observer func(*Exchange)

// SetObserver makes fn see every exchange from now on; nil, none (the
// cost of one atomic load per request).
func (p *Proxy) SetObserver(fn Observer) {
	if fn == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&fn)
}

// observe hands an exchange to the observer, if there is one.
func (p *Proxy) observe(rt *route, method, path, id []byte, status int, took, upstream time.Duration) {
	fn := p.observer.Load()
	if fn == nil {
		return
	}
	ex := Exchange{Method: method, Path: path, RequestID: id, Status: status, Duration: took, UpstreamTime: upstream}
	if rt != nil {
		ex.Service, ex.Route = rt.service, rt.name
	}
	(*fn)(&ex)
}
