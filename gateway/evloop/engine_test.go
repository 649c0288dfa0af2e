//go:build linux

package evloop

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

func TestKeepAliveReuse(t *testing.T) {
	addr, conns := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	cl := httpClient()
	for i := 0; i < 50; i++ {
		resp, err := cl.Get(fmt.Sprintf("http://%s/p%d", e.Addr(), i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("hello /p%d from 127.0.0.1", i); string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, b, want)
		}
		if r := d.waitDone(t); r.Status != 200 || r.Err != nil || r.BytesOut != int64(len(b)) {
			t.Fatalf("result %+v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("target saw %d connections, want 1", n)
	}
}

func TestBodies(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		switch r.URL.Path {
		case "/chunked":
			// Flushing before the end makes net/http send chunks.
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			w.Write(b[len(b)/2:])
		case "/empty":
			w.WriteHeader(204)
		case "/notmodified":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
			w.Write(b)
		}
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	cl := httpClient()
	body := strings.Repeat("abcdefghij", 10000)
	tests := []struct {
		name, path string
		body       io.Reader
		length     int64
		wantStatus int
		wantBody   string
		wantTE     string
	}{
		{"content-length", "/echo", strings.NewReader(body), int64(len(body)), 200, body, ""},
		{"chunked request", "/echo", io.MultiReader(strings.NewReader(body)), -1, 200, body, "chunked"},
		{"chunked response", "/chunked", strings.NewReader(body), int64(len(body)), 200, body, ""},
		{"204", "/empty", nil, 0, 204, "", ""},
		{"304", "/notmodified", nil, 0, 304, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+e.Addr().String()+tt.path, tt.body)
			req.ContentLength = tt.length
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || string(b) != tt.wantBody {
				t.Fatalf("got %d, %d bytes", resp.StatusCode, len(b))
			}
			if te := resp.Header.Get("X-TE"); te != tt.wantTE {
				t.Fatalf("target saw Transfer-Encoding %q, want %q", te, tt.wantTE)
			}
			if tt.path == "/chunked" && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
				t.Fatalf("response Transfer-Encoding %v", resp.TransferEncoding)
			}
			r := d.waitDone(t)
			if r.Status != tt.wantStatus || r.Err != nil {
				t.Fatalf("result %+v", r)
			}
			if tt.body != nil && tt.length >= 0 && r.BytesIn != tt.length {
				t.Fatalf("BytesIn %d, want %d", r.BytesIn, tt.length)
			}
		})
	}
}

func TestHead(t *testing.T) {
	addr, conns := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		if r.Method != "HEAD" {
			w.Write(make([]byte, 100))
		}
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	c, br := dialRaw(t, e)
	for _, m := range []string{"HEAD", "GET", "HEAD"} {
		fmt.Fprintf(c, "%s / HTTP/1.1\r\nHost: x\r\n\r\n", m)
		resp, b := readResponse(t, br, m)
		if resp.StatusCode != 200 || resp.ContentLength != 100 || m == "GET" && len(b) != 100 {
			t.Fatalf("%s: %d %d %d", m, resp.StatusCode, resp.ContentLength, len(b))
		}
	}
	if conns.Load() != 1 {
		t.Fatalf("target saw %d connections", conns.Load())
	}
}

func TestCloseDelimitedResponse(t *testing.T) {
	addr := rawTarget(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nX-A: b\r\n\r\nuntil the end")
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, b := readResponse(t, br, "GET")
	if b != "until the end" || !resp.Close || resp.Header.Get("X-A") != "b" {
		t.Fatalf("got %q close=%v %v", b, resp.Close, resp.Header)
	}
	expectClosed(t, br)
	if r := d.waitDone(t); r.Status != 200 || r.Err != nil || r.BytesOut != 13 {
		t.Fatalf("result %+v", r)
	}
}

func TestPipelined(t *testing.T) {
	addr, conns := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, want := range []string{"GET /1 ", "POST /2 hello", "POST /3 abc", "GET /4 "} {
		_, b := readResponse(t, br, "GET")
		if b != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	expectClosed(t, br)
	if conns.Load() != 1 {
		t.Fatalf("target saw %d connections", conns.Load())
	}
}

func TestHeadInPieces(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Long"))
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	c, br := dialRaw(t, e)
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("y", 3000) + "\r\n\r\n"
	for i := 0; i < len(head); i += 700 {
		io.WriteString(c, head[i:min(i+700, len(head))])
		time.Sleep(5 * time.Millisecond)
	}
	if _, b := readResponse(t, br, "GET"); len(b) != 3000 {
		t.Fatalf("got %d bytes", len(b))
	}
}

func TestExpectContinue(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("interim: %q %v", line, err)
	}
	if line, _ = br.ReadString('\n'); line != "\r\n" {
		t.Fatalf("interim head: %q", line)
	}
	io.WriteString(c, "data")
	if resp, b := readResponse(t, br, "POST"); resp.StatusCode != 200 || b != "got data" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	if r := d.waitDone(t); r.Status != 200 || r.BytesIn != 4 {
		t.Fatalf("result %+v", r)
	}
}

func TestLocalResponse(t *testing.T) {
	d := newDispatcher("")
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n")
	if resp, b := readResponse(t, br, "GET"); resp.StatusCode != 200 || b != "local\n" || resp.Close {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	if resp, b := readResponse(t, br, "GET"); b != "local\n" || !resp.Close {
		t.Fatalf("HTTP/1.0: %q close=%v", b, resp.Close)
	}
	expectClosed(t, br)
}

func TestRejected(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	tests := []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"bad CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n", 400},
		{"differing CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"unknown TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"bad version", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
		{"not http", "GET / FOO\r\nHost: x\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"huge head", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 20000) + "\r\n\r\n", 431},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dialRaw(t, e)
			io.WriteString(c, tt.req)
			resp, b := readResponse(t, br, "GET")
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("got %d close=%v %q", resp.StatusCode, resp.Close, b)
			}
			if want := fmt.Sprintf(`{"error":{"status":%d,"code":`, tt.status); !strings.HasPrefix(b, want) {
				t.Fatalf("body %q", b)
			}
			expectClosed(t, br)
		})
	}
}

func TestTargetRefused(t *testing.T) {
	addr := testaddr.Dead(t)
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(b), `"code":"upstream_failed"`) {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	r := d.waitDone(t)
	if r.Status != 502 || r.Err == nil || r.Timeout {
		t.Fatalf("result %+v", r)
	}
	if f := d.failCalls(); len(f) != 1 || f[0].timeout || f[0].attempt != 1 {
		t.Fatalf("Failed calls %+v", f)
	}
}

func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	d := newDispatcher(addr)
	d.readTimeout = 200 * time.Millisecond
	e := startEngine(t, d, nil)
	start := time.Now()
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || time.Since(start) > 2*time.Second {
		t.Fatalf("got %d after %v", resp.StatusCode, time.Since(start))
	}
	if f := d.failCalls(); len(f) != 1 || !f[0].timeout {
		t.Fatalf("Failed calls %+v", f)
	}
	if r := d.waitDone(t); !r.Timeout || r.Err == nil {
		t.Fatalf("result %+v", r)
	}
}

func TestRetryOtherTarget(t *testing.T) {
	dead := testaddr.Dead(t)
	good, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "second")
	}))
	d := newDispatcher(dead)
	d.failed = func(ex *Exchange, err error, timeout bool) bool {
		ex.Target = good
		return true
	}
	e := startEngine(t, d, nil)
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "second" {
		t.Fatalf("got %q", b)
	}
	if f := d.failCalls(); len(f) != 1 {
		t.Fatalf("Failed calls %+v", f)
	}
	if r := d.waitDone(t); r.Status != 200 || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
}

func TestIdleUpstreamClosed(t *testing.T) {
	var conns atomic.Int64
	// Each target connection answers one request with keep-alive framing,
	// then closes shortly after: the pooled connection must be seen to be
	// dead and not used.
	addr := rawTarget(t, func(c net.Conn) {
		conns.Add(1)
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(50 * time.Millisecond)
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, br := dialRaw(t, e)
	for i := 0; i < 3; i++ {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, b := readResponse(t, br, "GET"); b != "ok" {
			t.Fatalf("got %q", b)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if conns.Load() != 3 {
		t.Fatalf("target saw %d connections", conns.Load())
	}
	if f := d.failCalls(); len(f) != 0 {
		t.Fatalf("Failed calls %+v", f)
	}
}

func TestKeepAliveRace(t *testing.T) {
	var conns atomic.Int64
	// A connection answers its first request and closes on the second
	// without answering, as a target does when its idle timer fires just
	// as a request arrives.
	addr := rawTarget(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if i == 1 {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, br := dialRaw(t, e)
	for i := 0; i < 3; i++ {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, b := readResponse(t, br, "GET"); b != "ok" {
			t.Fatalf("request %d: got %q", i, b)
		}
	}
	if f := d.failCalls(); len(f) != 0 {
		t.Fatalf("Failed calls %+v", f)
	}
	// Requests 1 and 2 each found their pooled connection dead and went
	// on a new one.
	if conns.Load() != 3 {
		t.Fatalf("target saw %d connections", conns.Load())
	}
}

func TestConnState(t *testing.T) {
	var open, closed atomic.Int64
	d := newDispatcher("")
	e := startEngine(t, d, func(c *Config) {
		c.ConnState = func(o bool) {
			if o {
				open.Add(1)
			} else {
				closed.Add(1)
			}
		}
	})
	for i := 0; i < 3; i++ {
		c, br := dialRaw(t, e)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(t, br, "GET")
		c.Close()
	}
	waitfor.Cond(t, 2*time.Second, "the three connections closed", func() (bool, string) {
		return closed.Load() == 3, fmt.Sprintf("open %d closed %d", open.Load(), closed.Load())
	})
	if open.Load() != 3 {
		t.Fatalf("open %d closed %d", open.Load(), closed.Load())
	}
}

func TestShutdownDrains(t *testing.T) {
	// The target answers once the shutdown is under way, so that the
	// request is in flight during it however slow the machine is.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow")
	}))
	d := newDispatcher(addr)
	e, err := Listen(Config{Addr: "127.0.0.1:0", Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve() }()
	idle, idleBR := dialRaw(t, e)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = idle
	receive(t, arrived, "the request at the target")
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- e.Shutdown(ctx)
	}()
	// The idle connection closed: the shutdown is under way.
	expectClosed(t, idleBR)
	close(release)
	resp, b := readResponse(t, br, "GET")
	if b != "slow" || !resp.Close {
		t.Fatalf("got %q close=%v", b, resp.Close)
	}
	expectClosed(t, br)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", e.Addr().String()); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestShutdownForced(t *testing.T) {
	arrived := make(chan struct{}, 1)
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	d := newDispatcher(addr)
	e, err := Listen(Config{Addr: "127.0.0.1:0", Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve() }()
	c, _ := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	receive(t, arrived, "the request at the target")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if r := d.waitDone(t); r.Err == nil {
		t.Fatalf("result %+v", r)
	}
}

func TestListenErrors(t *testing.T) {
	e := startEngine(t, newDispatcher(""), nil)
	if _, err := Listen(Config{Addr: e.Addr().String(), Dispatcher: newDispatcher("")}); err == nil {
		t.Fatal("second Listen on the same port succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(Config{Addr: ln.Addr().String(), Dispatcher: newDispatcher("")}); err == nil {
		t.Fatal("Listen on a port in use succeeded")
	}
	for _, a := range []string{"localhost:0", "nope", "[::1]:0"} {
		e, err := Listen(Config{Addr: a, Dispatcher: newDispatcher("")})
		if a == "[::1]:0" {
			if err == nil {
				e.Shutdown(context.Background())
			}
			continue
		}
		if err == nil {
			t.Fatalf("%s: no error", a)
		}
	}
}

func TestStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 512 MiB")
	}
	const size = 256 << 20
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.CopyN(w, &pattern{}, size)
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	var before, after runtimeMem
	before.read()
	want := sha256.New()
	io.CopyN(want, &pattern{}, size)
	sum := fmt.Sprintf("%d %x", size, want.Sum(nil))

	req, _ := http.NewRequest("POST", "http://"+e.Addr().String()+"/", io.LimitReader(&pattern{}, size))
	req.ContentLength = size
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != sum {
		t.Fatalf("upload: got %q want %q", b, sum)
	}
	resp, err = httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || fmt.Sprintf("%d %x", n, h.Sum(nil)) != sum {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	after.read()
	t.Logf("process memory from the OS grew by %d MiB for 2 x %d MiB streamed", (after.peak-before.peak)>>20, size>>20)
	if grew := after.peak - before.peak; grew > 64<<20 {
		t.Fatalf("memory grew by %d MiB", grew>>20)
	}
}

func TestSlowReaderBackpressure(t *testing.T) {
	const size = 64 << 20
	var written atomic.Int64
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		buf := make([]byte, 32<<10)
		for n := 0; n < size; n += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
			written.Add(int64(len(buf)))
		}
	}))
	e := startEngine(t, newDispatcher(addr), nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Socket buffers on both hops and the engine's 64 KiB are all that
	// may be in flight while the client does not read.
	waitfor.Holds(t, 500*time.Millisecond, "the target held back by the client that does not read", func() (bool, string) {
		w := written.Load()
		return w <= 24<<20, fmt.Sprintf("target wrote %d MiB ahead of the client", w>>20)
	})
	t.Logf("target wrote %d MiB of %d MiB before the client read", written.Load()>>20, size>>20)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
}

// pattern is an endless byte stream that does not repeat every few KiB,
// so that a misplaced block shows in the hash.
type pattern struct{ off int }

func (r *pattern) Read(p []byte) (int, error) {
	for i := range p {
		o := r.off + i
		p[i] = byte(o*7 + o>>13)
	}
	r.off += len(p)
	return len(p), nil
}

type runtimeMem struct{ peak uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.peak = s.Sys
}

func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	d := newDispatcher(ln.Addr().String())
	e := startEngine(t, d, func(c *Config) { c.Addr = "[::1]:0" })
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "::1" {
		t.Fatalf("got %q", b)
	}
}

func TestHostnameTarget(t *testing.T) {
	d := newDispatcher("localhost:80")
	e := startEngine(t, d, nil)
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if f := d.failCalls(); resp.StatusCode != 502 || len(f) != 1 || !strings.Contains(f[0].err.Error(), "must be an IP:port") {
		t.Fatalf("status %d, Failed calls %+v", resp.StatusCode, f)
	}
}

// sharingDispatcher answers locally, assigning a shared slice to
// ResponseHeaders on odd requests and appending on even ones.
type sharingDispatcher struct {
	shared []byte
	n      int
}

func (d *sharingDispatcher) Dispatch(req *Request, ex *Exchange) {
	d.n++
	ex.Status = 200
	if d.n%2 == 1 {
		ex.ResponseHeaders = d.shared
	} else {
		ex.ResponseHeaders = append(ex.ResponseHeaders, "X-Own: 2\r\n"...)
	}
}
func (d *sharingDispatcher) Failed(*Exchange, error, bool) bool { return false }
func (d *sharingDispatcher) Done(*Exchange, Result)             {}

func TestSharedSlicesNotReused(t *testing.T) {
	shared := make([]byte, 0, 64)
	shared = append(shared, "X-Shared: 1\r\n"...)
	d := &sharingDispatcher{shared: shared}
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, br := dialRaw(t, e)
	for i := 0; i < 4; i++ {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := readResponse(t, br, "GET")
		if i%2 == 0 && resp.Header.Get("X-Shared") != "1" || i%2 == 1 && resp.Header.Get("X-Own") != "2" {
			t.Fatalf("request %d: %v", i, resp.Header)
		}
	}
	if string(shared[:cap(shared)][:13]) != "X-Shared: 1\r\n" {
		t.Fatalf("shared slice overwritten: %q", shared[:cap(shared)][:13])
	}
}

type panicDispatcher struct{ *testDispatcher }

func (d panicDispatcher) Dispatch(req *Request, ex *Exchange) {
	if string(req.Path) == "/panic" {
		panic("dispatcher bug")
	}
	d.testDispatcher.Dispatch(req, ex)
}

func TestDispatcherPanic(t *testing.T) {
	d := panicDispatcher{newDispatcher("")}
	e := startEngine(t, d, func(c *Config) { c.Loops = 1 })
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	expectClosed(t, br)
	c, br = dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, b := readResponse(t, br, "GET"); b != "local\n" {
		t.Fatalf("after a panic: %q", b)
	}
}

// TestLingerAfterUnreadBody answers locally while the client is still
// sending a large body: the response must reach the client intact. (On
// loopback a reset for the unread input seldom overtakes the response;
// across a network it can, which is what lingering prevents.)
func TestLingerAfterUnreadBody(t *testing.T) {
	d := newDispatcher("")
	e := startEngine(t, d, nil)
	for i := 0; i < 5; i++ {
		c, br := dialRaw(t, e)
		const size = 8 << 20
		go func() {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
			io.CopyN(c, &pattern{}, size)
		}()
		time.Sleep(50 * time.Millisecond)
		resp, b := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || b != "local\n" || !resp.Close {
			t.Fatalf("got %d %q close=%v", resp.StatusCode, b, resp.Close)
		}
	}
}
