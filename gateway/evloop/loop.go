//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"
)

// handler is what a loop's fd table holds: a client or upstream connection.
type handler interface {
	onEvent(ev uint32)
	onTimer()
}

// sock is the part common to client and upstream connections.
type sock struct {
	fd   int
	gen  uint32 // registration number, to drop events for a reused fd
	mask uint32 // events registered with epoll
	// rbuf[r:w] is data read and not consumed yet. rbuf is borrowed from
	// the loop while the connection has something to hold.
	rbuf []byte
	r, w int
	eof  bool // read returned 0
	// gone is set once the connection was taken out of epoll after
	// RDHUP/HUP/ERR while it was not being read: the rest is read
	// without waiting for readiness.
	gone bool
	tm   timer
}

// timer is a connection's single deadline in its loop's heap. when is the
// deadline (0: none) and key the position in the heap, which may be
// earlier: pushing a deadline later, the common case, only changes when
// and the heap catches up when key comes due.
type timer struct {
	when, key int64
	pos       int
	h         handler
}

type loop struct {
	e      *Engine
	cfg    *Config
	epfd   int
	lfd    int
	efd    int
	events []unix.EpollEvent
	fds    []handler
	gen    uint32
	heap   []*timer
	now    time.Time
	mono   int64 // now as nanoseconds since e.base
	free   [][]byte
	// scratch is lent to the first connection that reads during an event
	// and taken back after it (settle): most reads are consumed at once,
	// so most connections never need a buffer of their own.
	scratch      []byte
	scratchOwner *sock
	pool         map[string][]*uconn
	// clients counts open client connections, to know when a draining
	// loop is done.
	clients  int
	draining bool
	// iov is scratch for writev.
	iov [2]unix.Iovec
	// acceptTm re-enables accepting after running out of descriptors.
	acceptTm timer
}

// maxFreeBufs bounds the buffers a loop keeps for reuse.
const maxFreeBufs = 128

// newLoop makes a loop on the listening socket lfd, or on a new one bound
// to ap when lfd is -1. The loop owns lfd from here on, even on error.
func newLoop(e *Engine, ap netip.AddrPort, lfd int) (*loop, error) {
	l := &loop{e: e, cfg: &e.cfg, epfd: -1, lfd: -1, efd: -1,
		events: make([]unix.EpollEvent, 256), pool: map[string][]*uconn{},
		scratch: make([]byte, bufSize)}
	var err error
	l.lfd = lfd
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("evloop: epoll_create1: %w", err)
	}
	if l.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.efd = -1
		l.closeFDs()
		return nil, fmt.Errorf("evloop: eventfd: %w", err)
	}
	if l.lfd < 0 {
		if l.lfd, err = listenSocket(ap); err != nil {
			l.lfd = -1
			l.closeFDs()
			unix.Close(l.efd)
			return nil, err
		}
	}
	// The listening socket and the eventfd are told apart by fd; they
	// never enter the fd table.
	for _, fd := range []int{l.lfd, l.efd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			l.closeFDs()
			unix.Close(l.efd)
			return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
		}
	}
	return l, nil
}

func listenSocket(ap netip.AddrPort) (int, error) {
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("evloop: socket: %w", err)
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("evloop: setsockopt: %w", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("evloop: listen %s: %w", ap, err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("evloop: listen %s: %w", ap, err)
	}
	return fd, nil
}

// probePort binds ap without SO_REUSEPORT, which fails when anything
// listens there already.
func probePort(ap netip.AddrPort) error {
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("evloop: socket: %w", err)
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		return fmt.Errorf("evloop: listen %s: %w", ap, err)
	}
	return nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func sockaddrPort(sa unix.Sockaddr) int {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port
	case *unix.SockaddrInet6:
		return sa.Port
	}
	return 0
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// closeFDs closes the loop's own descriptors. The eventfd is left to
// the Engine, which writes to it from other goroutines.
func (l *loop) closeFDs() {
	for _, fd := range []int{l.lfd, l.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	l.lfd, l.epfd = -1, -1
}

func (l *loop) wake() {
	var one = [8]byte{1}
	unix.Write(l.efd, one[:])
}

func (l *loop) tick() {
	l.now = time.Now()
	l.mono = int64(l.now.Sub(l.e.base))
}

func (l *loop) run() error {
	defer l.closeFDs()
	l.tick()
	for {
		n, err := l.epollWait(l.waitMillis())
		if err != nil {
			l.closeAll()
			return fmt.Errorf("evloop: epoll_wait: %w", err)
		}
		l.tick()
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.lfd:
				l.accept()
			case fd == l.efd:
				var b [8]byte
				unix.Read(l.efd, b[:])
				l.checkState()
			case fd < len(l.fds) && l.fds[fd] != nil && l.sockOf(l.fds[fd]).gen == uint32(ev.Pad):
				l.event(l.fds[fd], ev.Events)
				l.settle()
			}
		}
		l.runTimers()
		if l.draining && l.clients == 0 {
			l.closeAll()
			return nil
		}
	}
}

// event and timer run a connection's handlers. A panic there (most
// likely in the Dispatcher) is logged and costs that connection only,
// not the process: net/http behaves the same with a handler's panic.
func (l *loop) event(h handler, ev uint32) {
	defer l.recoverConn(h)
	h.onEvent(ev)
}

func (l *loop) timer(h handler) {
	defer l.recoverConn(h)
	h.onTimer()
}

// recoverConn closes the connection whose handler panicked; its state is
// unknown, so the Dispatcher hears nothing more of its exchange.
func (l *loop) recoverConn(h handler) {
	r := recover()
	if r == nil {
		return
	}
	l.cfg.Logger.Error("panic serving a connection; closing it", "panic", r, "stack", string(debug.Stack()))
	c, _ := h.(*cconn)
	if u, ok := h.(*uconn); ok {
		if c = u.c; c == nil && u.fd >= 0 {
			l.poolRemove(u)
			l.closeSock(&u.sock)
		}
	}
	if c != nil {
		c.dispatched = false
		c.close()
	}
}

func (l *loop) sockOf(h handler) *sock {
	switch h := h.(type) {
	case *cconn:
		return &h.sock
	case *uconn:
		return &h.sock
	}
	panic("evloop: unknown handler")
}

// checkState acts on a Shutdown: stop accepting, close what is idle, let
// the rest finish; or, when forced, close everything.
func (l *loop) checkState() {
	st := l.e.state.Load()
	if st == stateRunning {
		return
	}
	if !l.draining {
		l.draining = true
		l.stopTimer(&l.acceptTm)
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
		unix.Close(l.lfd)
		l.lfd = -1
		l.closeIdleUpstreams()
		for _, h := range l.fds {
			if c, ok := h.(*cconn); ok {
				c.drain()
			}
		}
	}
	if st == stateForced {
		l.closeAll()
	}
}

// closeAll closes every connection, ending in-flight exchanges with an
// error.
func (l *loop) closeAll() {
	l.draining = true
	for _, h := range l.fds {
		switch h := h.(type) {
		case *cconn:
			h.abort(errShutdown, false)
		}
	}
	l.closeIdleUpstreams()
}

var errShutdown = errors.New("evloop: engine shut down")

func (l *loop) accept() {
	// Level-triggered: a bounded batch per event keeps one busy listener
	// from starving the connections already open.
	for i := 0; i < 32; i++ {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// The pending connection stays readable: pause accepting
			// rather than spin on it until descriptors are freed.
			l.cfg.Logger.Error("accept failed; pausing accepts", "error", err)
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
			l.setTimer(&l.acceptTm, acceptPause)
			return
		case unix.ECONNABORTED, unix.EINTR:
			continue
		case unix.EAGAIN:
			return
		default:
			l.cfg.Logger.Error("accept failed", "error", err)
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &cconn{l: l}
		c.req.RemoteAddr = addrPort(sa)
		c.fd = fd
		c.tm.h = c
		if err := l.register(&c.sock, c, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
			l.cfg.Logger.Error("epoll_ctl failed", "error", err)
			unix.Close(fd)
			continue
		}
		l.clients++
		if l.cfg.ConnState != nil {
			l.cfg.ConnState(true)
		}
		d := l.cfg.HeaderTimeout
		if l.cfg.IdleTimeout < d {
			d = l.cfg.IdleTimeout
		}
		l.setTimer(&c.tm, d)
	}
}

// acceptPause is how long a loop stops accepting after running out of
// descriptors or memory.
const acceptPause = 100 * time.Millisecond

func (l *loop) resumeAccept() {
	if l.lfd < 0 {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lfd)}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lfd, &ev)
}

func (l *loop) register(s *sock, h handler, mask uint32) error {
	l.gen++
	s.gen = l.gen
	s.mask = mask
	ev := unix.EpollEvent{Events: mask, Fd: int32(s.fd), Pad: int32(s.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return err
	}
	for s.fd >= len(l.fds) {
		l.fds = append(l.fds, nil)
	}
	l.fds[s.fd] = h
	return nil
}

// setMask changes the events s is registered for, if they differ.
func (l *loop) setMask(s *sock, mask uint32) {
	if s.mask == mask || s.gone {
		return
	}
	s.mask = mask
	ev := unix.EpollEvent{Events: mask, Fd: int32(s.fd), Pad: int32(s.gen)}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev)
}

// unregister takes s out of epoll when the peer is gone (RDHUP, HUP or
// ERR, which level-triggered epoll would report again and again) while
// the engine cannot read it yet.
func (l *loop) unregister(s *sock) {
	if !s.gone {
		s.gone = true
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	}
}

func (l *loop) closeSock(s *sock) {
	l.stopTimer(&s.tm)
	unix.Close(s.fd)
	l.fds[s.fd] = nil
	s.fd = -1
	s.r, s.w = 0, 0
	l.putBuf(s)
}

// getBuf gives s a read buffer if it has none: the scratch buffer if it
// is free, else one of its own.
func (l *loop) getBuf(s *sock) {
	if s.rbuf != nil {
		return
	}
	if l.scratchOwner == nil {
		s.rbuf, l.scratchOwner = l.scratch, s
		return
	}
	s.rbuf = l.newBuf()
}

func (l *loop) newBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, bufSize)
}

// putBuf returns s's buffer to the loop when it holds nothing.
func (l *loop) putBuf(s *sock) {
	if s.rbuf == nil || s.r < s.w {
		return
	}
	if l.scratchOwner == s {
		l.scratchOwner = nil
	} else if len(l.free) < maxFreeBufs {
		l.free = append(l.free, s.rbuf)
	}
	s.rbuf, s.r, s.w = nil, 0, 0
}

// settle takes the scratch buffer back after an event, moving what its
// borrower still holds (a partial head, body bytes the other side has
// not taken, pipelined requests) to a buffer of its own.
func (l *loop) settle() {
	s := l.scratchOwner
	if s == nil {
		return
	}
	l.scratchOwner = nil
	if s.r == s.w {
		s.rbuf, s.r, s.w = nil, 0, 0
		return
	}
	b := l.newBuf()
	s.w = copy(b, s.rbuf[s.r:s.w])
	s.r = 0
	s.rbuf = b
}

// read does one read into s's buffer. It returns the bytes read; 0 with a
// nil error means the socket had nothing (EAGAIN) or the buffer is full,
// and s.eof is set when the peer closed.
func (l *loop) read(s *sock) (int, error) {
	l.getBuf(s)
	if s.r == s.w {
		s.r, s.w = 0, 0
	} else if s.r > 0 && s.w == len(s.rbuf) {
		s.w = copy(s.rbuf, s.rbuf[s.r:s.w])
		s.r = 0
	}
	if s.w == len(s.rbuf) {
		return 0, nil
	}
	n, err := sysRead(s.fd, s.rbuf[s.w:])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0:
		s.eof = true
	}
	s.w += n
	return n, nil
}

// send writes a then b to fd with one system call, returning how much of
// them it wrote. EAGAIN is not an error: it writes 0.
func (l *loop) send(fd int, a, b []byte) (int, error) {
	var n int
	var err error
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0, nil
	case len(a) == 0:
		n, err = sysWrite(fd, b)
	case len(b) == 0:
		n, err = sysWrite(fd, a)
	default:
		l.iov[0].Base, l.iov[0].Len = &a[0], uint64(len(a))
		l.iov[1].Base, l.iov[1].Len = &b[0], uint64(len(b))
		n, err = sysWritev(fd, &l.iov)
		// Do not keep the buffers reachable from the loop.
		l.iov[0].Base, l.iov[1].Base = nil, nil
	}
	if err == unix.EAGAIN || err == unix.EINTR {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// flush writes hdr[*hoff:] and then the *avail bytes at src's read
// position to fd, consuming what was written (src and avail may be nil).
// It reports whether everything went out.
func (l *loop) flush(fd int, hdr []byte, hoff *int, src *sock, avail *int) (bool, error) {
	a := hdr[*hoff:]
	var b []byte
	if avail != nil && *avail > 0 {
		b = src.rbuf[src.r : src.r+*avail]
	}
	if len(a) == 0 && len(b) == 0 {
		return true, nil
	}
	n, err := l.send(fd, a, b)
	if err != nil {
		return false, err
	}
	if n < len(a) {
		*hoff += n
		return false, nil
	}
	*hoff += len(a)
	n -= len(a)
	if n > 0 {
		src.r += n
		*avail -= n
	}
	// A short write means the socket buffer is full: the rest waits for
	// EPOLLOUT rather than for an EAGAIN from another write.
	return n == len(b), nil
}

// Timers. A timer's pos is its heap index plus one, 0 when not queued.

func (l *loop) setTimer(t *timer, d time.Duration) {
	when := l.mono + int64(d)
	t.when = when
	if t.pos > 0 {
		if when < t.key {
			t.key = when
			l.up(t.pos - 1)
		}
		return
	}
	t.key = when
	l.heap = append(l.heap, t)
	t.pos = len(l.heap)
	l.up(t.pos - 1)
}

func (l *loop) stopTimer(t *timer) {
	t.when = 0
	if t.pos > 0 {
		l.removeTimer(t.pos - 1)
	}
}

func (l *loop) removeTimer(i int) {
	t := l.heap[i]
	last := len(l.heap) - 1
	if i != last {
		l.heap[i] = l.heap[last]
		l.heap[i].pos = i + 1
	}
	l.heap[last] = nil
	l.heap = l.heap[:last]
	if i != last {
		l.down(i)
		l.up(i)
	}
	t.pos = 0
}

func (l *loop) up(i int) {
	h := l.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= h[i].key {
			break
		}
		h[p], h[i] = h[i], h[p]
		h[p].pos, h[i].pos = p+1, i+1
		i = p
	}
}

func (l *loop) down(i int) {
	h := l.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].key < h[c].key {
			c++
		}
		if h[i].key <= h[c].key {
			return
		}
		h[i], h[c] = h[c], h[i]
		h[i].pos, h[c].pos = i+1, c+1
		i = c
	}
}

func (l *loop) runTimers() {
	for len(l.heap) > 0 {
		t := l.heap[0]
		if t.key > l.mono {
			return
		}
		if t.when > l.mono {
			t.key = t.when
			l.down(0)
			continue
		}
		l.removeTimer(0)
		switch {
		case t.when == 0:
		case t == &l.acceptTm:
			t.when = 0
			l.resumeAccept()
		default:
			t.when = 0
			l.timer(t.h)
		}
	}
}

// waitMillis is epoll_wait's timeout: until the earliest deadline.
func (l *loop) waitMillis() int {
	if len(l.heap) == 0 {
		return -1
	}
	d := l.heap[0].key - int64(time.Since(l.e.base))
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}
