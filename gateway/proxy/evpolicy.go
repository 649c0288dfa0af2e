package proxy

import (
	"net/netip"

	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// evReq is an evloop request as policies see it. The engine's request
// lives only during Dispatch; a chain with response or log policies reads
// it later, so its fields are then copied into the connection's own
// buffer.
type evReq struct {
	r                   *evloop.Request
	path                []byte
	method, query, host []byte
	headers             []evloop.Header
	own                 []byte
	contentLength       int64
	remote              netip.Addr
}

func (q *evReq) bind(r *evloop.Request, path []byte) {
	q.r, q.path = r, path
	q.method, q.query, q.host, q.headers = r.Method, r.Query, r.Host, r.Headers
	q.contentLength, q.remote = r.ContentLength, r.RemoteAddr.Addr().Unmap()
}

// keep copies what the request's slices point at, for use after Dispatch.
func (q *evReq) keep() {
	q.own = q.own[:0]
	n := len(q.method) + len(q.query) + len(q.host) + len(q.path)
	for _, h := range q.headers {
		n += len(h.Name) + len(h.Value)
	}
	if cap(q.own) < n {
		q.own = make([]byte, 0, n)
	}
	cp := func(b []byte) []byte {
		start := len(q.own)
		q.own = append(q.own, b...)
		return q.own[start:len(q.own):len(q.own)]
	}
	q.method, q.query, q.host, q.path = cp(q.method), cp(q.query), cp(q.host), cp(q.path)
	hs := q.headers
	q.headers = q.headers[:0:0]
	for _, h := range hs {
		q.headers = append(q.headers, evloop.Header{Name: cp(h.Name), Value: cp(h.Value)})
	}
	q.r = nil
}

func (q *evReq) Method() []byte { return q.method }
func (q *evReq) Path() []byte   { return q.path }
func (q *evReq) Query() []byte  { return q.query }
func (q *evReq) Host() []byte   { return q.host }
func (q *evReq) Header(name string) []byte {
	for i := range q.headers {
		if httpascii.EqualFold(q.headers[i].Name, name) {
			return q.headers[i].Value
		}
	}
	return nil
}
func (q *evReq) VisitHeaders(fn func(name, value []byte)) {
	for i := range q.headers {
		fn(q.headers[i].Name, q.headers[i].Value)
	}
}
func (q *evReq) ContentLength() int64   { return q.contentLength }
func (q *evReq) RemoteAddr() netip.Addr { return q.remote }
func (q *evReq) TLS() bool              { return false }

// Body is never in memory on the event loops: bodies stream through, and
// routes whose policies need one are handed off.
func (q *evReq) Body() ([]byte, bool) { return nil, false }

// runPolicies runs the route's chain for an evloop request. It returns
// false when the exchange is settled (a local answer or a hand-off).
func (d *Dispatcher) runPolicies(req *evloop.Request, ex *evloop.Exchange, st *connState, rt *route) bool {
	if rt.chain.Blocking() || req.ContentLength < 0 && rt.chain.LimitsBody() {
		ex.Handoff = true
		return false
	}
	st.req.bind(req, st.path)
	pc := &st.pc
	pc.Reset(&st.req, ex.Start)
	pc.Service, pc.Route, pc.RequestID = rt.service, rt.name, st.id
	st.chain = rt.chain
	ok := rt.chain.Run(pc)
	if len(pc.RequestID) > 0 && &pc.RequestID[0] != &st.id[0] {
		st.id = append(st.id[:0], pc.RequestID...)
		pc.RequestID = st.id
	}
	ex.ResponseHeaders = append(append(append(ex.ResponseHeaders[:0], "X-Request-Id: "...), st.id...), "\r\n"...)
	st.rhBase = len(ex.ResponseHeaders)
	if rt.chain.Logs() || rt.chain.Responds() {
		st.req.keep()
	}
	if !ok {
		a, _ := pc.Answer()
		if a.Raw {
			d.respondRaw(ex, st, a)
		} else {
			d.local(ex, st, a.Status, a.Code, a.Message)
		}
		return false
	}
	if u, ok := pc.Upstream.(*upstream.Upstream); ok {
		st.up = u
	}
	ex.Filter = st
	return true
}

// respondRaw sends a policy's own answer (a CORS preflight).
func (d *Dispatcher) respondRaw(ex *evloop.Exchange, st *connState, a policy.Answer) {
	ex.Target = ""
	ex.Status = a.Status
	ex.ContentType = a.ContentType
	st.body = append(st.body[:0], a.Body...)
	ex.Body = st.body
	st.respond(ex, a.Status)
}

// respond runs the response phase for status and writes the headers it
// sets or adds. It starts again from the base headers, so that a local
// error after an upstream's head was seen does not repeat them.
func (st *connState) respond(ex *evloop.Exchange, status int) {
	if st.chain == nil {
		return
	}
	ex.ResponseHeaders = ex.ResponseHeaders[:st.rhBase]
	st.chain.Respond(&st.pc, status)
	ex.ResponseHeaders = appendEdited(ex.ResponseHeaders, &st.pc, st.pc.ResponseEdits())
}

// ResponseStatus implements evloop.ResponseFilter.
func (st *connState) ResponseStatus(ex *evloop.Exchange, status int) { st.respond(ex, status) }

// KeepHeader implements evloop.ResponseFilter: an upstream header goes on
// unless an edit removes or replaces it; a renamed one goes on under its
// new name. Framing headers are the engine's and always kept.
func (st *connState) KeepHeader(ex *evloop.Exchange, name, value []byte) bool {
	edits := st.pc.ResponseEdits()
	if len(edits) == 0 || httpascii.EqualFold(name, "Content-Length") || httpascii.EqualFold(name, "Transfer-Encoding") {
		return true
	}
	to, keep := editedName(edits, 0, name)
	if !keep {
		return false
	}
	if to != "" {
		ex.ResponseHeaders = append(append(append(append(ex.ResponseHeaders, to...), ": "...), value...), "\r\n"...)
		return false
	}
	return true
}

// editedName follows a header called name through edits[from:]: whether
// it survives them, and its new name if it was renamed.
func editedName[T string | []byte](edits []policy.HeaderEdit, from int, name T) (to string, keep bool) {
	for i := from; i < len(edits); i++ {
		e := &edits[i]
		var match bool
		if to != "" {
			match = httpascii.EqualFold(to, e.Name)
		} else {
			match = httpascii.EqualFold(name, e.Name)
		}
		if !match {
			continue
		}
		switch e.Op {
		case policy.EditSet, policy.EditDel:
			return "", false
		case policy.EditRename:
			to = e.NewName
		}
	}
	return to, true
}

// appendEdited appends the header lines that edits set or add, each as it
// stands after the edits that follow it.
func appendEdited(b []byte, pc *policy.Context, edits []policy.HeaderEdit) []byte {
	for i := range edits {
		e := &edits[i]
		if e.Op != policy.EditSet && e.Op != policy.EditAdd {
			continue
		}
		to, keep := editedName(edits, i+1, e.Name)
		if !keep {
			continue
		}
		name := e.Name
		if to != "" {
			name = to
		}
		b = append(append(append(append(b, name...), ": "...), pc.Value(e)...), "\r\n"...)
	}
	return b
}
