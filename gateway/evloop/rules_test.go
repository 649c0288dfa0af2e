//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// recordingTarget is a raw target that keeps every byte it receives; each
// connection is served by serve, reading through the recording reader.
type recordingTarget struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
}

func (r *recordingTarget) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.Write(p)
}

func (r *recordingTarget) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// waitReceived waits until the target received something containing s.
func (r *recordingTarget) waitReceived(t *testing.T, s string) {
	t.Helper()
	waitfor.Cond(t, 5*time.Second, fmt.Sprintf("the target to receive %q", s), func() (bool, string) {
		got := r.received()
		return strings.Contains(got, s), fmt.Sprintf("it has %q", got)
	})
}

func startRecordingTarget(t *testing.T, serve func(n int, br *bufio.Reader, c net.Conn) bool) *recordingTarget {
	rt := &recordingTarget{}
	rt.addr = rawTarget(t, func(c net.Conn) {
		br := bufio.NewReader(io.TeeReader(c, rt))
		for n := 0; serve(n, br, c); n++ {
		}
	})
	return rt
}

// A body-less POST on a pooled connection that the target closes without
// answering is not sent again: the target may have run it. The Dispatcher
// hears of the failure and the client gets its 502.
func TestKeepAliveRaceNoReplay(t *testing.T) {
	rt := startRecordingTarget(t, func(n int, br *bufio.Reader, c net.Conn) bool {
		req, err := http.ReadRequest(br)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, req.Body)
		if n == 1 {
			return false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	d := newDispatcher(rt.addr)
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	for _, method := range []string{"POST", "PATCH", "GET"} {
		t.Run(method, func(t *testing.T) {
			c, br := dialRaw(t, e)
			io.WriteString(c, "GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, b := readResponse(t, br, "GET"); b != "ok" {
				t.Fatalf("warm: %q", b)
			}
			d.waitDone(t)
			before := len(d.failCalls())
			line := method + " /" + method + " HTTP/1.1\r\n"
			io.WriteString(c, line+"Host: x\r\nContent-Length: 0\r\n\r\n")
			resp, _ := readResponse(t, br, method)
			sent := strings.Count(rt.received(), line)
			fails := len(d.failCalls()) - before
			if method == "GET" {
				if resp.StatusCode != 200 || sent != 2 || fails != 0 {
					t.Fatalf("GET: %d, sent %d times, %d Failed calls; want 200 after one replay", resp.StatusCode, sent, fails)
				}
			} else if resp.StatusCode != 502 || sent != 1 || fails != 1 {
				t.Fatalf("%s: %d, sent %d times, %d Failed calls; want 502, once, 1", method, resp.StatusCode, sent, fails)
			}
			d.waitDone(t)
		})
	}
}

// canonical parses a chunked body that must be canonically framed and
// returns its data.
func canonical(t *testing.T, b string) string {
	t.Helper()
	var data strings.Builder
	for {
		size, rest, ok := strings.Cut(b, "\r\n")
		n := 0
		if _, err := fmt.Sscanf(size, "%x", &n); !ok || err != nil || fmt.Sprintf("%x", n) != size {
			t.Fatalf("size line %q is not canonical in %q", size, b)
		}
		if n == 0 {
			if rest != "\r\n" {
				t.Fatalf("trailers or junk after the last chunk: %q", rest)
			}
			return data.String()
		}
		if len(rest) < n+2 || rest[n:n+2] != "\r\n" {
			t.Fatalf("chunk of %d badly framed: %q", n, rest)
		}
		data.WriteString(rest[:n])
		b = rest[n+2:]
	}
}

// A chunked request body reaches the target re-framed: its data in chunks
// with plain sizes, and none of the client's extensions or trailers, even
// when a chunk's size line arrives in two pieces.
func TestChunkedRequestReframed(t *testing.T) {
	rt := startRecordingTarget(t, func(n int, br *bufio.Reader, c net.Conn) bool {
		req, err := http.ReadRequest(br)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	d := newDispatcher(rt.addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b c\"\r\nabc\r\n1")
	rt.waitReceived(t, "abc")
	io.WriteString(c, "0 ; x\r\n0123456789abcdef\r\n0;end\r\nContent-Length: 99\r\nX-T: v\r\n\r\n"+
		"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, m := range []string{"POST", "GET"} {
		if resp, b := readResponse(t, br, m); resp.StatusCode != 200 || b != "ok" {
			t.Fatalf("%s: %d %q", m, resp.StatusCode, b)
		}
	}
	all := rt.received()
	_, body, _ := strings.Cut(all, "\r\n\r\n")
	body, next, ok := strings.Cut(body, "GET /next ")
	if !ok {
		t.Fatalf("the pipelined request did not follow: %q", all)
	}
	if got := canonical(t, body); got != "abc0123456789abcdef" {
		t.Fatalf("the target got %q", got)
	}
	if strings.Contains(all, "99") || strings.Contains(all, "X-T") || strings.Contains(all, ";") {
		t.Fatalf("the client's framing reached the target: %q", all)
	}
	if !strings.HasPrefix(next, "HTTP/1.1\r\n") {
		t.Fatalf("next request %q", next)
	}
	if r := d.waitDone(t); r.Status != 200 || r.BytesIn != 19 {
		t.Fatalf("result %+v", r)
	}
}

// A chunked body the engine cannot parse is refused mid-way: the target
// sees the head and what was good, never a last chunk, and the client
// gets 400.
func TestChunkedRequestMalformed(t *testing.T) {
	rt := startRecordingTarget(t, func(n int, br *bufio.Reader, c net.Conn) bool {
		_, err := http.ReadRequest(br)
		return err == nil
	})
	d := newDispatcher(rt.addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3 4\r\nxyz\r\n0\r\n\r\n")
	if resp, _ := readResponse(t, br, "POST"); resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("got %d close=%v", resp.StatusCode, resp.Close)
	}
	if got := rt.received(); strings.Contains(got, "xyz") || strings.Contains(got, "0\r\n\r\n") {
		t.Fatalf("the target got %q", got)
	}
}

// Expect: 100-continue is answered by the engine only for a request on its
// way to a target whose body has not started to arrive.
func TestExpectContinueDecidedByDispatch(t *testing.T) {
	var expects atomic.Int64
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Expect") != "" {
			expects.Add(1)
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)

	t.Run("answered locally: final status, no 100", func(t *testing.T) {
		d.setTarget("")
		defer d.setTarget(addr)
		c, br := dialRaw(t, e)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		resp, b := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || b != "local\n" || !resp.Close {
			t.Fatalf("got %d %q close=%v", resp.StatusCode, b, resp.Close)
		}
		d.waitDone(t)
	})

	t.Run("body already sent: no 100", func(t *testing.T) {
		c, br := dialRaw(t, e)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\ndata")
		line, err := br.Peek(12)
		if err != nil || string(line) != "HTTP/1.1 200" {
			t.Fatalf("first bytes %q %v", line, err)
		}
		if _, b := readResponse(t, br, "POST"); b != "got data" {
			t.Fatalf("got %q", b)
		}
		d.waitDone(t)
	})

	t.Run("HTTP/1.0: no 100", func(t *testing.T) {
		c, br := dialRaw(t, e)
		io.WriteString(c, "POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
		// Nothing may arrive before the body is sent: a 100 would.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if b, err := br.Peek(1); err == nil {
			t.Fatalf("%q before the body", b)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "data")
		if _, b := readResponse(t, br, "POST"); b != "got data" {
			t.Fatalf("got %q", b)
		}
		d.waitDone(t)
	})
	if n := expects.Load(); n != 0 {
		t.Fatalf("the target saw Expect %d times", n)
	}
}
