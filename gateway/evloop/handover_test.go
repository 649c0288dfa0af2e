//go:build linux

package evloop

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestFilesKeepQueuedConnections: connections waiting in the accept queues
// of an engine that hands its sockets over (Files) and then shuts down are
// served by the engine that took them, none refused or reset. With two
// sets of SO_REUSEPORT sockets instead, the queue of the closed set would
// be reset.
func TestFilesKeepQueuedConnections(t *testing.T) {
	old, err := Listen(Config{Addr: "127.0.0.1:0", Loops: 3, Dispatcher: newDispatcher("")})
	if err != nil {
		t.Fatal(err)
	}
	addr := old.Addr().String()
	// Nobody accepts yet: the kernel completes the handshakes and queues
	// the connections, spread over the old engine's three sockets.
	const n = 30
	var conns []net.Conn
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		conns = append(conns, c)
	}
	files, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("Files: %d sockets, want one per loop (3)", len(files))
	}
	taker, err := Listen(Config{Files: files, Loops: 1, Dispatcher: newDispatcher("")})
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := taker.Addr().String(); got != addr {
		t.Fatalf("taker listens on %s, want %s", got, addr)
	}
	if len(taker.loops) != 3 {
		t.Fatalf("taker has %d loops, want one per inherited socket (3)", len(taker.loops))
	}
	// The old engine closes its descriptors: the sockets live on in the
	// taker, with their queues.
	if err := old.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- taker.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		taker.Shutdown(ctx)
		<-served
	})
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, body := readResponse(t, bufio.NewReader(c), "GET")
		if resp.StatusCode != 200 || body != "local\n" {
			t.Fatalf("connection %d: %d %q", i, resp.StatusCode, body)
		}
	}
	// New connections keep coming in on the same address.
	c, br := dialRaw(t, taker)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("new connection: %d", resp.StatusCode)
	}
}

// TestFilesRefusesOtherDescriptors: only listening sockets are taken.
func TestFilesRefusesOtherDescriptors(t *testing.T) {
	c, err := net.Dial("tcp", startEngine(t, newDispatcher(""), nil).Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Listen(Config{Files: []*os.File{f}, Dispatcher: newDispatcher("")}); err == nil {
		t.Fatal("Listen took a connected socket as a listening one")
	}
}
