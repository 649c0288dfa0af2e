//go:build linux

package evloop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestClientTimeouts(t *testing.T) {
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	e := startEngine(t, newDispatcher(addr), func(c *Config) {
		c.HeaderTimeout = 150 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	tests := []struct {
		name     string
		send     string
		answered bool // send is a complete request, answered before the wait
		want     time.Duration
	}{
		{"header timeout", "GET / HTTP/1.1\r\nHost: x\r\n", false, 150 * time.Millisecond},
		{"idle timeout", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true, 300 * time.Millisecond},
		// A new connection gets the shorter of the two.
		{"silent new connection", "", false, 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, br := dialRaw(t, e)
			start := time.Now()
			io.WriteString(c, tt.send)
			if tt.answered {
				readResponse(t, br, "GET")
				start = time.Now()
			}
			expectClosed(t, br)
			if el := time.Since(start); el < tt.want-20*time.Millisecond || el > tt.want+time.Second {
				t.Fatalf("closed after %v, want about %v", el, tt.want)
			}
		})
	}
}

func TestClientGoneMidExchange(t *testing.T) {
	canceled, arrived := make(chan struct{}), make(chan struct{}, 1)
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, _ := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	receive(t, arrived, "the request at the target")
	c.Close()
	r := d.waitDone(t)
	if !errors.Is(r.Err, ErrClientClosed) || r.Status != 0 {
		t.Fatalf("result %+v", r)
	}
	select {
	case <-canceled:
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream connection was not closed")
	}
}

func TestClientGoneMidBody(t *testing.T) {
	started := make(chan struct{}, 1)
	addr, _ := target(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The part of the body the client sent has crossed the engine.
		io.ReadFull(r.Body, make([]byte, len("partial")))
		started <- struct{}{}
		io.Copy(io.Discard, r.Body)
	}))
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, _ := dialRaw(t, e)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
	receive(t, started, "the start of the body at the target")
	c.Close()
	if r := d.waitDone(t); !errors.Is(r.Err, ErrClientClosed) || r.BytesIn != 7 {
		t.Fatalf("result %+v", r)
	}
}

func TestUpstreamClosesMidResponse(t *testing.T) {
	addr := rawTarget(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	c, br := dialRaw(t, e)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err == nil || string(b) != "only this" {
		t.Fatalf("got %q, %v", b, err)
	}
	if r := d.waitDone(t); !errors.Is(r.Err, errUpstreamClosed) || r.Status != 200 || r.BytesOut != 9 {
		t.Fatalf("result %+v", r)
	}
	if f := d.failCalls(); len(f) != 0 {
		t.Fatalf("Failed after the response started: %+v", f)
	}
}

func TestBadUpstreamResponse(t *testing.T) {
	addr := rawTarget(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
	})
	d := newDispatcher(addr)
	e := startEngine(t, d, nil)
	resp, err := httpClient().Get("http://" + e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if f := d.failCalls(); len(f) != 1 || !errors.Is(f[0].err, errBadResponse) {
		t.Fatalf("Failed calls %+v", f)
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener with a full accept queue drops SYNs, so connecting to it
	// hangs.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := 0; i < 4; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			defer c.Close()
		}
	}
	d := newDispatcher(addr)
	d.connectTimeout = 200 * time.Millisecond
	e := startEngine(t, d, nil)
	start := time.Now()
	resp, err := httpClient().Get("http://" + e.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d after %v", resp.StatusCode, time.Since(start))
	}
	if f := d.failCalls(); len(f) != 1 || !f[0].timeout {
		t.Fatalf("Failed calls %+v", f)
	}
}
