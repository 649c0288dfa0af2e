//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Client connection states.
const (
	cHead   = iota // waiting for (the rest of) a request head, or idle
	cProxy         // exchange with an upstream in progress
	cLocal         // writing a local response
	cTunnel        // WebSocket tunnel
	cLinger        // response out, discarding input before closing
	cClosed
)

// lingerTime bounds how long a closing connection's input is discarded.
const lingerTime = 5 * time.Second

// maxAttempts bounds retries granted by Failed, so that a Dispatcher
// always asking for one more cannot keep a loop busy forever.
const maxAttempts = 16

// ErrClientClosed is Result.Err when the client went away before its
// exchange ended (what nginx logs as 499).
var ErrClientClosed = errors.New("evloop: client closed the connection")

var (
	errClientTimeout  = errors.New("evloop: client timed out")
	errUpstreamClosed = errors.New("evloop: upstream closed the connection before the response was complete")
	errReadTimeout    = errors.New("evloop: upstream read timed out")
	errBadResponse    = errors.New("evloop: malformed response from upstream")
	errBadRequestBody = errors.New("evloop: malformed chunked request body")
	errUnexpected101  = errors.New("evloop: upstream switched protocols without an upgrade request")
	errTimeout        = errors.New("timed out")
)

// cconn is a client connection and its current exchange.
type cconn struct {
	sock
	l     *loop
	state uint8

	headStarted bool // part of a request head has arrived
	scanned     int  // how far headEnd has looked into the pending head
	closeAfter  bool // close once the current response is out
	dispatched  bool // Dispatch ran: Done is owed
	isHead      bool
	hasBody     bool
	upgrade     bool
	minor       int
	retried     bool // the keep-alive race retry was used
	answered    bool // a response went out: the client knows the connection works
	expect      bool // 100 Continue is owed once the request goes upstream

	req Request
	ex  Exchange
	// headBuf and rhBuf are the engine's own buffers behind ex.Head and
	// ex.ResponseHeaders, handed out empty for each exchange.
	headBuf, rhBuf []byte
	up             *uconn
	res            Result // result of a local response, for when it is written

	// Request direction: ex.Head[hoff:], then reqAvail body bytes at the
	// read position of rbuf.
	hoff     int
	headSent bool
	sentAt   int64
	reqBody  body
	reqAvail int
	reqDone  bool
	bytesIn  int64
	// A chunked body goes upstream re-framed: frame[foff:] (the framing
	// before the reqAvail data bytes), and reqSkip bytes of the client's
	// own framing after them, dropped once they are sent.
	rechunk   bool
	frame     []byte
	foff      int
	reqSkip   int
	chunkOpen bool // a chunk's data went out; its CRLF is still owed
	chunkEnd  bool // the last chunk is in frame

	// Response direction: out[outOff:] (a response head or a local
	// response), then respAvail body bytes at the upstream's read position.
	out         []byte
	outOff      int
	respBody    body
	respAvail   int
	dechunk     bool // respBody is chunked, forwarded without its framing
	respSkip    int  // framing bytes after the respAvail data, then dropped
	respHead    bool // a head is in out
	interim     bool // that head is a 1xx
	respStarted bool
	status      int
	upTime      time.Duration
	reusable    bool
	bytesOut    int64
	errBody     []byte

	// Tunnel: which directions have finished.
	upDone, downDone bool
}

// uconn is an upstream connection, owned by a client's exchange or idle in
// its loop's pool (c == nil).
type uconn struct {
	sock
	l          *loop
	c          *cconn
	target     string
	connecting bool
	reused     bool // taken from the pool
	got        bool // sent bytes during the current exchange
}

// Client side.

func (c *cconn) onEvent(ev uint32) {
	l := c.l
	switch c.state {
	case cHead:
		if _, err := l.read(&c.sock); err != nil || c.eof || ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.r == c.w {
			c.close()
			return
		}
	case cLocal:
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.abort(ErrClientClosed, false)
			return
		}
		if ev&unix.EPOLLOUT != 0 {
			c.writeLocal()
		} else {
			l.setMask(&c.sock, c.mask&^unix.EPOLLIN)
		}
	case cProxy:
		if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.abort(ErrClientClosed, false)
			return
		}
		if ev&unix.EPOLLOUT != 0 {
			c.pumpResponse()
		}
		if c.state == cProxy && ev&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
			u := c.up
			switch {
			case u != nil && !u.connecting && !c.reqBody.done() && c.reqAvail == 0:
				n, err := l.read(&c.sock)
				if err != nil || c.eof {
					c.abort(ErrClientClosed, false)
					return
				}
				if n > 0 {
					l.setTimer(&c.tm, l.cfg.IdleTimeout)
					c.pumpRequest()
				}
			case ev&unix.EPOLLRDHUP != 0:
				c.abort(ErrClientClosed, false)
				return
			default:
				// Pipelined bytes wait until this exchange is over;
				// level-triggered epoll would report them meanwhile.
				l.setMask(&c.sock, c.mask&^unix.EPOLLIN)
			}
		}
	case cTunnel:
		c.tunnelEvent(&c.sock, ev)
	case cLinger:
		_, err := l.read(&c.sock)
		c.r, c.w = 0, 0
		if err != nil || c.eof || ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.close()
		}
	}
	c.resume()
}

func (c *cconn) onTimer() {
	l := c.l
	switch c.state {
	case cHead:
		c.close()
	case cLocal:
		c.abort(errClientTimeout, true)
	case cProxy:
		u := c.up
		if c.mask&unix.EPOLLOUT != 0 || u != nil && !u.connecting && !c.reqBody.done() && c.reqAvail == 0 {
			c.abort(errClientTimeout, true)
			return
		}
		l.setTimer(&c.tm, l.cfg.IdleTimeout)
	case cTunnel:
		c.endTunnel(errClientTimeout, true)
	case cLinger:
		c.close()
	}
}

// resume serves pipelined requests after an exchange ended.
func (c *cconn) resume() {
	if c.state == cHead {
		c.serveHeads()
	}
}

// serveHeads runs the exchanges whose heads are buffered, one at a time,
// until one has to wait.
func (c *cconn) serveHeads() {
	l := c.l
	for c.state == cHead {
		if c.r == c.w {
			l.putBuf(&c.sock)
			l.setMask(&c.sock, unix.EPOLLIN|unix.EPOLLRDHUP)
			return
		}
		if n := skipEmptyLines(c.rbuf[c.r:c.w]); n > 0 {
			c.r += n
			continue
		}
		b := c.rbuf[c.r:c.w]
		end := headEnd(b, c.scanned)
		if end < 0 && len(b) < l.cfg.MaxHeaderBytes {
			// A head that came whole never needed this timer; setting
			// it only for partial heads keeps it off the common path.
			if !c.headStarted {
				c.headStarted = true
				l.setTimer(&c.tm, l.cfg.HeaderTimeout)
			}
			c.scanned = len(b)
			l.setMask(&c.sock, unix.EPOLLIN|unix.EPOLLRDHUP)
			return
		}
		c.headStarted, c.scanned = false, 0
		if end < 0 || end > l.cfg.MaxHeaderBytes {
			c.reject(reject{431, "request head too large"})
			return
		}
		c.startExchange(b[:end])
	}
}

func (c *cconn) startExchange(head []byte) {
	l := c.l
	from := c.r
	if rj := parseRequest(head, &c.req); rj.status != 0 {
		c.reject(rj)
		return
	}
	c.r += len(head)
	req := &c.req
	ex := &c.ex
	c.headBuf = reclaim(c.headBuf, ex.Head)
	c.rhBuf = reclaim(c.rhBuf, ex.ResponseHeaders)
	// User survives: it is the Dispatcher's per-connection state.
	*ex = Exchange{Head: c.headBuf, ResponseHeaders: c.rhBuf, Start: l.now, Attempt: 1, User: ex.User}
	c.isHead = string(req.Method) == "HEAD"
	c.hasBody = req.ContentLength != 0
	// As nginx does: no 100 Continue when the body is already arriving.
	c.expect = req.Continue && c.hasBody && c.r == c.w
	c.rechunk = req.ContentLength < 0
	c.frame, c.foff, c.reqSkip, c.chunkOpen, c.chunkEnd = c.frame[:0], 0, 0, false, false
	c.upgrade = req.Upgrade
	c.minor = req.Minor
	c.closeAfter = req.Close || l.draining
	c.retried = false
	c.bytesIn, c.bytesOut, c.status, c.upTime = 0, 0, 0, 0
	c.respStarted, c.reqDone, c.reqAvail = false, false, 0
	c.respHead, c.interim = false, false
	switch {
	case req.ContentLength > 0:
		c.reqBody.init(bodyFixed, req.ContentLength)
	case req.ContentLength < 0:
		c.reqBody.init(bodyChunked, 0)
	default:
		c.reqBody.init(bodyNone, 0)
	}
	c.dispatched = true
	c.state = cProxy
	l.cfg.Dispatcher.Dispatch(req, ex)
	if ex.Handoff && l.cfg.Handoff != nil {
		c.handoff(from)
		return
	}
	if ex.Target == "" {
		c.sendLocal(Result{})
		return
	}
	c.startUpstream(false)
}

// handoff gives the connection, from the head of its current request on,
// to Config.Handoff, and forgets it: the exchange's Done is not owed.
func (c *cconn) handoff(from int) {
	l := c.l
	pending := append([]byte(nil), c.rbuf[from:c.w]...)
	c.dispatched = false
	l.unregister(&c.sock)
	fd, err := unix.Dup(c.fd)
	c.ex.Body = nil
	c.close()
	if err != nil {
		l.cfg.Logger.Warn("hand-off of a connection failed", "error", err)
		return
	}
	f := os.NewFile(uintptr(fd), "evloop-handoff")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.cfg.Logger.Warn("hand-off of a connection failed", "error", err)
		return
	}
	go l.cfg.Handoff(&prefixConn{Conn: conn, pending: pending})
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// reclaim returns the buffer to hand out for the next exchange: mine, or
// what the Dispatcher appended to it in place. A slice the Dispatcher
// assigned instead may be shared elsewhere and is never reused; only its
// size is, so that appends stop allocating after the first exchanges.
func reclaim(mine, used []byte) []byte {
	if cap(mine) > 0 && cap(used) > 0 && &used[:1][0] == &mine[:1][0] {
		return used[:0]
	}
	if cap(used) > cap(mine) {
		return make([]byte, 0, cap(used))
	}
	return mine[:0]
}

// reject answers a request the engine refuses itself; no exchange exists
// for it, so the Dispatcher hears nothing.
func (c *cconn) reject(rj reject) {
	c.dispatched = false
	c.closeAfter = true
	c.isHead = false
	c.ex.Status = rj.status
	c.ex.ContentType = "application/json"
	c.errBody = appendErrorJSON(c.errBody[:0], rj.status, rj.msg)
	c.ex.Body = c.errBody
	c.ex.ResponseHeaders = c.ex.ResponseHeaders[:0]
	c.sendLocal(Result{})
}

// sendLocal answers from ex's Status, ContentType and Body.
func (c *cconn) sendLocal(res Result) {
	ex := &c.ex
	if c.hasBody && !c.reqBody.done() {
		// The rest of the body would have to be read and thrown away.
		c.closeAfter = true
	}
	if ex.Status < 100 || ex.Status > 999 {
		ex.Status = 500
	}
	res.Status = ex.Status
	c.status = ex.Status
	if !c.isHead {
		res.BytesOut = int64(len(ex.Body))
	}
	res.BytesIn = c.bytesIn
	c.res = res
	// The rest of a 100 Continue the client has not taken yet goes first.
	pending := 0
	if c.respHead && c.interim {
		pending = copy(c.out, c.out[c.outOff:])
	}
	c.out = appendLocal(c.out[:pending], ex, c.closeAfter || c.l.draining, c.minor == 0, c.isHead)
	c.outOff = 0
	c.state = cLocal
	c.respStarted = true
	c.writeLocal()
}

func (c *cconn) writeLocal() {
	l := c.l
	ok, err := l.flush(c.fd, c.out, &c.outOff, nil, nil)
	if err != nil {
		c.abort(err, false)
		return
	}
	if !ok {
		l.setMask(&c.sock, c.mask|unix.EPOLLOUT)
		l.setTimer(&c.tm, l.cfg.IdleTimeout)
		return
	}
	c.finish(c.res, false)
}

// finish ends the exchange: the upstream connection goes back to the
// pool (when reuse is true) or is closed, the Dispatcher hears the
// result, and the client connection waits for its next request or closes.
func (c *cconn) finish(res Result, reuse bool) {
	l := c.l
	if u := c.up; u != nil {
		c.up, u.c = nil, nil
		if reuse {
			l.poolPut(u)
		} else {
			l.closeSock(&u.sock)
		}
	}
	c.state = cHead
	c.answered = true
	if c.dispatched {
		c.dispatched = false
		l.cfg.Dispatcher.Done(&c.ex, res)
	}
	// User stays for the connection's next exchange; Body is the Dispatcher's
	// buffer and is not held past it.
	c.ex.Body = nil
	if c.closeAfter || l.draining {
		if c.r < c.w || c.hasBody && !c.reqBody.done() {
			c.linger()
			return
		}
		c.close()
		return
	}
	l.setTimer(&c.tm, l.cfg.IdleTimeout)
	l.setMask(&c.sock, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// linger half-closes a connection whose client may still be sending and
// discards what arrives for a while before closing: closing with unread
// input makes the kernel answer with a reset, which can destroy the
// response before the client has read it.
func (c *cconn) linger() {
	l := c.l
	unix.Shutdown(c.fd, unix.SHUT_WR)
	c.state = cLinger
	c.r, c.w = 0, 0
	l.putBuf(&c.sock)
	l.setMask(&c.sock, unix.EPOLLIN|unix.EPOLLRDHUP)
	l.setTimer(&c.tm, lingerTime)
}

// abort ends the connection and its exchange, if any, with err.
func (c *cconn) abort(err error, timeout bool) {
	if c.state == cClosed {
		return
	}
	if u := c.up; u != nil {
		c.up, u.c = nil, nil
		c.l.closeSock(&u.sock)
	}
	if c.dispatched {
		c.dispatched = false
		res := Result{Err: err, Timeout: timeout, UpstreamTime: c.upTime,
			BytesIn: c.bytesIn, BytesOut: c.bytesOut, Upgraded: c.state == cTunnel}
		if c.respStarted {
			res.Status = c.status
		}
		c.l.cfg.Dispatcher.Done(&c.ex, res)
	}
	c.close()
}

func (c *cconn) close() {
	if c.state == cClosed {
		return
	}
	l := c.l
	if c.up != nil {
		c.up.c = nil
		l.closeSock(&c.up.sock)
		c.up = nil
	}
	c.state = cClosed
	l.closeSock(&c.sock)
	c.req = Request{RemoteAddr: c.req.RemoteAddr}
	c.ex = Exchange{}
	l.clients--
	if l.cfg.ConnState != nil {
		l.cfg.ConnState(false)
	}
}

// drain is Shutdown reaching this connection: an idle one closes now, a
// busy one after its exchange.
func (c *cconn) drain() {
	if c.state == cHead && !c.headStarted && c.r == c.w {
		if c.answered {
			// Idle between requests: a client that sends on it now sees
			// the close and may retry, which it could not do for the
			// first request of a connection.
			c.close()
			return
		}
		// Accepted, nothing read yet: its request is on the way (a
		// client sends at once), and closing would fail it.
		c.l.setTimer(&c.tm, min(drainGrace, c.l.cfg.HeaderTimeout))
	}
	c.closeAfter = true
}

// drainGrace is how long a draining engine waits for the first request of
// a connection it accepted just before it stopped accepting.
const drainGrace = 2 * time.Second

// Upstream side.

// startUpstream begins an attempt on ex.Target, on a pooled connection
// unless fresh is set.
func (c *cconn) startUpstream(fresh bool) {
	l := c.l
	ex := &c.ex
	c.state = cProxy
	c.hoff, c.headSent, c.reqDone = 0, false, false
	c.respHead, c.interim, c.respAvail, c.outOff = false, false, 0, 0
	c.dechunk, c.respSkip = false, 0
	c.out = c.out[:0]
	if c.expect {
		c.expect = false
		if !c.sendContinue() {
			return
		}
	}
	if !fresh {
		if u := l.poolGet(ex.Target); u != nil {
			c.up, u.c = u, c
			u.reused, u.got = true, false
			c.pumpRequest()
			return
		}
	}
	u, err := l.dial(ex.Target)
	if err != nil {
		c.upstreamFailed(err, false)
		return
	}
	c.up, u.c = u, c
	d := ex.ConnectTimeout
	if d <= 0 {
		d = defaultConnectTimeout
	}
	l.setTimer(&u.tm, d)
	// A nearby target often completes the handshake within connect():
	// sending at once saves a loop turn. While the connection is still
	// being set up the write just returns EAGAIN.
	c.pumpRequest()
}

// sendContinue answers Expect: 100-continue for a request that was routed
// and passed its policies: the client sends its body only then, instead
// of waiting for its own timeout. The 100 goes out as an interim response
// does, ahead of the target's answer. It reports false when the client
// connection failed.
func (c *cconn) sendContinue() bool {
	l := c.l
	c.out = append(c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
	c.respHead, c.interim = true, true
	c.respBody.init(bodyNone, 0)
	ok, err := l.flush(c.fd, c.out, &c.outOff, nil, nil)
	if err != nil {
		c.abort(err, false)
		return false
	}
	if !ok {
		l.setMask(&c.sock, c.mask|unix.EPOLLOUT)
	}
	return true
}

func (c *cconn) readTimeout() time.Duration {
	if c.ex.ReadTimeout > 0 {
		return c.ex.ReadTimeout
	}
	return defaultReadTimeout
}

// pumpRequest forwards the request head and body to the upstream.
func (c *cconn) pumpRequest() {
	l, u := c.l, c.up
	for {
		var ok, headOnly bool
		var err error
		before := c.reqAvail
		switch {
		case !c.rechunk:
			if c.reqAvail == 0 && c.r < c.w && !c.reqBody.done() {
				n, valid := c.reqBody.scan(c.rbuf[c.r:c.w])
				if !valid {
					c.badRequestBody()
					return
				}
				c.reqAvail = n
				before = n
			}
			ok, err = l.flush(u.fd, c.ex.Head, &c.hoff, &c.sock, &c.reqAvail)
		case c.hoff < len(c.ex.Head):
			// The head alone first: chunked bodies are rare enough for
			// the extra system call not to matter.
			headOnly = true
			ok, err = l.flush(u.fd, c.ex.Head, &c.hoff, nil, nil)
		default:
			if c.reqAvail == 0 && c.foff == len(c.frame) && !c.nextChunk() {
				c.badRequestBody()
				return
			}
			before = c.reqAvail
			ok, err = l.flush(u.fd, c.frame, &c.foff, &c.sock, &c.reqAvail)
			if c.reqAvail == 0 {
				c.r += c.reqSkip
				c.reqSkip = 0
			}
		}
		c.bytesIn += int64(before - c.reqAvail)
		if u.connecting {
			if err != nil {
				c.upstreamFailed(fmt.Errorf("evloop: connect %s: %w", u.target, err), false)
				return
			}
			if c.hoff == 0 {
				return // still connecting: EPOLLOUT will tell
			}
			u.connecting = false
		}
		if !c.headSent && c.hoff == len(c.ex.Head) {
			c.headSent, c.sentAt = true, l.mono
		}
		if err != nil {
			c.upstreamFailed(err, false)
			return
		}
		if !ok {
			l.setMask(&u.sock, u.mask|unix.EPOLLOUT)
			l.setTimer(&u.tm, c.readTimeout())
			return
		}
		if u.mask&unix.EPOLLOUT != 0 {
			l.setMask(&u.sock, u.mask&^unix.EPOLLOUT)
		}
		if headOnly {
			continue
		}
		if c.reqBody.done() {
			if c.rechunk && !c.chunkEnd {
				continue
			}
			c.reqDone = true
			l.setTimer(&u.tm, c.readTimeout())
			return
		}
		if c.r < c.w {
			continue
		}
		l.setMask(&c.sock, c.mask|unix.EPOLLIN)
		return
	}
}

// nextChunk takes the client's chunked bytes that have arrived and frames
// their data afresh for the upstream: one chunk with a plain hex size, no
// extensions, and at the end a last chunk without trailers. An upstream
// that parses chunk extensions or trailers its own way (a "3 4" size, a
// trailer named Content-Length) never sees the client's. It reports false
// for a malformed body.
func (c *cconn) nextChunk() bool {
	c.frame, c.foff = c.frame[:0], 0
	if c.reqBody.done() {
		if c.chunkOpen {
			c.frame = append(c.frame, "\r\n"...)
		}
		c.frame = append(c.frame, "0\r\n\r\n"...)
		c.chunkEnd = true
		return true
	}
	if c.r == c.w {
		return true
	}
	consumed, n, ok := c.reqBody.dechunk(c.rbuf[c.r:c.w])
	if !ok {
		return false
	}
	c.reqAvail, c.reqSkip = n, consumed-n
	if n > 0 {
		if c.chunkOpen {
			c.frame = append(c.frame, "\r\n"...)
		}
		c.frame = strconv.AppendInt(c.frame, int64(n), 16)
		c.frame = append(c.frame, "\r\n"...)
		c.chunkOpen = true
	}
	return true
}

// badRequestBody ends an exchange whose chunked body is malformed.
func (c *cconn) badRequestBody() {
	if c.respStarted {
		c.abort(errBadRequestBody, false)
		return
	}
	if u := c.up; u != nil {
		c.up, u.c = nil, nil
		c.l.closeSock(&u.sock)
	}
	c.closeAfter = true
	c.ex.Status = 400
	c.ex.ContentType = "application/json"
	c.errBody = appendErrorJSON(c.errBody[:0], 400, "malformed chunked body")
	c.ex.Body = c.errBody
	c.sendLocal(Result{Err: errBadRequestBody})
}

func (u *uconn) onEvent(ev uint32) {
	l, c := u.l, u.c
	if c == nil {
		// Idle in the pool: readable means closed by the target (or it
		// sent bytes nobody asked for); either way it is done.
		l.poolRemove(u)
		l.closeSock(&u.sock)
		return
	}
	switch {
	case u.connecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		errno, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		} else if err == nil && ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			err = unix.ECONNRESET
		}
		if err != nil {
			c.upstreamFailed(fmt.Errorf("evloop: connect %s: %w", u.target, err), false)
			break
		}
		u.connecting = false
		c.pumpRequest()
	case c.state == cTunnel:
		c.tunnelEvent(&u.sock, ev)
	default:
		if ev&unix.EPOLLOUT != 0 && !c.reqDone {
			c.pumpRequest()
			if c.up != u {
				break
			}
		}
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
			break
		}
		if c.respAvail == 0 && c.outOff == len(c.out) {
			c.readUpstream()
		} else if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// The rest is in the socket already; read it without epoll
			// once the client has taken what is pending.
			l.unregister(&u.sock)
		} else {
			l.setMask(&u.sock, u.mask&^unix.EPOLLIN)
		}
	}
	c.resume()
}

func (u *uconn) onTimer() {
	l, c := u.l, u.c
	if c == nil {
		l.poolRemove(u)
		l.closeSock(&u.sock)
		return
	}
	switch {
	case u.connecting:
		c.upstreamFailed(fmt.Errorf("evloop: connect %s: %w", u.target, errTimeout), true)
	case c.state == cTunnel:
	case c.respAvail == 0 && c.outOff == len(c.out) && (c.reqDone || u.mask&unix.EPOLLOUT != 0):
		c.upstreamFailed(errReadTimeout, true)
	default:
		// Waiting on the client, whose own timer bounds that.
		l.setTimer(&u.tm, c.readTimeout())
	}
	c.resume()
}

func (c *cconn) readUpstream() {
	l, u := c.l, c.up
	n, err := l.read(&u.sock)
	if err != nil {
		c.upstreamFailed(err, false)
		return
	}
	if n > 0 {
		u.got = true
		l.setTimer(&u.tm, c.readTimeout())
	} else if !u.eof && (c.respHead || u.w-u.r < len(u.rbuf)) {
		return
	}
	c.pumpResponse()
}

// pumpResponse parses response heads and forwards the response to the
// client.
func (c *cconn) pumpResponse() {
	l, u := c.l, c.up
	for {
		if !c.respHead {
			b := u.rbuf[u.r:u.w]
			end := headEnd(b, 0)
			if end < 0 {
				switch {
				case u.eof:
					c.upstreamFailed(errUpstreamClosed, false)
				case len(u.rbuf) > 0 && len(b) == len(u.rbuf):
					c.upstreamFailed(errBadResponse, false)
				case u.gone:
					if !c.readGone(u) {
						return
					}
					continue
				default:
					l.setMask(&u.sock, u.mask|unix.EPOLLIN)
				}
				return
			}
			if !c.startResponse(b[:end]) {
				return
			}
		}
		if c.respAvail == 0 && u.r < u.w && !c.respBody.done() {
			var n int
			ok := true
			if c.dechunk {
				var consumed int
				consumed, n, ok = c.respBody.dechunk(u.rbuf[u.r:u.w])
				c.respSkip = consumed - n
			} else {
				n, ok = c.respBody.scan(u.rbuf[u.r:u.w])
			}
			if !ok {
				c.abort(errBadResponse, false)
				return
			}
			c.respAvail = n
		}
		before := c.respAvail
		ok, err := l.flush(c.fd, c.out, &c.outOff, &u.sock, &c.respAvail)
		c.bytesOut += int64(before - c.respAvail)
		if c.respAvail == 0 {
			u.r += c.respSkip
			c.respSkip = 0
		}
		if err != nil {
			c.abort(err, false)
			return
		}
		if !ok {
			l.setMask(&c.sock, c.mask|unix.EPOLLOUT)
			l.setTimer(&c.tm, l.cfg.IdleTimeout)
			return
		}
		if c.mask&unix.EPOLLOUT != 0 {
			l.setMask(&c.sock, c.mask&^unix.EPOLLOUT)
		}
		if c.respBody.done() {
			if c.interim {
				c.interim, c.respHead = false, false
				c.out, c.outOff = c.out[:0], 0
				continue
			}
			c.endResponse()
			return
		}
		if u.r < u.w {
			continue
		}
		switch {
		case u.eof && c.respBody.kind == bodyClose:
			c.respBody.kind = bodyNone
			c.endResponse()
		case u.eof:
			c.abort(errUpstreamClosed, false)
		case u.gone:
			if c.readGone(u) {
				continue
			}
		default:
			l.setMask(&u.sock, u.mask|unix.EPOLLIN)
		}
		return
	}
}

// readGone reads from an upstream taken out of epoll, where the data (or
// the end) is already there. It reports whether to go on.
func (c *cconn) readGone(u *uconn) bool {
	n, err := c.l.read(&u.sock)
	if err != nil {
		c.upstreamFailed(err, false)
		return false
	}
	if n == 0 {
		// Nothing to read on a connection whose peer is gone is its end.
		u.eof = true
	}
	u.got = true
	return true
}

// startResponse takes in a response head and prepares the head for the
// client. It reports false when the exchange took another path.
func (c *cconn) startResponse(head []byte) bool {
	l, u := c.l, c.up
	var rh respHead
	var ok bool
	c.out, ok = parseResponse(head, &rh, c.out[:0], c.minor == 0, &c.ex)
	if !ok {
		c.upstreamFailed(errBadResponse, false)
		return false
	}
	if rh.status == 101 {
		if !c.upgrade {
			c.upstreamFailed(errUnexpected101, false)
			return false
		}
		u.r += len(head)
		c.status = 101
		c.upTime = time.Duration(l.mono - c.sentAt)
		c.out = append(c.out, c.ex.ResponseHeaders...)
		// Connection was dropped as hop-by-hop; the client needs it back.
		c.out = append(c.out, "Connection: Upgrade\r\n\r\n"...)
		c.respStarted = true
		c.startTunnel()
		return false
	}
	if rh.badLength && !c.isHead && rh.status >= 200 && rh.status != 204 && rh.status != 304 && !rh.te {
		c.upstreamFailed(errBadResponse, false)
		return false
	}
	u.r += len(head)
	c.respHead = true
	c.outOff = 0
	if rh.status < 200 {
		c.interim = true
		c.respBody.init(bodyNone, 0)
		if c.minor == 0 {
			// HTTP/1.0 has no interim responses (RFC 9110 §15.2).
			c.out = c.out[:0]
			return true
		}
		c.respStarted = true
		c.out = append(c.out, "\r\n"...)
		return true
	}
	c.respStarted = true
	c.status = rh.status
	c.upTime = time.Duration(l.mono - c.sentAt)
	c.reusable = rh.minor == 1 && !rh.close
	switch {
	case c.isHead || rh.status == 204 || rh.status == 304:
		c.respBody.init(bodyNone, 0)
	case rh.te:
		if rh.chunked {
			c.respBody.init(bodyChunked, 0)
			if rh.dechunk {
				// The HTTP/1.0 client learns the end from the close.
				c.dechunk = true
				c.closeAfter = true
			}
		} else {
			c.respBody.init(bodyClose, 0)
		}
		// RFC 9112 §6.3: with both, Transfer-Encoding wins, and the
		// connection must not be reused.
		if rh.haveCL {
			c.reusable = false
		}
	case rh.haveCL:
		c.respBody.init(bodyFixed, rh.cl)
	default:
		c.respBody.init(bodyClose, 0)
	}
	if c.respBody.kind == bodyClose {
		c.reusable = false
		c.closeAfter = true
	}
	if !c.reqDone {
		// The target answered before taking the whole request: the rest
		// of the body can go nowhere.
		c.reusable = false
		c.closeAfter = true
	}
	c.out = append(c.out, c.ex.ResponseHeaders...)
	switch {
	case c.closeAfter || l.draining:
		c.out = append(c.out, "Connection: close\r\n"...)
	case c.minor == 0:
		c.out = append(c.out, "Connection: keep-alive\r\n"...)
	}
	c.out = append(c.out, "\r\n"...)
	return true
}

func (c *cconn) endResponse() {
	u := c.up
	reuse := c.reusable && c.reqDone && u.r == u.w && !u.eof && !u.gone
	c.finish(Result{Status: c.status, UpstreamTime: c.upTime, BytesIn: c.bytesIn, BytesOut: c.bytesOut}, reuse)
}

// upstreamFailed handles an attempt that failed: before anything went to
// the client it retries or answers locally, after that it can only cut
// the connection.
func (c *cconn) upstreamFailed(err error, timeout bool) {
	l := c.l
	stale := false
	if u := c.up; u != nil {
		stale = u.reused && !u.got && !timeout
		c.up, u.c = nil, nil
		l.closeSock(&u.sock)
	}
	if c.respStarted {
		c.abort(err, timeout)
		return
	}
	if stale && !c.hasBody && !c.retried && c.ex.Replayable {
		// The keep-alive race: the target closed an idle connection as
		// the request went out. Most likely nothing was processed, but
		// the target may have run the request and died before answering:
		// only an idempotent request is sent again, on a new connection.
		c.retried = true
		c.startUpstream(true)
		return
	}
	ex := &c.ex
	retry := l.cfg.Dispatcher.Failed(ex, err, timeout)
	if retry && !c.hasBody && ex.Attempt < maxAttempts {
		ex.Attempt++
		c.retried = false
		c.startUpstream(false)
		return
	}
	if ex.Status == 0 {
		ex.Status = 502
		if timeout {
			ex.Status = 504
		}
		ex.ContentType = "application/json"
		c.errBody = appendErrorJSON(c.errBody[:0], ex.Status, err.Error())
		ex.Body = c.errBody
	}
	c.sendLocal(Result{Err: err, Timeout: timeout})
}

// Tunnel.

func (c *cconn) startTunnel() {
	l, u := c.l, c.up
	c.state = cTunnel
	c.outOff = 0
	c.upDone, c.downDone = false, false
	c.bytesIn, c.bytesOut = 0, 0
	l.stopTimer(&u.tm)
	l.setTimer(&c.tm, l.cfg.IdleTimeout)
	c.pumpTunnel()
}

func (c *cconn) tunnelEvent(s *sock, ev uint32) {
	l, u := c.l, c.up
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// Each side is read only while nothing of it waits to be written.
		pending := c.w > c.r
		if s == &u.sock {
			pending = u.w > u.r || c.outOff < len(c.out)
		}
		if !pending && !s.eof {
			if _, err := l.read(s); err != nil {
				c.endTunnel(err, false)
				return
			}
		} else if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.unregister(s)
		}
	}
	c.pumpTunnel()
}

// pumpTunnel copies both ways and sets what each side waits for.
func (c *cconn) pumpTunnel() {
	l, u := c.l, c.up
	var cmask, umask uint32
	var zero int
	// client → upstream
	for !c.upDone {
		avail := c.w - c.r
		before := avail
		ok, err := l.flush(u.fd, nil, &zero, &c.sock, &avail)
		c.bytesIn += int64(before - avail)
		if err != nil {
			c.endTunnel(err, false)
			return
		}
		if before > 0 {
			l.setTimer(&c.tm, l.cfg.IdleTimeout)
		}
		if !ok {
			umask |= unix.EPOLLOUT
			break
		}
		if c.eof {
			unix.Shutdown(u.fd, unix.SHUT_WR)
			c.upDone = true
			break
		}
		if !c.gone {
			cmask |= unix.EPOLLIN
			break
		}
		if n, err := l.read(&c.sock); err != nil || n == 0 {
			c.eof = true
		}
	}
	// upstream → client
	for !c.downDone {
		avail := u.w - u.r
		before := avail
		ok, err := l.flush(c.fd, c.out, &c.outOff, &u.sock, &avail)
		c.bytesOut += int64(before - avail)
		if err != nil {
			c.endTunnel(err, false)
			return
		}
		if before > 0 {
			l.setTimer(&c.tm, l.cfg.IdleTimeout)
		}
		if !ok {
			cmask |= unix.EPOLLOUT
			break
		}
		if u.eof {
			unix.Shutdown(c.fd, unix.SHUT_WR)
			c.downDone = true
			break
		}
		if !u.gone {
			umask |= unix.EPOLLIN
			break
		}
		if n, err := l.read(&u.sock); err != nil || n == 0 {
			u.eof = true
		}
	}
	if c.upDone && c.downDone {
		c.endTunnel(nil, false)
		return
	}
	l.setMask(&c.sock, cmask)
	l.setMask(&u.sock, umask)
}

func (c *cconn) endTunnel(err error, timeout bool) {
	if c.dispatched {
		c.dispatched = false
		c.l.cfg.Dispatcher.Done(&c.ex, Result{Status: 101, Upgraded: true, Err: err, Timeout: timeout,
			UpstreamTime: c.upTime, BytesIn: c.bytesIn, BytesOut: c.bytesOut})
	}
	c.close()
}
