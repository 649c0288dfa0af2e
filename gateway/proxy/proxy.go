package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/router"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/metrics"
)

// Proxy serves requests from the current Snapshot.
type Proxy struct {
	logger    hclog.Logger
	snap      atomic.Pointer[Snapshot]
	unmatched *metrics.Route
	metrics   *metrics.Gateway

	// Request ids are a per-process random prefix and a counter: unique
	// without a random read per request.
	idPrefix  [17]byte
	idCounter atomic.Uint64
}

// New returns a Proxy with no configuration: it answers 503 until Swap.
func New(logger hclog.Logger, m *metrics.Gateway) *Proxy {
	p := &Proxy{logger: logger, unmatched: m.Route("", ""), metrics: m}
	var b [8]byte
	rand.Read(b[:])
	hex.Encode(p.idPrefix[:16], b[:])
	p.idPrefix[16] = '-'
	return p
}

// Swap makes s the snapshot of every request that arrives from now on and
// returns the previous one; requests already running finish on theirs.
func (p *Proxy) Swap(s *Snapshot) *Snapshot { return p.snap.Swap(s) }

// Current returns the snapshot in use, nil before the first Swap.
func (p *Proxy) Current() *Snapshot { return p.snap.Load() }

var (
	headerXForwardedFor   = []byte("X-Forwarded-For")
	headerXForwardedProto = []byte("X-Forwarded-Proto")
	headerXForwardedHost  = []byte("X-Forwarded-Host")
	headerXRequestID      = []byte("X-Request-Id")
	protoHTTP             = []byte("http")
	protoHTTPS            = []byte("https")
	// Hop-by-hop headers (RFC 9110 section 7.6.1) besides Connection,
	// which fasthttp keeps as a flag.
	hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer"}
)

// ServeHTTP is the fasthttp handler of the traffic listeners.
func (p *Proxy) ServeHTTP(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	snap := p.snap.Load()
	if snap == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not_ready", "no configuration is loaded yet")
		return
	}
	req := &ctx.Request
	var idBuf [40]byte
	id, generated := p.requestID(&req.Header, idBuf[:0])
	var m router.Match
	if !snap.table.Lookup(req.Header.Host(), req.Header.Method(), ctx.Path(), &req.Header, &m) {
		if generated {
			req.Header.SetBytesKV(headerXRequestID, id)
		}
		writeError(ctx, fasthttp.StatusNotFound, "no_route", "no route matches the request")
		p.unmatched.Observe("", fasthttp.StatusNotFound, time.Since(start), 0, -1, -1)
		return
	}
	rt := &snap.routes[m.Handle]
	if rt.chain != nil {
		// The policies see the client's request: an id the gateway
		// made is set once they have run (request-id may make its own).
		p.serveWithPolicies(ctx, rt, &m, id, start)
		return
	}
	if generated {
		req.Header.SetBytesKV(headerXRequestID, id)
	}
	p.prepare(ctx, rt, &m)
	if isWebSocket(&req.Header) {
		p.upgrade(ctx, rt, rt.upstream, "", start)
		return
	}
	upstreamTime := p.forward(ctx, rt, rt.upstream)
	// Set after forwarding: the upstream's answer replaces the response.
	ctx.Response.Header.SetBytesKV(headerXRequestID, id)
	rt.metrics.Observe("", ctx.Response.StatusCode(), time.Since(start), upstreamTime,
		req.Header.ContentLength(), ctx.Response.Header.ContentLength())
}

// prepare turns the client's request into the upstream's: path rewriting
// and the forwarding headers.
func (p *Proxy) prepare(ctx *fasthttp.RequestCtx, rt *route, m *router.Match) {
	req := &ctx.Request
	if rt.rewrite != nil || rt.stripPrefix {
		var buf [256]byte
		req.URI().SetPathBytes(rt.appendPath(buf[:0], m, ctx.Path()))
	}

	h := &req.Header
	for _, name := range hopHeaders {
		h.Del(name)
	}
	var ipBuf [64]byte
	ip := appendClientIP(ipBuf[:0], ctx)
	if prior := h.PeekBytes(headerXForwardedFor); len(prior) > 0 {
		var buf [256]byte
		xff := append(append(append(buf[:0], prior...), ", "...), ip...)
		h.SetBytesKV(headerXForwardedFor, xff)
	} else {
		h.SetBytesKV(headerXForwardedFor, ip)
	}
	if ctx.IsTLS() {
		h.SetBytesKV(headerXForwardedProto, protoHTTPS)
	} else {
		h.SetBytesKV(headerXForwardedProto, protoHTTP)
	}
	h.SetBytesKV(headerXForwardedHost, h.Host())
	// Targets are plain HTTP; the client's scheme travels in
	// X-Forwarded-Proto.
	req.URI().SetSchemeBytes(protoHTTP)
}

// requestID returns the client's X-Request-Id, or a new one built in buf
// (generated: the caller sets it on the request).
func (p *Proxy) requestID(h *fasthttp.RequestHeader, buf []byte) (id []byte, generated bool) {
	if id := h.PeekBytes(headerXRequestID); len(id) > 0 {
		return id, false
	}
	return strconv.AppendUint(append(buf, p.idPrefix[:]...), p.idCounter.Add(1), 16), true
}

// forward sends the request to a target of the route's upstream, retrying
// idempotent requests on other targets, and leaves the upstream's answer
// (or the gateway's error) in ctx.Response. It returns the time spent
// waiting for the upstream.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, rt *route, up *upstream.Upstream) time.Duration {
	req := &ctx.Request
	clientClose := req.Header.ConnectionClose()
	// The client's wish to close its connection is not the upstream
	// connection's: pooled connections stay open.
	req.Header.ResetConnectionClose()

	var keyBuf [64]byte
	key := hashKey(keyBuf[:0], ctx, rt, up)
	retries := 0
	if retryable(req) {
		retries = up.Config.Retries
	}
	var (
		tried   *upstream.Target
		picked  bool
		lastErr error
		waited  time.Duration
	)
	for attempt := 0; attempt <= retries; attempt++ {
		t := up.Pick(key, tried)
		if t == nil {
			break
		}
		picked = true
		t.Acquire()
		began := time.Now()
		err := t.Client.Do(req, &ctx.Response)
		waited += time.Since(began)
		if err == nil {
			t.Release(true, ctx.Response.StatusCode())
			lastErr = nil
			break
		}
		t.Release(false, 0)
		lastErr = err
		tried = t
		p.logger.Debug("upstream request failed", "upstream", up.Name, "target", t.Address, "attempt", attempt+1, "error", err)
	}
	resp := &ctx.Response
	switch {
	case lastErr != nil:
		resp.Reset()
		if isTimeout(lastErr) {
			writeError(ctx, fasthttp.StatusGatewayTimeout, "upstream_timeout", "the upstream did not answer in time")
		} else {
			writeError(ctx, fasthttp.StatusBadGateway, "upstream_failed", "the upstream could not be reached")
		}
	case !picked:
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no_healthy_target", "no healthy target in upstream "+strconv.Quote(up.Name))
	default:
		resp.Header.ResetConnectionClose()
		resp.Header.Del("Keep-Alive")
	}
	if clientClose {
		ctx.SetConnectionClose()
	}
	return waited
}

// retryable reports whether a request may be sent again after a failure:
// an idempotent method whose body, if any, is still in memory.
func retryable(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		return !req.IsBodyStream()
	}
	return false
}

// hashKey is the consistent-hash key; the client IP is hashed in its text
// form, as the evloop engine does, so that both listeners agree.
func hashKey(dst []byte, ctx *fasthttp.RequestCtx, rt *route, up *upstream.Upstream) []byte {
	source, name := rt.hashOn(up)
	switch source {
	case deploy.HashOnHeader:
		return ctx.Request.Header.Peek(name)
	case deploy.HashOnCookie:
		return ctx.Request.Header.Cookie(name)
	case deploy.HashOnClientIP:
		return appendClientIP(dst, ctx)
	}
	return nil
}

func appendClientIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap().AppendTo(dst)
		}
	}
	return dst
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		(errors.As(err, &t) && t.Timeout())
}
