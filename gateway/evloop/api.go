package evloop

import (
	"net/netip"
	"time"
)

// Header is one request header; Name and Value alias the engine's buffer.
type Header struct {
	Name, Value []byte
}

// Request is a parsed request head. Every slice aliases the connection's
// read buffer and is valid only during Dispatcher.Dispatch.
type Request struct {
	Method []byte
	// URI is the request-target as sent; Path is its path part (still
	// percent-encoded) and Query what follows '?', without the '?'.
	URI, Path, Query []byte
	// Minor is the HTTP/1.x minor version (0 or 1).
	Minor   int
	Host    []byte
	Headers []Header
	// ContentLength is the body length, 0 without a body, -1 when the body
	// is chunked.
	ContentLength int64
	// Close is set when the client will not reuse the connection
	// (Connection: close, or HTTP/1.0 without keep-alive).
	Close bool
	// Upgrade is set for a WebSocket handshake (Connection: upgrade and
	// Upgrade: websocket).
	Upgrade bool
	// Continue is set for an HTTP/1.1 request with Expect: 100-continue.
	// The engine answers the expectation itself (100 Continue once the
	// request is on its way to a target, or the final local status
	// without it), so a Dispatcher leaves the Expect header out of Head.
	Continue   bool
	RemoteAddr netip.AddrPort
}

// Header returns the value of the first header named name (compared
// without regard to case), or nil.
func (r *Request) Header(name string) []byte {
	for i := range r.Headers {
		if equalFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value
		}
	}
	return nil
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Exchange is one request/response exchange. The engine reuses it for the
// connection's next request, so a Dispatcher must not keep it after Done.
type Exchange struct {
	// Set by Dispatch (and by Failed for a retry):

	// Target is the upstream address (host:port) to send the request to;
	// empty means answer locally with Status, ContentType and Body.
	Target         string
	ConnectTimeout time.Duration
	// ReadTimeout bounds each wait for upstream bytes.
	ReadTimeout time.Duration
	// Head is the complete request head to send to the target: request
	// line, headers, and the empty line. Dispatch appends to Head[:0],
	// which the engine keeps allocated between requests.
	Head []byte
	// ResponseHeaders are raw header lines ("X-Request-Id: 1\r\n") added to
	// the upstream's response head, and to local responses.
	ResponseHeaders []byte

	// A local response, when Target is empty.
	Status      int
	ContentType string
	Body        []byte

	// Replayable, set by Dispatch, says the request may be sent again
	// after it may have reached the target: when a pooled connection
	// turns out to have been closed by the target as the request went out
	// (the keep-alive race), the engine sends it once more on a new
	// connection only if this is set. Set it for idempotent methods only:
	// a POST the target did process must never run twice.
	Replayable bool

	// Handoff, set by Dispatch, gives the connection from this request on
	// to Config.Handoff (a goroutine-per-connection server) instead of
	// proxying it here: for requests whose handling may block. Done is
	// not called for the exchange.
	Handoff bool

	// Filter, when set by Dispatch, sees the upstream's response head
	// before it is copied to the client.
	Filter ResponseFilter

	// User is the Dispatcher's own state. The engine keeps it across the
	// connection's exchanges (it resets every other field), so that the
	// Dispatcher can reuse per-connection scratch space without
	// allocating per request.
	User any

	// Filled by the engine:

	// Start is when the request head was complete.
	Start time.Time
	// Attempt counts tries of this exchange, from 1.
	Attempt int
}

// ResponseFilter edits an upstream's response head on its way to the
// client. Its methods run on the event loop's thread.
type ResponseFilter interface {
	// ResponseStatus is called first, with the upstream's final status
	// (not for 1xx); it may append header lines to ex.ResponseHeaders.
	ResponseStatus(ex *Exchange, status int)
	// KeepHeader is then asked for each header of the upstream's head
	// (hop-by-hop headers excepted); false leaves it out. A filter that
	// renames a header appends it under its new name to
	// ex.ResponseHeaders and returns false.
	KeepHeader(ex *Exchange, name, value []byte) bool
}

// Result says how an exchange ended.
type Result struct {
	// Status is the status sent to the client (0 when none was).
	Status int
	// Err is set when the exchange failed (target unreachable, timeout,
	// a side closed early); Timeout tells a timeout apart.
	Err     error
	Timeout bool
	// UpstreamTime is from sending the head to the target to receiving
	// the response head.
	UpstreamTime time.Duration
	// BytesIn and BytesOut count request and response body bytes.
	BytesIn, BytesOut int64
	// Upgraded is set when the exchange became a WebSocket tunnel; Done is
	// then called when the tunnel closes.
	Upgraded bool
}

// Dispatcher is the proxy's side of the engine. Its methods run on the
// event loop's thread: they must not block.
type Dispatcher interface {
	// Dispatch decides where req goes: it sets ex.Target and ex.Head, or
	// a local response.
	Dispatch(req *Request, ex *Exchange)
	// Failed is called when the target could not be reached or failed
	// before any byte of its response was sent to the client. The
	// Dispatcher may set a new Target for another attempt and return
	// true (the engine retries only requests without a body, and the
	// Dispatcher grants retries only to idempotent ones), or fill a
	// local error response and return false.
	Failed(ex *Exchange, err error, timeout bool) (retry bool)
	// Done is called once per exchange, when it ends.
	Done(ex *Exchange, res Result)
}
