package measure

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ConnectedTo says whether process pid holds an ESTABLISHED TCP
// connection to addr ("127.0.0.1:8090", IPv4): its socket inodes
// (/proc/<pid>/fd) looked up in /proc/<pid>/net/tcp, which lists the
// whole network namespace. It is the kernel's view: the connection is
// open, whatever was said over it.
func ConnectedTo(pid int, addr string) (bool, error) {
	remote, err := procNetAddr(addr)
	if err != nil {
		return false, err
	}
	mine, err := socketInodes(pid)
	if err != nil {
		return false, err
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[2] == remote && fields[3] == "01" && mine[fields[9]] {
			return true, nil
		}
	}
	return false, sc.Err()
}

// socketInodes returns the inodes of process pid's sockets.
func socketInodes(pid int) (map[string]bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	return mine, nil
}

// procNetAddr writes an IPv4 address and port as /proc/net/tcp does:
// the address as a 32-bit number in the machine's order (little endian
// on every machine this runs on), the port in big hex.
func procNetAddr(addr string) (string, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return "", fmt.Errorf("%q: want an IPv4 address and port", addr)
	}
	ip := ap.Addr().As4()
	return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(ip[:]), ap.Port()), nil
}
