package proxy

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/gateway/router"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// Dispatcher serves the evloop engine from the same snapshots as the
// fasthttp handler: the same routes, targets, headers, errors and metrics.
type Dispatcher struct{ p *Proxy }

// Dispatcher returns the evloop side of p.
func (p *Proxy) Dispatcher() *Dispatcher { return &Dispatcher{p: p} }

var _ evloop.Dispatcher = (*Dispatcher)(nil)

// connState is one client connection's scratch space, kept in
// Exchange.User across its exchanges so that a request allocates nothing.
type connState struct {
	path   []byte // normalised path
	target []byte // the path the target receives, unescaped
	key    []byte // consistent-hash key, copied: retries outlive the request
	id     []byte // request id, copied for error bodies after Dispatch
	method []byte // the client's method, copied while an observer is set
	body   []byte // error body
	rt     *route
	up     *upstream.Upstream
	tgt    *upstream.Target // the target of the current attempt, until released
	tries  int              // retries left
	retry  bool             // method is idempotent and there is no body

	// The route's policies, when it has some.
	chain  *policy.Chain
	pc     policy.Context
	req    evReq
	rhBase int // ResponseHeaders before the response phase's
}

// evHeaders lets the router read an evloop request's headers.
type evHeaders evloop.Request

func (h *evHeaders) Peek(key string) []byte { return (*evloop.Request)(h).Header(key) }

// Dispatch implements evloop.Dispatcher.
func (d *Dispatcher) Dispatch(req *evloop.Request, ex *evloop.Exchange) {
	st, _ := ex.User.(*connState)
	if st == nil {
		st = &connState{}
		ex.User = st
	}
	st.rt, st.up, st.tgt, st.chain = nil, nil, nil, nil
	st.method, st.path = st.method[:0], st.path[:0]
	if d.p.observer.Load() != nil {
		st.method = append(st.method, req.Method...)
	}

	st.id = st.id[:0]
	if id := req.Header("X-Request-Id"); len(id) > 0 {
		st.id = append(st.id, id...)
	} else {
		st.id = strconv.AppendUint(append(st.id, d.p.idPrefix[:]...), d.p.idCounter.Add(1), 16)
	}
	ex.ResponseHeaders = append(append(append(ex.ResponseHeaders[:0], "X-Request-Id: "...), st.id...), "\r\n"...)

	snap := d.p.snap.Load()
	if snap == nil {
		d.local(ex, st, 503, "not_ready", "no configuration is loaded yet")
		return
	}
	st.path = normalizePath(st.path[:0], req.Path)
	var m router.Match
	if !snap.table.Lookup(req.Host, req.Method, st.path, (*evHeaders)(req), &m) {
		d.local(ex, st, 404, "no_route", "no route matches the request")
		return
	}
	rt := &snap.routes[m.Handle]
	st.rt, st.up = rt, rt.upstream
	if rt.chain != nil && !d.runPolicies(req, ex, st, rt) {
		return
	}
	st.key = appendHashKey(st.key[:0], req, rt, st.up)
	t := st.up.Pick(st.key, nil)
	if t == nil {
		d.local(ex, st, 503, "no_healthy_target", "no healthy target in upstream "+strconv.Quote(st.up.Name))
		return
	}
	d.use(ex, st, t)
	var method []byte
	ex.Head, method = d.head(ex.Head[:0], req, rt, &m, st)
	// What decides is the method the target receives, after policies.
	ex.Replayable = idempotent(method)
	st.retry = req.ContentLength == 0 && ex.Replayable
	st.tries = 0
	if st.retry {
		st.tries = st.up.Config.Retries
	}
}

// use sends the exchange's next attempt to t.
func (d *Dispatcher) use(ex *evloop.Exchange, st *connState, t *upstream.Target) {
	t.Acquire()
	st.tgt = t
	cfg := &st.up.Config
	ex.Target = t.DialAddr
	ex.ConnectTimeout = cfg.Timeouts.Connect.Or(5 * time.Second)
	ex.ReadTimeout = cfg.Timeouts.Read.Or(60 * time.Second)
}

// head builds the request head the target receives and returns it with
// the method it carries. The body's framing is written afresh, once: the
// engine re-frames a chunked body, and a Content-Length the client
// repeated goes out once.
func (d *Dispatcher) head(b []byte, req *evloop.Request, rt *route, m *router.Match, st *connState) ([]byte, []byte) {
	var edits []policy.HeaderEdit
	var host []byte
	method, path, query := req.Method, []byte(nil), req.Query
	if st.chain != nil {
		pc := &st.pc
		edits = pc.RequestEdits()
		if v, ok := pc.Method(); ok {
			method = v
		}
		if v, ok := pc.Host(); ok {
			host = v
		}
		if v, ok := pc.Path(); ok {
			path = v
		}
		if v, ok := pc.Query(); ok {
			query = v
		}
	}
	b = append(append(b, method...), ' ')
	if path != nil {
		st.target = append(st.target[:0], path...)
	} else {
		st.target = rt.appendPath(st.target[:0], m, st.path)
	}
	b = appendEscapedPath(b, st.target)
	if len(query) > 0 {
		b = append(append(b, '?'), query...)
	}
	b = append(b, " HTTP/1.1\r\n"...)

	var prior []byte
	for i := range req.Headers {
		h := &req.Headers[i]
		switch {
		case hopByHop(h.Name, req.Upgrade):
			continue
		case httpascii.EqualFold(h.Name, "X-Forwarded-For"):
			prior = h.Value
			continue
		case httpascii.EqualFold(h.Name, "X-Forwarded-Proto"), httpascii.EqualFold(h.Name, "X-Forwarded-Host"),
			httpascii.EqualFold(h.Name, "X-Request-Id"):
			continue
		case host != nil && httpascii.EqualFold(h.Name, "Host"):
			b = append(append(append(b, "Host: "...), host...), "\r\n"...)
			continue
		case framing(h.Name):
			continue
		}
		name := h.Name
		if len(edits) > 0 {
			to, keep := editedName(edits, 0, h.Name)
			if !keep {
				continue
			}
			if to != "" {
				b = append(append(append(append(b, to...), ": "...), h.Value...), "\r\n"...)
				continue
			}
		}
		b = append(append(append(append(b, name...), ": "...), h.Value...), "\r\n"...)
	}
	if len(edits) > 0 {
		b = appendEdited(b, &st.pc, edits)
	}
	switch {
	case req.ContentLength < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength > 0 || req.Header("Content-Length") != nil:
		b = strconv.AppendInt(append(b, "Content-Length: "...), req.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if req.Upgrade {
		b = append(b, "Connection: Upgrade\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	if len(prior) > 0 {
		b = append(append(b, prior...), ", "...)
	}
	b = appendAddr(b, req.RemoteAddr.Addr())
	b = append(append(append(b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...), req.Host...), "\r\nX-Request-Id: "...)
	b = append(append(b, st.id...), "\r\n\r\n"...)
	return b, method
}

// Failed implements evloop.Dispatcher: another target while retries last,
// else the gateway's error.
func (d *Dispatcher) Failed(ex *evloop.Exchange, err error, timeout bool) bool {
	st := ex.User.(*connState)
	tried := st.tgt
	if tried != nil {
		tried.Release(false, 0)
		st.tgt = nil
	}
	d.p.logger.Debug("upstream request failed", "target", ex.Target, "attempt", ex.Attempt, "error", err)
	if st.retry && st.tries > 0 {
		st.tries--
		if t := st.up.Pick(st.key, tried); t != nil {
			d.use(ex, st, t)
			return true
		}
	}
	if timeout {
		d.local(ex, st, 504, "upstream_timeout", "the upstream did not answer in time")
	} else {
		d.local(ex, st, 502, "upstream_failed", "the upstream could not be reached")
	}
	return false
}

// Done implements evloop.Dispatcher.
func (d *Dispatcher) Done(ex *evloop.Exchange, res evloop.Result) {
	st := ex.User.(*connState)
	if st.tgt != nil {
		st.tgt.Release(res.Err == nil, res.Status)
		st.tgt = nil
	}
	m := d.p.unmatched
	if st.rt != nil {
		m = st.rt.metrics
	}
	took := time.Since(ex.Start)
	// The policy context is of this request only when it has a chain.
	consumer := ""
	if st.chain != nil {
		consumer = st.pc.ConsumerName()
	}
	m.Observe(consumer, res.Status, took, res.UpstreamTime, int(res.BytesIn), int(res.BytesOut))
	d.p.observe(st.rt, st.method, st.path, st.id, res.Status, took, res.UpstreamTime)
	if consumer != "" {
		d.p.metrics.ConsumerRequest(consumer, res.Status)
	}
	if st.chain != nil && st.chain.Logs() {
		st.chain.Log(&st.pc, &policy.Outcome{Status: res.Status, Duration: took, UpstreamTime: res.UpstreamTime,
			BytesIn: res.BytesIn, BytesOut: res.BytesOut})
	}
	st.chain = nil
	st.pc.Request = nil
}

// local answers from the gateway itself with its JSON error body.
func (d *Dispatcher) local(ex *evloop.Exchange, st *connState, status int, code, message string) {
	ex.Target = ""
	ex.Status = status
	ex.ContentType = "application/json"
	st.body = appendErrorBody(st.body[:0], status, code, message, st.id)
	ex.Body = st.body
	st.respond(ex, status)
}

func appendHashKey(dst []byte, req *evloop.Request, rt *route, up *upstream.Upstream) []byte {
	source, name := rt.hashOn(up)
	switch source {
	case deploy.HashOnHeader:
		return append(dst, req.Header(name)...)
	case deploy.HashOnCookie:
		return append(dst, cookieValue(req.Header("Cookie"), name)...)
	case deploy.HashOnClientIP:
		return req.RemoteAddr.Addr().Unmap().AppendTo(dst)
	}
	return dst
}

// cookieValue finds name's value in a Cookie header.
func cookieValue(h []byte, name string) []byte {
	for len(h) > 0 {
		var pair []byte
		if i := indexByte(h, ';'); i >= 0 {
			pair, h = h[:i], h[i+1:]
		} else {
			pair, h = h, nil
		}
		for len(pair) > 0 && pair[0] == ' ' {
			pair = pair[1:]
		}
		if eq := indexByte(pair, '='); eq >= 0 && string(pair[:eq]) == name {
			return pair[eq+1:]
		}
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// framing reports whether a request header is one the head is given
// afresh: the body's framing, and Expect, which the engine answers itself.
func framing(name []byte) bool {
	switch len(name) {
	case 6:
		return httpascii.EqualFold(name, "Expect")
	case 14:
		return httpascii.EqualFold(name, "Content-Length")
	case 17:
		return httpascii.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// idempotent reports whether a request may be sent to a target again
// after it may have reached one (RFC 9110 §9.2.2). POST and PATCH never
// are: the target may have run them already.
func idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// hopByHop reports whether a request header is the connection's own, not
// the request's; Upgrade is kept for WebSocket handshakes.
func hopByHop(name []byte, upgrade bool) bool {
	switch len(name) {
	case 2:
		return httpascii.EqualFold(name, "TE")
	case 7:
		return httpascii.EqualFold(name, "Trailer") || (!upgrade && httpascii.EqualFold(name, "Upgrade"))
	case 10:
		return httpascii.EqualFold(name, "Connection") || httpascii.EqualFold(name, "Keep-Alive")
	case 16:
		return httpascii.EqualFold(name, "Proxy-Connection")
	case 19:
		return httpascii.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

func appendAddr(b []byte, a netip.Addr) []byte {
	return a.Unmap().AppendTo(b)
}
