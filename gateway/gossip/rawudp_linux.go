//go:build linux

package gossip

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The UDP socket is nonblocking, so its recvfrom and sendto return at
// once: they go through RawSyscall, which skips the scheduler's syscall
// bookkeeping. Through the net package, each of them (two reads and one
// write per datagram) woke the runtime's monitor thread, sysmon, from its
// sleep, the larger part of an idle gateway's CPU (bench/README.md).
type rawUDP struct {
	rc    syscall.RawConn
	inet6 bool // an AF_INET6 socket, which takes IPv4 addresses mapped

	// The state of the one reader's call, and of each writer's (from
	// writes), bound once: a closure made per datagram costs allocations.
	read   rawRead
	writes sync.Pool
}

type rawRead struct {
	buf  []byte
	n    int
	from netip.AddrPort
	err  error
	rsa  unix.RawSockaddrAny
	fn   func(fd uintptr) bool
}

type rawWrite struct {
	b     []byte
	sa    unsafe.Pointer
	salen uintptr
	sa4   unix.RawSockaddrInet4
	sa6   unix.RawSockaddrInet6
	err   error
	fn    func(fd uintptr) bool
}

func newRawUDP(c *net.UDPConn) (*rawUDP, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	u := &rawUDP{rc: rc, inet6: domain == unix.AF_INET6}
	u.read.fn = u.read.recv
	u.writes.New = func() any {
		w := &rawWrite{}
		w.fn = w.send
		return w
	}
	return u, nil
}

// readFrom reads one datagram into buf, waiting for one if none is there.
// One goroutine reads.
func (u *rawUDP) readFrom(buf []byte) (int, netip.AddrPort, error) {
	r := &u.read
	r.buf, r.n, r.from, r.err = buf, 0, netip.AddrPort{}, nil
	if err := u.rc.Read(r.fn); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return r.n, r.from, r.err
}

func (r *rawRead) recv(fd uintptr) bool {
	var n uintptr
	var e syscall.Errno
	for {
		l := uint32(unsafe.Sizeof(r.rsa))
		n, _, e = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.buf))), uintptr(len(r.buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&r.rsa)), uintptr(unsafe.Pointer(&l)))
		// A signal (the runtime's preemption) is no reason to wait: the
		// poller is edge-triggered, and a datagram already there would
		// wait for the next one.
		if e != unix.EINTR {
			break
		}
	}
	switch e {
	case unix.EAGAIN:
		return false // wait until readable
	case 0:
		r.n, r.from = int(n), addrPortOf(&r.rsa)
	default:
		r.err = e
	}
	return true
}

// writeTo sends b to ap, waiting while the socket's buffer is full.
func (u *rawUDP) writeTo(b []byte, ap netip.AddrPort) error {
	w := u.writes.Get().(*rawWrite)
	defer u.writes.Put(w)
	addr := ap.Addr()
	if u.inet6 {
		w.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.As16()}
		putPort(&w.sa6.Port, ap.Port())
		w.sa, w.salen = unsafe.Pointer(&w.sa6), unsafe.Sizeof(w.sa6)
	} else {
		if !addr.Unmap().Is4() {
			return &net.AddrError{Err: "an IPv6 address on an IPv4 socket", Addr: ap.String()}
		}
		w.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.Unmap().As4()}
		putPort(&w.sa4.Port, ap.Port())
		w.sa, w.salen = unsafe.Pointer(&w.sa4), unsafe.Sizeof(w.sa4)
	}
	w.b, w.err = b, nil
	err := u.rc.Write(w.fn)
	w.b = nil
	if err != nil {
		return err
	}
	return w.err
}

func (w *rawWrite) send(fd uintptr) bool {
	var e syscall.Errno
	for {
		_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(w.b))), uintptr(len(w.b)),
			unix.MSG_DONTWAIT, uintptr(w.sa), w.salen)
		if e != unix.EINTR {
			break
		}
	}
	switch e {
	case unix.EAGAIN:
		return false // wait until writable
	case 0:
	default:
		w.err = e
	}
	return true
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func addrPortOf(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, getPort(&sa.Port))
	}
	return netip.AddrPort{}
}
