package proxy

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/gateway/router"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/policy"
)

// maxPolicyBody is the most of a request body the goroutine engine reads
// into memory for a policy that asks for it (an external policy's body
// option is capped at this too).
const maxPolicyBody = 1 << 20

// fastReq is a fasthttp request as policies see it.
type fastReq struct{ ctx *fasthttp.RequestCtx }

func (r *fastReq) Method() []byte { return r.ctx.Method() }
func (r *fastReq) Path() []byte   { return r.ctx.Path() }
func (r *fastReq) Query() []byte  { return r.ctx.URI().QueryString() }
func (r *fastReq) Host() []byte   { return r.ctx.Host() }
func (r *fastReq) Header(name string) []byte {
	return r.ctx.Request.Header.Peek(name)
}
func (r *fastReq) VisitHeaders(fn func(name, value []byte)) {
	r.ctx.Request.Header.VisitAllInOrder(fn)
}
func (r *fastReq) ContentLength() int64 {
	if n := r.ctx.Request.Header.ContentLength(); n >= 0 {
		return int64(n)
	}
	return -1
}
func (r *fastReq) RemoteAddr() netip.Addr {
	if a, ok := r.ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
func (r *fastReq) TLS() bool { return r.ctx.IsTLS() }

// Body reads a body of known length up to maxPolicyBody into memory; the
// request then forwards it from there.
func (r *fastReq) Body() ([]byte, bool) {
	n := r.ctx.Request.Header.ContentLength()
	if n < 0 || n > maxPolicyBody {
		return nil, false
	}
	return r.ctx.Request.Body(), true
}

// fastState is one request's policy state on the goroutine engine.
type fastState struct {
	pc  policy.Context
	req fastReq
}

var fastStates = sync.Pool{New: func() any { return new(fastState) }}

// reqHeaders writes edits into a fasthttp request head.
type reqHeaders struct{ h *fasthttp.RequestHeader }

func (w reqHeaders) set(name string, v []byte) { w.h.SetBytesV(name, v) }
func (w reqHeaders) add(name string, v []byte) { w.h.AddBytesV(name, v) }
func (w reqHeaders) del(name string)           { w.h.Del(name) }
func (w reqHeaders) get(name string) []byte    { return w.h.Peek(name) }

// respHeaders writes edits into a fasthttp response head.
type respHeaders struct{ h *fasthttp.ResponseHeader }

func (w respHeaders) set(name string, v []byte) { w.h.SetBytesV(name, v) }
func (w respHeaders) add(name string, v []byte) { w.h.AddBytesV(name, v) }
func (w respHeaders) del(name string)           { w.h.Del(name) }
func (w respHeaders) get(name string) []byte    { return w.h.Peek(name) }

// serveWithPolicies is ServeHTTP for a route with policies: the chain runs
// on the request as the client sent it, its edits apply after the
// gateway's own forwarding headers, and its response and log phases run
// on the answer, whoever gave it.
func (p *Proxy) serveWithPolicies(ctx *fasthttp.RequestCtx, rt *route, m *router.Match, id []byte, start time.Time) {
	st := fastStates.Get().(*fastState)
	defer fastStates.Put(st)
	ok := p.runChain(ctx, st, rt, id, start)
	p.finishPolicies(ctx, rt, m, st, ok, start)
}

// runChain runs the route's chain on the request; false means a policy
// answered it.
func (p *Proxy) runChain(ctx *fasthttp.RequestCtx, st *fastState, rt *route, id []byte, start time.Time) bool {
	st.req.ctx = ctx
	pc := &st.pc
	pc.Reset(&st.req, start)
	pc.Service, pc.Route, pc.RequestID = rt.service, rt.name, id
	ok := rt.chain.Run(pc)
	ctx.Request.Header.SetBytesKV(headerXRequestID, pc.RequestID)
	return ok
}

// finishPolicies serves a request whose chain ran (ok: it may go on): the
// local answer or the upstream's, then the response and log phases.
func (p *Proxy) finishPolicies(ctx *fasthttp.RequestCtx, rt *route, m *router.Match, st *fastState, ok bool, start time.Time) {
	pc := &st.pc
	req := &ctx.Request
	var upTime time.Duration
	if ok {
		ok = p.limitBody(ctx, pc)
	}
	if !ok {
		p.answer(ctx, pc)
	} else {
		p.prepare(ctx, rt, m)
		applyPolicyRequest(pc, req)
		up := rt.upstream
		if u, ok := pc.Upstream.(*upstream.Upstream); ok {
			up = u
		}
		if isWebSocket(&req.Header) {
			p.upgrade(ctx, rt, up, pc.ConsumerName(), start)
			rt.chain.Log(pc, &policy.Outcome{Status: 101, Duration: time.Since(start)})
			st.req.ctx = nil
			return
		}
		upTime = p.forward(ctx, rt, up)
	}
	resp := &ctx.Response
	status := resp.StatusCode()
	rt.chain.Respond(pc, status)
	applyEdits(pc, pc.ResponseEdits(), respHeaders{&resp.Header})
	resp.Header.SetBytesKV(headerXRequestID, pc.RequestID)
	took := time.Since(start)
	rt.metrics.Observe(pc.ConsumerName(), status, took, upTime, req.Header.ContentLength(), resp.Header.ContentLength())
	p.observe(rt, req.Header.Method(), ctx.Path(), pc.RequestID, status, took, upTime)
	if pc.Consumer != nil {
		p.metrics.ConsumerRequest(pc.Consumer.Name, status)
	}
	rt.chain.Log(pc, &policy.Outcome{
		Status: status, Duration: took, UpstreamTime: upTime,
		BytesIn: int64(max(req.Header.ContentLength(), 0)), BytesOut: int64(max(resp.Header.ContentLength(), 0)),
	})
	st.req.ctx = nil
}

// limitBody reads a chunked body whose size a policy limits, refusing it
// once it passes the limit, before anything goes upstream; the body then
// goes on from memory.
func (p *Proxy) limitBody(ctx *fasthttp.RequestCtx, pc *policy.Context) bool {
	max, ok := pc.BodyLimit()
	req := &ctx.Request
	if !ok || req.Header.ContentLength() >= 0 {
		return true
	}
	var body []byte
	if s := ctx.RequestBodyStream(); s != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(s, max+1))
		if err != nil {
			pc.Reject(fasthttp.StatusBadRequest, "bad_request_body", "the request body could not be read")
			return false
		}
	} else {
		body = req.Body()
	}
	if int64(len(body)) > max {
		pc.Reject(fasthttp.StatusRequestEntityTooLarge, "request_too_large", "the request body is larger than the route allows")
		ctx.SetConnectionClose()
		return false
	}
	req.SetBody(body)
	return true
}

// answer writes a policy's local answer.
func (p *Proxy) answer(ctx *fasthttp.RequestCtx, pc *policy.Context) {
	a, _ := pc.Answer()
	if !a.Raw {
		writeError(ctx, a.Status, a.Code, a.Message)
		return
	}
	resp := &ctx.Response
	resp.SetStatusCode(a.Status)
	if a.ContentType != "" {
		resp.Header.SetContentType(a.ContentType)
	}
	resp.SetBody(a.Body)
}

// applyPolicyRequest writes a chain's request changes into the request
// going upstream.
func applyPolicyRequest(pc *policy.Context, req *fasthttp.Request) {
	if path, ok := pc.Path(); ok {
		req.URI().SetPathBytes(path)
	}
	if host, ok := pc.Host(); ok {
		req.Header.SetHostBytes(host)
		req.URI().SetHostBytes(host)
	}
	if method, ok := pc.Method(); ok {
		req.Header.SetMethodBytes(method)
	}
	if q, ok := pc.Query(); ok {
		req.URI().SetQueryStringBytes(q)
	}
	applyEdits(pc, pc.RequestEdits(), reqHeaders{&req.Header})
}
