package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/gateway/router"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/httpascii"
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

	// observer sees finished exchanges (the access log, request tracing).
	observer atomic.Pointer[Observer]
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
	if x, ok := ctx.UserValue(expectKey{}).(*expectState); ok {
		// Expect admitted the request: its policies have run.
		defer fastStates.Put(x.st)
		p.finishPolicies(ctx, x.rt, &x.m, x.st, true, x.start)
		return
	}
	start := time.Now()
	if refuseFraming(ctx) {
		return
	}
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
		p.noRoute(ctx, id, generated, start)
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
	took := time.Since(start)
	rt.metrics.Observe("", ctx.Response.StatusCode(), took, upstreamTime,
		req.Header.ContentLength(), ctx.Response.Header.ContentLength())
	p.observe(rt, req.Header.Method(), ctx.Path(), id, ctx.Response.StatusCode(), took, upstreamTime)
}

// noRoute answers a request that matches no route.
func (p *Proxy) noRoute(ctx *fasthttp.RequestCtx, id []byte, generated bool, start time.Time) {
	if generated {
		ctx.Request.Header.SetBytesKV(headerXRequestID, id)
	}
	writeError(ctx, fasthttp.StatusNotFound, "no_route", "no route matches the request")
	took := time.Since(start)
	p.unmatched.Observe("", fasthttp.StatusNotFound, took, 0, -1, -1)
	p.observe(nil, ctx.Request.Header.Method(), ctx.Path(), id, fasthttp.StatusNotFound, took, 0)
}

// refuseFraming answers 400 and closes the connection for a request the
// event-loop engine refuses too and fasthttp lets through: a method the
// gateway does not accept, obsolete line folding, and Content-Length with
// Transfer-Encoding (which fasthttp would settle in favour of the
// coding; another hop might not).
func refuseFraming(ctx *fasthttp.RequestCtx) bool {
	msg := ""
	if !evloop.ValidMethod(ctx.Method()) {
		msg = "malformed method"
	} else {
		msg = rawHeadProblem(ctx.Request.Header.RawHeaders())
	}
	if msg == "" {
		return false
	}
	writeError(ctx, fasthttp.StatusBadRequest, "bad_request", msg)
	ctx.SetConnectionClose()
	return true
}

// rawHeadProblem looks at the header lines as the client sent them.
func rawHeadProblem(raw []byte) string {
	var cl, te bool
	for len(raw) > 0 {
		ln := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			ln, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		ln = bytes.TrimSuffix(ln, []byte("\r"))
		if len(ln) == 0 {
			continue
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			return "obsolete line folding is not allowed"
		}
		name, _, _ := bytes.Cut(ln, []byte(":"))
		switch {
		case httpascii.EqualFold(name, "Content-Length"):
			cl = true
		case httpascii.EqualFold(name, "Transfer-Encoding"):
			te = true
		}
	}
	if cl && te {
		return "both Content-Length and Transfer-Encoding"
	}
	return ""
}

// expectKey is the RequestCtx user value under which Expect leaves the
// policy state of a request it admitted.
type expectKey struct{}

// expectState is a request Expect admitted, for ServeHTTP to go on with.
type expectState struct {
	st    *fastState
	rt    *route
	m     router.Match
	start time.Time
	id    [40]byte
}

// Expect is the fasthttp server's ExpectHandler: it decides a request
// with Expect: 100-continue before its body is read, as the event-loop
// engine does, so that the client sends the body only once the request is
// routed and its policies passed, and a refused request gets its final
// status instead of 100 Continue. A route whose policies may block (an
// external policy, which may want the body) runs them after the body, once
// the 100 is out.
func (p *Proxy) Expect(ctx *fasthttp.RequestCtx) int {
	start := time.Now()
	if refuseFraming(ctx) {
		return fasthttp.StatusBadRequest
	}
	snap := p.snap.Load()
	if snap == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not_ready", "no configuration is loaded yet")
		return fasthttp.StatusServiceUnavailable
	}
	req := &ctx.Request
	x := &expectState{start: start}
	id, generated := p.requestID(&req.Header, x.id[:0])
	if !snap.table.Lookup(req.Header.Host(), req.Header.Method(), ctx.Path(), &req.Header, &x.m) {
		p.noRoute(ctx, id, generated, start)
		return fasthttp.StatusNotFound
	}
	x.rt = &snap.routes[x.m.Handle]
	if x.rt.chain == nil || x.rt.chain.Blocking() {
		return fasthttp.StatusContinue
	}
	x.st = fastStates.Get().(*fastState)
	if !p.runChain(ctx, x.st, x.rt, id, start) {
		p.finishPolicies(ctx, x.rt, &x.m, x.st, false, start)
		fastStates.Put(x.st)
		return ctx.Response.StatusCode()
	}
	ctx.SetUserValue(expectKey{}, x)
	return fasthttp.StatusContinue
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
	// The gateway answered the expectation itself (Expect).
	h.Del("Expect")
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

	var body *clientBody
	if req.IsBodyStream() && req.Header.ContentLength() < 0 {
		// A chunked body is parsed as it goes upstream (and re-framed
		// there by the client); a malformed one must not pass for a
		// failing upstream.
		body = &clientBody{r: ctx.RequestBodyStream(), h: &req.Header}
		req.SetBodyStream(body, -1)
	}
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
		if body != nil && body.err != nil {
			// The client's fault, not the target's.
			t.Release(true, 0)
			lastErr = body.err
			break
		}
		t.Release(false, 0)
		lastErr = err
		tried = t
		p.logger.Debug("upstream request failed", "upstream", up.Name, "target", t.Address, "attempt", attempt+1, "error", err)
	}
	resp := &ctx.Response
	switch {
	case body != nil && body.err != nil:
		resp.Reset()
		writeError(ctx, fasthttp.StatusBadRequest, "bad_request", "malformed chunked body")
		clientClose = true
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

// clientBody is a client's chunked body on its way upstream. It keeps the
// error its reading ended with, and at its end drops the client's
// trailers, which fasthttp would otherwise send after the last chunk: the
// target gets the data in fresh chunks and nothing else of the client's
// framing.
type clientBody struct {
	r   io.Reader
	h   *fasthttp.RequestHeader
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		dropTrailers(b.h)
	case err != nil:
		b.err = err
	}
	return n, err
}

// dropTrailers deletes the trailer fields fasthttp read after a chunked
// body; fasthttp lists them only as the lines it would write.
func dropTrailers(h *fasthttp.RequestHeader) {
	var names [][]byte
	for ln := range bytes.SplitSeq(h.TrailerHeader(), []byte("\r\n")) {
		if i := bytes.IndexByte(ln, ':'); i > 0 {
			names = append(names, append([]byte(nil), ln[:i]...))
		}
	}
	for _, name := range names {
		h.DelBytes(name)
	}
}

// retryable reports whether a request may be sent to another target after
// a failure: an idempotent method whose body, if any, is still in memory.
func retryable(req *fasthttp.Request) bool {
	return idempotent(req.Header.Method()) && !req.IsBodyStream()
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
