package gossip

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// Stats counts what a member sent on the wire since it started: gossip,
// probes, acks and push/pull exchanges, after encryption (what the
// network carries, memberlist's label and encryption overhead included,
// IP/UDP/TCP headers not).
type Stats struct {
	// PacketsSent and PacketBytesSent are the UDP datagrams sent.
	PacketsSent     uint64 `json:"packets_sent"`
	PacketBytesSent uint64 `json:"packet_bytes_sent"`
	// StreamsOpened counts TCP connections, both the ones this member
	// dialled and the ones it accepted; StreamBytesSent is what it wrote on
	// them (push/pull, joins, TCP fallback pings, user messages).
	StreamsOpened   uint64 `json:"streams_opened"`
	StreamBytesSent uint64 `json:"stream_bytes_sent"`
}

// BytesSent is every byte sent, UDP and TCP.
func (s Stats) BytesSent() uint64 { return s.PacketBytesSent + s.StreamBytesSent }

// Sizes of the UDP socket. A datagram is read into one buffer of the
// largest size and copied out at its own size: memberlist's own transport
// allocates a fresh 64 KiB buffer for every datagram, and in a group of
// ten that garbage (probes, acks, gossip) made a collection every two
// seconds of an idle gateway and one or two per deployment, the larger
// part of the gateways' CPU (bench/README.md).
const (
	maxPacketRead  = 65536
	udpRecvBufSize = 2 << 20
)

// transport carries memberlist's packets (UDP) and streams (TCP) on one
// port, and counts what it writes on both, so that the gossip overhead
// can be measured and exported.
type transport struct {
	udp    *net.UDPConn
	raw    *rawUDP // udp's descriptor, for reads and writes that skip the scheduler
	tcp    *net.TCPListener
	port   int
	logger *log.Logger

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	stopped  atomic.Bool
	wg       sync.WaitGroup

	packets     atomic.Uint64
	packetBytes atomic.Uint64
	streams     atomic.Uint64
	streamBytes atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

// newTransport binds TCP and UDP on ip:port. Port 0 picks a free port;
// since UDP must then get the one TCP got, a port taken between the two
// binds is tried again with another.
func newTransport(ip string, port int, logger *log.Logger) (*transport, error) {
	bindIP := net.ParseIP(ip)
	if bindIP == nil {
		return nil, fmt.Errorf("bind: %q is not an IP address", ip)
	}
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var t *transport
		if t, err = bind(bindIP, port, logger); err == nil {
			t.wg.Add(2)
			go t.readPackets()
			go t.acceptStreams()
			return t, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("bind %s: %w", net.JoinHostPort(ip, fmt.Sprint(port)), err)
}

func bind(ip net.IP, port int, logger *log.Logger) (*transport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, err
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, err
	}
	// A large receive buffer rides out bursts (a deployment's gossip);
	// what the kernel grants is enough otherwise.
	for size := udpRecvBufSize; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	// Without the raw path (not Linux) the net package's serves.
	raw, _ := newRawUDP(udp)
	return &transport{
		udp: udp, raw: raw, tcp: tcp, port: port, logger: logger,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}, nil
}

// GetAutoBindPort is the port bound, the one picked for port 0.
func (t *transport) GetAutoBindPort() int { return t.port }

// FinalAdvertiseAddr is the address the member gives the others: the one
// configured, else the bound IP, else (bound to every interface) a
// private IP of the host.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	bound := t.tcp.Addr().(*net.TCPAddr).IP
	if !bound.IsUnspecified() {
		return bound, t.port, nil
	}
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("find a private IP address to advertise: %w", err)
	}
	a := net.ParseIP(private)
	if a == nil {
		return nil, 0, errors.New("no private IP address to advertise: give one")
	}
	return a, t.port, nil
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	// Members' addresses are "IP:port" literals, parsed without the
	// allocations and resolver path of net.ResolveUDPAddr (a probe or an
	// ack is sent five times a second each way).
	var err error
	if ap, perr := netip.ParseAddrPort(addr); perr == nil && t.raw != nil && ap.Addr().Zone() == "" {
		err = t.raw.writeTo(b, ap)
	} else if perr == nil {
		_, err = t.udp.WriteToUDPAddrPort(b, ap)
	} else {
		var ua *net.UDPAddr
		if ua, err = net.ResolveUDPAddr("udp", addr); err != nil {
			return time.Time{}, err
		}
		_, err = t.udp.WriteTo(b, ua)
	}
	if err == nil {
		t.packets.Add(1)
		t.packetBytes.Add(uint64(len(b)))
	}
	return time.Now(), err
}

func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	t.streams.Add(1)
	return &countingConn{Conn: c, n: &t.streamBytes}, nil
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes both sockets and waits for their goroutines.
func (t *transport) Shutdown() error {
	if !t.stopped.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacketRead)
	for {
		n, from, err := t.read(buf)
		at := time.Now()
		if err != nil {
			if t.stopped.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: read a UDP packet: %v", err)
			continue
		}
		if n == 0 {
			continue
		}
		p := &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: at}
		select {
		case t.packetCh <- p:
		case <-t.done:
			return
		}
	}
}

// read reads one datagram into buf.
func (t *transport) read(buf []byte) (int, net.Addr, error) {
	if t.raw == nil {
		return t.udp.ReadFromUDP(buf)
	}
	n, from, err := t.raw.readFrom(buf)
	return n, net.UDPAddrFromAddrPort(from), err
}

func (t *transport) acceptStreams() {
	defer t.wg.Done()
	const minDelay, maxDelay = 5 * time.Millisecond, time.Second
	delay := time.Duration(0)
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.stopped.Load() {
				return
			}
			// Out of file descriptors, say: wait rather than spin.
			delay = min(max(2*delay, minDelay), maxDelay)
			t.logger.Printf("[ERR] memberlist: accept a TCP connection: %v", err)
			select {
			case <-time.After(delay):
			case <-t.done:
				return
			}
			continue
		}
		delay = 0
		t.streams.Add(1)
		select {
		case t.streamCh <- &countingConn{Conn: c, n: &t.streamBytes}:
		case <-t.done:
			c.Close()
			return
		}
	}
}

func (t *transport) stats() Stats {
	return Stats{
		PacketsSent:     t.packets.Load(),
		PacketBytesSent: t.packetBytes.Load(),
		StreamsOpened:   t.streams.Load(),
		StreamBytesSent: t.streamBytes.Load(),
	}
}

type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(uint64(n))
	return n, err
}
