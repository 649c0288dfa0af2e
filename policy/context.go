package policy

import (
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/httpascii"
)

// Request is the engine's view of the client's request, as it arrived.
// Slices alias the engine's buffers: they are valid during the request and
// must be copied to be kept.
type Request interface {
	Method() []byte
	// Path is the normalised, unescaped path the router matched.
	Path() []byte
	// Query is the raw query string, without '?'.
	Query() []byte
	Host() []byte
	// Header is the first value of the named header (any case), or nil.
	Header(name string) []byte
	// VisitHeaders calls fn for every header in order.
	VisitHeaders(fn func(name, value []byte))
	// ContentLength is the body's length, -1 when chunked.
	ContentLength() int64
	RemoteAddr() netip.Addr
	TLS() bool
	// Body is the request body when the engine holds it in memory (the
	// goroutine engine, which serves the routes of blocking kinds);
	// ok is false when it is streamed.
	Body() (body []byte, ok bool)
}

// EditOp is what a header edit does.
type EditOp uint8

// Header edits, applied in the order they were made.
const (
	// EditSet replaces every value of the header with one.
	EditSet EditOp = iota
	// EditAdd adds a value, keeping those already there.
	EditAdd
	// EditDel removes the header.
	EditDel
	// EditRename moves the header's values to another name.
	EditRename
)

// HeaderEdit is one change to the request the upstream receives or to the
// response the client receives. Value is held in the Context's arena.
type HeaderEdit struct {
	Op      EditOp
	Name    string
	NewName string // EditRename
	v0, v1  int
}

// Context is one request's state as it goes through a chain. The engines
// keep one per connection and Reset it per request, so that a request
// whose policies allocate nothing allocates nothing.
type Context struct {
	Request Request
	// Service and Route name the matched route.
	Service, Route string
	// Consumer is the identified consumer, nil until an authentication
	// policy sets it (Identify).
	Consumer *Consumer
	// Credential says how the consumer was identified ("key", "basic",
	// "jwt"), for logs.
	Credential string
	// Claims are the verified JWT's claims, for later policies.
	Claims map[string]any
	// RequestID is the request's id (X-Request-Id).
	RequestID []byte
	// Now is when the request head was complete.
	Now time.Time
	// Upstream, when not nil, replaces the route's upstream: the handle
	// Env.Upstream gave for another upstream.
	Upstream any

	arena   []byte
	reqEd   []HeaderEdit
	respEd  []HeaderEdit
	path    [2]int
	pathSet bool
	host    [2]int
	hostSet bool
	method  [2]int
	methSet bool
	query   [2]int
	qSet    bool

	status  int
	code    string
	message string
	ctype   string
	body    [2]int
	local   bool
	raw     bool

	// bodyLimit is the most a body of unknown length may hold; 0: none.
	bodyLimit int64

	// Vars are small values policies leave for each other and for logs
	// (request-size-limit's measured length, an external policy's
	// verdict); keys are the policies' own.
	vars []kv
}

type kv struct {
	key    string
	v0, v1 int
}

// Reset prepares c for a new request, keeping its buffers.
func (c *Context) Reset(req Request, now time.Time) {
	*c = Context{
		Request: req,
		Now:     now,
		arena:   c.arena[:0],
		reqEd:   c.reqEd[:0],
		respEd:  c.respEd[:0],
		vars:    c.vars[:0],
	}
}

func (c *Context) keep(b []byte) [2]int {
	start := len(c.arena)
	c.arena = append(c.arena, b...)
	return [2]int{start, len(c.arena)}
}

func (c *Context) keepString(s string) [2]int {
	start := len(c.arena)
	c.arena = append(c.arena, s...)
	return [2]int{start, len(c.arena)}
}

func (c *Context) slice(r [2]int) []byte { return c.arena[r[0]:r[1]:r[1]] }

// Identify sets the consumer and how it was identified.
func (c *Context) Identify(consumer *Consumer, credential string) {
	c.Consumer, c.Credential = consumer, credential
}

// ConsumerName is the identified consumer's name, "" when anonymous.
func (c *Context) ConsumerName() string {
	if c.Consumer == nil {
		return ""
	}
	return c.Consumer.Name
}

// SetRequestHeader replaces the header the upstream receives.
func (c *Context) SetRequestHeader(name string, value []byte) {
	c.reqEd = append(c.reqEd, c.edit(EditSet, name, "", value))
}

// AddRequestHeader adds a value of the header the upstream receives.
func (c *Context) AddRequestHeader(name string, value []byte) {
	c.reqEd = append(c.reqEd, c.edit(EditAdd, name, "", value))
}

// DelRequestHeader removes the header from what the upstream receives.
func (c *Context) DelRequestHeader(name string) {
	c.reqEd = append(c.reqEd, HeaderEdit{Op: EditDel, Name: name})
}

// RenameRequestHeader sends the header's values under another name.
func (c *Context) RenameRequestHeader(name, to string) {
	c.reqEd = append(c.reqEd, HeaderEdit{Op: EditRename, Name: name, NewName: to})
}

// SetResponseHeader replaces the header the client receives.
func (c *Context) SetResponseHeader(name string, value []byte) {
	c.respEd = append(c.respEd, c.edit(EditSet, name, "", value))
}

// SetResponseHeaderString is SetResponseHeader for a string value.
func (c *Context) SetResponseHeaderString(name, value string) {
	r := c.keepString(value)
	c.respEd = append(c.respEd, HeaderEdit{Op: EditSet, Name: name, v0: r[0], v1: r[1]})
}

// AddResponseHeader adds a value of the header the client receives.
func (c *Context) AddResponseHeader(name string, value []byte) {
	c.respEd = append(c.respEd, c.edit(EditAdd, name, "", value))
}

// DelResponseHeader removes the header from what the client receives.
func (c *Context) DelResponseHeader(name string) {
	c.respEd = append(c.respEd, HeaderEdit{Op: EditDel, Name: name})
}

// RenameResponseHeader gives the client the header under another name.
func (c *Context) RenameResponseHeader(name, to string) {
	c.respEd = append(c.respEd, HeaderEdit{Op: EditRename, Name: name, NewName: to})
}

func (c *Context) edit(op EditOp, name, to string, value []byte) HeaderEdit {
	r := c.keep(value)
	return HeaderEdit{Op: op, Name: name, NewName: to, v0: r[0], v1: r[1]}
}

// RequestEdits are the changes to the request's headers, in order.
func (c *Context) RequestEdits() []HeaderEdit { return c.reqEd }

// ResponseEdits are the changes to the response's headers, in order.
func (c *Context) ResponseEdits() []HeaderEdit { return c.respEd }

// Value is an edit's value.
func (c *Context) Value(e *HeaderEdit) []byte { return c.arena[e.v0:e.v1:e.v1] }

// RequestHeader is the header's value as the upstream would receive it so
// far: the last edit of it, or the client's.
func (c *Context) RequestHeader(name string) []byte {
	for i := len(c.reqEd) - 1; i >= 0; i-- {
		e := &c.reqEd[i]
		switch {
		case e.Op == EditRename && httpascii.EqualFold(e.NewName, name):
			return c.Request.Header(e.Name)
		case !httpascii.EqualFold(e.Name, name):
			continue
		case e.Op == EditDel, e.Op == EditRename:
			return nil
		default:
			return c.Value(e)
		}
	}
	return c.Request.Header(name)
}

// SetPath sets the path the upstream receives (unescaped).
func (c *Context) SetPath(p []byte) { c.path, c.pathSet = c.keep(p), true }

// Path is the path the upstream would receive so far, and whether a
// policy set it; when not, the route's own rewriting applies.
func (c *Context) Path() ([]byte, bool) {
	if !c.pathSet {
		return c.Request.Path(), false
	}
	return c.slice(c.path), true
}

// SetHost sets the Host header the upstream receives.
func (c *Context) SetHost(h []byte) { c.host, c.hostSet = c.keep(h), true }

// Host is the host set by a policy, if one did.
func (c *Context) Host() ([]byte, bool) {
	if !c.hostSet {
		return nil, false
	}
	return c.slice(c.host), true
}

// SetQuery sets the raw query string the upstream receives (without '?';
// empty sends none).
func (c *Context) SetQuery(q []byte) { c.query, c.qSet = c.keep(q), true }

// Query is the raw query the upstream would receive so far, and whether a
// policy set it.
func (c *Context) Query() ([]byte, bool) {
	if !c.qSet {
		return c.Request.Query(), false
	}
	return c.slice(c.query), true
}

// SetMethod sets the method the upstream receives.
func (c *Context) SetMethod(m []byte) { c.method, c.methSet = c.keep(m), true }

// Method is the method set by a policy, if one did.
func (c *Context) Method() ([]byte, bool) {
	if !c.methSet {
		return nil, false
	}
	return c.slice(c.method), true
}

// Reject answers the request with the gateway's JSON error body: status,
// a machine-readable code and a message for people. Response edits made
// so far (rate-limit headers, Retry-After) go with it.
func (c *Context) Reject(status int, code, message string) {
	c.local, c.raw = true, false
	c.status, c.code, c.message = status, code, message
}

// Respond answers the request with a body of its own (a CORS preflight).
func (c *Context) Respond(status int, contentType string, body []byte) {
	c.local, c.raw = true, true
	c.status, c.ctype = status, contentType
	c.body = c.keep(body)
}

// Answer is a local answer set by Reject or Respond.
type Answer struct {
	Status int
	// Code and Message are set for an error (Reject): the engine writes
	// its JSON error body.
	Code, Message string
	// ContentType and Body are set for Respond.
	ContentType string
	Body        []byte
	Raw         bool
}

// Answer returns the local answer, ok false when the request goes on.
func (c *Context) Answer() (Answer, bool) {
	if !c.local {
		return Answer{}, false
	}
	a := Answer{Status: c.status, Code: c.code, Message: c.message, Raw: c.raw}
	if c.raw {
		a.ContentType, a.Body = c.ctype, c.slice(c.body)
	}
	return a, true
}

// LimitBody asks the engine to refuse a body of unknown length (chunked)
// once it passes max bytes, with 413; the tightest limit asked wins.
func (c *Context) LimitBody(max int64) {
	if c.bodyLimit == 0 || max < c.bodyLimit {
		c.bodyLimit = max
	}
}

// BodyLimit is the limit LimitBody set, ok false without one.
func (c *Context) BodyLimit() (max int64, ok bool) { return c.bodyLimit, c.bodyLimit > 0 }

// SetVar leaves a value under key for later policies and logs.
func (c *Context) SetVar(key string, value []byte) {
	r := c.keep(value)
	c.vars = append(c.vars, kv{key: key, v0: r[0], v1: r[1]})
}

// Var returns the last value left under key.
func (c *Context) Var(key string) ([]byte, bool) {
	for i := len(c.vars) - 1; i >= 0; i-- {
		if c.vars[i].key == key {
			return c.arena[c.vars[i].v0:c.vars[i].v1], true
		}
	}
	return nil, false
}

// Scratch returns the context's arena's spare capacity for a policy to
// build a value in before passing it to an edit; the value is copied by
// the edit, so scratch may be reused at once.
func (c *Context) Scratch() []byte { return c.arena[len(c.arena):] }
