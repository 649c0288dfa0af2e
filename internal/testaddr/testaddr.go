package testaddr

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Dead returns a loopback address that refuses connections for the whole
// test: its port is bound but never listened on, and nothing else can
// bind it (no SO_REUSEADDR).
func Dead(t testing.TB) string {
	t.Helper()
	return hold(t, "127.0.0.1", false)
}

// Reserved returns an address on the IPv4 address ip whose port is kept
// for the test: bound with SO_REUSEADDR and never listened on until the
// test ends. A process the test starts can listen there (Go's listeners,
// and most servers', set SO_REUSEADDR), and again after a restart; nobody
// else's port 0 or outgoing connection gets it meanwhile.
func Reserved(t testing.TB, ip string) string {
	t.Helper()
	return hold(t, ip, true)
}

// ReservedPort is Reserved on 127.0.0.1, as a port number.
func ReservedPort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(Reserved(t, "127.0.0.1"))
	n, _ := strconv.Atoi(port)
	return n
}

func hold(t testing.TB, ip string, reuse bool) string {
	t.Helper()
	parsed := net.ParseIP(ip).To4()
	if parsed == nil {
		t.Fatalf("hold a port on %q: not an IPv4 address", ip)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("hold a port on %s: %v", ip, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			t.Fatalf("hold a port on %s: %v", ip, err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte(parsed)}); err != nil {
		t.Fatalf("hold a port on %s: %v", ip, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("hold a port on %s: %v", ip, err)
	}
	return net.JoinHostPort(ip, strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
