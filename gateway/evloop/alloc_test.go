//go:build linux

package evloop

import (
	"bufio"
	"bytes"

	"net"
	"testing"
	"time"
)

// fixedTarget answers every request with the same small response, without
// allocating per request, so that allocation counts are the engine's.
func fixedTarget(t testing.TB) string {
	return rawTarget(t, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 4096)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
		for {
			// Requests from the test Dispatcher end with an empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// roundTrip sends req on c and reads the fixed response into buf.
func roundTrip(tb testing.TB, c net.Conn, req, buf []byte) {
	if _, err := c.Write(req); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nok\n")) {
		m, err := c.Read(buf[n:])
		if err != nil {
			tb.Fatal(err)
		}
		n += m
	}
}

var proxyReq = []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")

func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("timing-sensitive")
	}
	d := newDispatcher(fixedTarget(t))
	d.quiet = true
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, _ := dialRaw(t, e)
	buf := make([]byte, 4096)
	for i := 0; i < 100; i++ {
		roundTrip(t, c, proxyReq, buf)
	}
	// AllocsPerRun counts every goroutine's allocations: the client's,
	// the target's and the engine's together.
	allocs := testing.AllocsPerRun(2000, func() { roundTrip(t, c, proxyReq, buf) })
	t.Logf("%.3f allocations per proxied request (client, target and engine)", allocs)
	if allocs > 0.1 {
		t.Fatalf("%.3f allocations per request on the keep-alive path", allocs)
	}
}

func BenchmarkProxyKeepAlive(b *testing.B) {
	d := newDispatcher(fixedTarget(b))
	d.quiet = true
	e := startEngine(b, d, func(c *Config) { c.Loops = 1 })
	c, _ := dialRaw(b, e)
	c.SetDeadline(time.Time{})
	buf := make([]byte, 4096)
	roundTrip(b, c, proxyReq, buf)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(b, c, proxyReq, buf)
	}
}
