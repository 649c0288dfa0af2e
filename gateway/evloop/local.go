//go:build linux

package evloop

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// appendLocal appends a complete local response built from ex.
func appendLocal(b []byte, ex *Exchange, close, http10, head bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(ex.Status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(ex.Status)...)
	b = append(b, "\r\n"...)
	if ex.ContentType != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, ex.ContentType...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(ex.Body)), 10)
	b = append(b, "\r\n"...)
	b = append(b, ex.ResponseHeaders...)
	switch {
	case close:
		b = append(b, "Connection: close\r\n"...)
	case http10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if !head {
		b = append(b, ex.Body...)
	}
	return b
}

// errorCode is the machine-readable code of an error status, as the proxy
// spells them.
func errorCode(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 431:
		return "request_header_fields_too_large"
	case 501:
		return "not_implemented"
	case 504:
		return "upstream_timeout"
	case 505:
		return "http_version_not_supported"
	}
	return "upstream_failed"
}

// appendErrorJSON appends the gateway's JSON error body.
func appendErrorJSON(b []byte, status int, msg string) []byte {
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"code":`...)
	b = strconv.AppendQuote(b, errorCode(status))
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, msg)
	return append(b, "}}\n"...)
}

// Upstream connections.

// dial starts a nonblocking connection to target. Targets must be IP
// literals: resolving names would block the loop, and the proxy resolves
// its upstreams before they reach the engine.
func (l *loop) dial(target string) (*uconn, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		return nil, fmt.Errorf("evloop: target must be an IP:port, not %q", target)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("evloop: socket: %w", err)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, sockaddr(ap)); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, fmt.Errorf("evloop: connect %s: %w", target, err)
	}
	u := &uconn{l: l, target: target, connecting: true}
	u.fd = fd
	u.tm.h = u
	// Connected or not, EPOLLOUT says when the outcome is known.
	if err := l.register(&u.sock, u, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("evloop: epoll_ctl: %w", err)
	}
	return u, nil
}

// poolGet takes the most recently used idle connection to target.
func (l *loop) poolGet(target string) *uconn {
	list := l.pool[target]
	if len(list) == 0 {
		return nil
	}
	u := list[len(list)-1]
	list[len(list)-1] = nil
	l.pool[target] = list[:len(list)-1]
	return u
}

// poolPut keeps u for reuse, or closes it when the pool is full. An idle
// connection stays registered for EPOLLIN|EPOLLRDHUP: any event on it
// means the target closed it.
func (l *loop) poolPut(u *uconn) {
	list := l.pool[u.target]
	if l.draining || len(list) >= l.cfg.MaxIdlePerTarget {
		l.closeSock(&u.sock)
		return
	}
	l.putBuf(&u.sock)
	l.setMask(&u.sock, unix.EPOLLIN|unix.EPOLLRDHUP)
	l.setTimer(&u.tm, l.cfg.UpstreamIdle)
	l.pool[u.target] = append(list, u)
}

func (l *loop) poolRemove(u *uconn) {
	list := l.pool[u.target]
	for i, v := range list {
		if v == u {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			l.pool[u.target] = list[:len(list)-1]
			return
		}
	}
}

func (l *loop) closeIdleUpstreams() {
	for target, list := range l.pool {
		for _, u := range list {
			l.closeSock(&u.sock)
		}
		delete(l.pool, target)
	}
}
