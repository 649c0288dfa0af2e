package devdomain

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// reservePort turns an address with port 0 into one with a port of its
// own, held until release: the port is bound (with SO_REUSEADDR) but never
// listened on, which keeps the kernel from handing it to any other bind to
// port 0 or outgoing connection, while a gateway told to listen there can
// (Go's listeners set SO_REUSEADDR), again after each restart. An address
// with a port is returned as it is.
func reservePort(addr string) (string, func(), error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, func() {}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Is4() {
		return "", nil, fmt.Errorf("address %q: port 0 needs an IPv4 address to choose a port on", addr)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("reserve a port on %s: %w", host, err)
	}
	release := func() { syscall.Close(fd) }
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		release()
		return "", nil, fmt.Errorf("reserve a port on %s: %w", host, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ip.As4()}); err != nil {
		release()
		return "", nil, fmt.Errorf("reserve a port on %s: %w", host, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		release()
		return "", nil, fmt.Errorf("reserve a port on %s: %w", host, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)), release, nil
}

// reserveGossipPort is reservePort for a gossip address, which memberlist
// binds for TCP and UDP. The TCP side is held; the UDP side cannot be
// (memberlist's UDP socket would not share the port), so the port chosen
// is one free for UDP too at the time, which only a UDP socket binding
// port 0 in the meantime could take.
func reserveGossipPort(addr string) (string, func(), error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
		return addr, func() {}, nil
	}
	for range 20 {
		held, release, err := reservePort(addr)
		if err != nil {
			return "", nil, err
		}
		u, err := net.ListenPacket("udp", held)
		if err == nil {
			u.Close()
			return held, release, nil
		}
		release()
	}
	return "", nil, fmt.Errorf("address %s: no port free for both TCP and UDP", addr)
}
