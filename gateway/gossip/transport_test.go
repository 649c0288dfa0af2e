package gossip

import (
	"bytes"
	"io"
	"log"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The transport's datagrams, sent and received on IPv4, IPv6 and a
// dual-stack socket (bound to every interface, reached over IPv4): the
// bytes arrive whole, and the sender's address is the one to answer to.
func TestTransportDatagrams(t *testing.T) {
	for _, tc := range []struct {
		bind, reach string
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"0.0.0.0", "127.0.0.1"},
		{"::", "127.0.0.1"},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			open := func() *transport {
				tr, err := newTransport(tc.bind, 0, log.New(io.Discard, "", 0))
				if err != nil {
					t.Skipf("bind %s: %v", tc.bind, err)
				}
				t.Cleanup(func() { tr.Shutdown() })
				if runtime.GOOS == "linux" && tr.raw == nil {
					t.Fatal("no raw path on Linux")
				}
				return tr
			}
			a, b := open(), open()
			at := func(tr *transport) string { return net.JoinHostPort(tc.reach, strconv.Itoa(tr.GetAutoBindPort())) }
			for _, msg := range [][]byte{[]byte("ping"), bytes.Repeat([]byte{0xa5}, 1400)} {
				if _, err := a.WriteTo(msg, at(b)); err != nil {
					t.Fatalf("send to %s: %v", at(b), err)
				}
				select {
				case p := <-b.PacketCh():
					if !bytes.Equal(p.Buf, msg) {
						t.Errorf("received %d bytes %.8x…, sent %d bytes %.8x…", len(p.Buf), p.Buf, len(msg), msg)
					}
					if p.From.String() != at(a) {
						t.Errorf("from %s, want %s", p.From, at(a))
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("nothing received in 5 s from %s", at(a))
				}
			}
			if st := a.stats(); st.PacketsSent != 2 {
				t.Errorf("%d packets counted, want 2", st.PacketsSent)
			}
		})
	}
}
