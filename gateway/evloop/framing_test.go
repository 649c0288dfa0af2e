//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestResponseFraming runs canned upstream responses through the engine
// and checks what the client gets and whether both connections live on.
func TestResponseFraming(t *testing.T) {
	canned := map[string]string{
		"/chunked-trailer": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/te-and-cl": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"2\r\nhi\r\n0\r\n\r\n",
		"/hop-by-hop": "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Connection: x\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
		"/target-close": "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"/http10":       "HTTP/1.0 200 OK\r\n\r\nold style",
	}
	var conns atomic.Int64
	addr := rawTarget(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			resp := canned[req.URL.Path]
			io.WriteString(c, resp)
			if strings.Contains(resp, "close") || strings.HasPrefix(resp, "HTTP/1.0") {
				return
			}
		}
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	tests := []struct {
		path        string
		body        string
		clientClose bool // the engine closes the client connection after
		newUpstream bool // the next request needs a new upstream connection
		check       func(t *testing.T, r *http.Response)
	}{
		{"/chunked-trailer", "hello world", false, false, func(t *testing.T, r *http.Response) {
			if r.Trailer.Get("X-Sum") != "42" {
				t.Fatalf("trailer %v", r.Trailer)
			}
		}},
		{"/te-and-cl", "hi", false, true, nil},
		{"/hop-by-hop", "ok", false, false, func(t *testing.T, r *http.Response) {
			for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Connection"} {
				if v := r.Header.Get(h); v != "" {
					t.Fatalf("%s: %s reached the client", h, v)
				}
			}
			if r.Header.Get("X-Kept") != "yes" {
				t.Fatalf("header lost: %v", r.Header)
			}
		}},
		{"/target-close", "ok", false, true, nil},
		{"/http10", "old style", true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c, br := dialRaw(t, e)
			before := conns.Load()
			io.WriteString(c, "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, b := readResponse(t, br, "GET")
			if b != tt.body || resp.Header.Get("X-Gw") != "1" {
				t.Fatalf("got %q, header %v", b, resp.Header)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
			if r := d.waitDone(t); r.Err != nil || r.Status != 200 {
				t.Fatalf("result %+v", r)
			}
			if tt.clientClose {
				if !resp.Close {
					t.Fatal("no Connection: close")
				}
				expectClosed(t, br)
				return
			}
			if resp.Close {
				t.Fatal("client connection not kept alive")
			}
			io.WriteString(c, "GET /hop-by-hop HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, b := readResponse(t, br, "GET"); b != "ok" {
				t.Fatalf("second request: %q", b)
			}
			d.waitDone(t)
			opened := conns.Load() - before
			if tt.newUpstream != (opened > 0) && before > 0 {
				t.Fatalf("%d new upstream connections", opened)
			}
		})
	}
}

// TestSlowClientTargetGone has the target send a large close-delimited
// body and close while the client is not reading: the rest must still be
// delivered from the socket after the target is gone.
func TestSlowClientTargetGone(t *testing.T) {
	// Sized so that, with Linux's default buffer autotuning, the target's
	// FIN usually arrives while the engine still holds data the client
	// has not taken; the outcome is checked either way.
	const size = 8 << 20
	addr := rawTarget(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
		io.CopyN(c, &pattern{}, size)
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	c.(*net.TCPConn).SetReadBuffer(128 << 10)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(300 * time.Millisecond)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	if r := d.waitDone(t); r.Err != nil || r.BytesOut != size {
		t.Fatalf("result %+v", r)
	}
}

func TestInterimResponses(t *testing.T) {
	addr := rawTarget(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	for _, tt := range []struct {
		version string
		want    string
	}{
		{"HTTP/1.1", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Gw: 1\r\n\r\nok"},
		{"HTTP/1.0", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Gw: 1\r\nConnection: close\r\n\r\nok"},
	} {
		c, br := dialRaw(t, e)
		io.WriteString(c, "GET / "+tt.version+"\r\nHost: x\r\n\r\n")
		got := make([]byte, len(tt.want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != tt.want {
			t.Fatalf("%s: got %q, %v", tt.version, got, err)
		}
		if r := d.waitDone(t); r.Status != 200 {
			t.Fatalf("result %+v", r)
		}
	}
}

func TestChunkedToHTTP10Client(t *testing.T) {
	var conns atomic.Int64
	addr := rawTarget(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n")
		}
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	for _, v := range []string{"1.0", "1.0", "1.1"} {
		c, br := dialRaw(t, e)
		io.WriteString(c, "GET / HTTP/"+v+"\r\nHost: x\r\n\r\n")
		resp, b := readResponse(t, br, "GET")
		if b != "hello world" {
			t.Fatalf("HTTP/%s: body %q", v, b)
		}
		if v == "1.0" && (len(resp.TransferEncoding) != 0 || !resp.Close) {
			t.Fatalf("HTTP/1.0: Transfer-Encoding %v, close %v", resp.TransferEncoding, resp.Close)
		}
		if v == "1.0" {
			expectClosed(t, br)
		}
		if r := d.waitDone(t); r.Err != nil || r.BytesOut != 11 && v == "1.0" {
			t.Fatalf("result %+v", r)
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("target saw %d connections", conns.Load())
	}
}

func TestLargeChunkedToHTTP10Client(t *testing.T) {
	const size = 8 << 20
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := &pattern{}
		buf := make([]byte, 70000)
		for n := 0; n < size; {
			k := min(size-n, 1+n%len(buf))
			src.Read(buf[:k])
			w.Write(buf[:k])
			w.(http.Flusher).Flush() // one chunk per write
			n += k
		}
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || len(resp.TransferEncoding) != 0 {
		t.Fatalf("%v, Transfer-Encoding %v", err, resp.TransferEncoding)
	}
	want := make([]byte, size)
	(&pattern{}).Read(want)
	if !bytes.Equal(got, want) {
		t.Fatalf("body differs (%d bytes, want %d): %.100q", len(got), size, got)
	}
}
