package gossip

import (
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// countingTransport is memberlist's NetTransport with counters: it counts
// what is written, on datagrams and on both ends of streams, so that the
// gossip overhead can be measured and exported. Accepted streams are
// relayed through a channel of its own to wrap them.
type countingTransport struct {
	*memberlist.NetTransport

	packets     atomic.Uint64
	packetBytes atomic.Uint64
	streams     atomic.Uint64
	streamBytes atomic.Uint64

	streamCh chan net.Conn
	done     chan struct{}
	stopOnce sync.Once
	relayed  sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

// newCountingTransport binds UDP and TCP on ip:port. Port 0 picks a free
// port; since TCP and UDP must then get the same one, a port taken between
// the two binds is retried, as memberlist does itself.
func newCountingTransport(ip string, port int, logger *log.Logger) (*countingTransport, error) {
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var (
		nt  *memberlist.NetTransport
		err error
	)
	for range attempts {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", net.JoinHostPort(ip, fmt.Sprint(port)), err)
	}
	t := &countingTransport{
		NetTransport: nt,
		streamCh:     make(chan net.Conn),
		done:         make(chan struct{}),
	}
	t.relayed.Add(1)
	go t.relay()
	return t, nil
}

func (t *countingTransport) relay() {
	defer t.relayed.Done()
	in := t.NetTransport.StreamCh()
	for {
		select {
		case c := <-in:
			t.streams.Add(1)
			select {
			case t.streamCh <- &countingConn{Conn: c, n: &t.streamBytes}:
			case <-t.done:
				_ = c.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *countingTransport) sent(n int, err error) {
	if err == nil {
		t.packets.Add(1)
		t.packetBytes.Add(uint64(n))
	}
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	at, err := t.NetTransport.WriteTo(b, addr)
	t.sent(len(b), err)
	return at, err
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	at, err := t.NetTransport.WriteToAddress(b, a)
	t.sent(len(b), err)
	return at, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dialed(t.NetTransport.DialTimeout(addr, timeout))
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.dialed(t.NetTransport.DialAddressTimeout(a, timeout))
}

func (t *countingTransport) dialed(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	t.streams.Add(1)
	return &countingConn{Conn: c, n: &t.streamBytes}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes the listeners (which waits for their goroutines, while
// the relay still hands their last connections on), then the relay.
func (t *countingTransport) Shutdown() error {
	err := t.NetTransport.Shutdown()
	t.stopOnce.Do(func() { close(t.done) })
	t.relayed.Wait()
	return err
}

func (t *countingTransport) stats() Stats {
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
