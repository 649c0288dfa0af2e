//go:build linux

package evloop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testDispatcher routes every request to target (or answers locally when
// target is empty) and records how exchanges end.
type testDispatcher struct {
	target         atomic.Pointer[string]
	readTimeout    time.Duration
	connectTimeout time.Duration
	// failed, if set, decides Failed; by default Failed answers 502.
	failed func(ex *Exchange, err error, timeout bool) bool
	// quiet keeps Done from recording, for allocation counts.
	quiet bool

	mu    sync.Mutex
	fails []failCall
	done  chan Result
}

type failCall struct {
	err     error
	timeout bool
	attempt int
}

func newDispatcher(target string) *testDispatcher {
	d := &testDispatcher{done: make(chan Result, 1024)}
	d.setTarget(target)
	return d
}

func (d *testDispatcher) setTarget(t string) { d.target.Store(&t) }

func (d *testDispatcher) Dispatch(req *Request, ex *Exchange) {
	t := *d.target.Load()
	if t == "" {
		ex.Status = 200
		ex.ContentType = "text/plain"
		ex.Body = append(ex.Body[:0], "local\n"...)
		return
	}
	ex.Target = t
	ex.Replayable = string(req.Method) == "GET" || string(req.Method) == "HEAD"
	ex.ReadTimeout = d.readTimeout
	ex.ConnectTimeout = d.connectTimeout
	ex.ResponseHeaders = append(ex.ResponseHeaders, "X-Gw: 1\r\n"...)
	h := ex.Head[:0]
	h = append(h, req.Method...)
	h = append(h, ' ')
	h = append(h, req.URI...)
	h = append(h, " HTTP/1.1\r\n"...)
	for _, hd := range req.Headers {
		if hopByHop(hd.Name) || equalFold(hd.Name, "Upgrade") || equalFold(hd.Name, "Expect") {
			continue
		}
		h = append(h, hd.Name...)
		h = append(h, ": "...)
		h = append(h, hd.Value...)
		h = append(h, "\r\n"...)
	}
	if req.Upgrade {
		h = append(h, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	}
	h = append(h, "X-Forwarded-For: "...)
	h = req.RemoteAddr.Addr().AppendTo(h)
	h = append(h, "\r\n\r\n"...)
	ex.Head = h
}

func (d *testDispatcher) Failed(ex *Exchange, err error, timeout bool) bool {
	d.mu.Lock()
	d.fails = append(d.fails, failCall{err, timeout, ex.Attempt})
	d.mu.Unlock()
	if d.failed != nil {
		return d.failed(ex, err, timeout)
	}
	return false
}

func (d *testDispatcher) Done(ex *Exchange, res Result) {
	if d.quiet {
		return
	}
	select {
	case d.done <- res:
	default:
	}
}

func (d *testDispatcher) failCalls() []failCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]failCall(nil), d.fails...)
}

// waitDone returns the next exchange result.
func (d *testDispatcher) waitDone(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-d.done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no Done call")
	}
	return Result{}
}

// startEngine runs an engine on a free loopback port; it is shut down
// when the test ends.
func startEngine(t testing.TB, d Dispatcher, mod func(*Config)) *Engine {
	t.Helper()
	cfg := Config{Addr: "127.0.0.1:0", Loops: 2, Dispatcher: d}
	if mod != nil {
		mod(&cfg)
	}
	e, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

// target starts an HTTP server and returns its host:port and a counter
// of the connections it accepted.
func target(t testing.TB, h http.Handler) (string, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), &conns
}

// rawTarget accepts connections and runs serve on each.
func rawTarget(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
}

// dialRaw opens a client connection to the engine.
func dialRaw(t testing.TB, e *Engine) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// readResponse reads one response, with its body.
func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// expectClosed checks that the server closes c without sending more.
func expectClosed(t testing.TB, br *bufio.Reader) {
	t.Helper()
	b, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("expected close, got %v", err)
	}
	if len(b) > 0 {
		t.Fatalf("unexpected bytes after response: %q", b)
	}
}

// receive waits for a value on ch: a step the test's target reached.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out after 5s waiting for %s", what)
		var zero T
		return zero
	}
}
