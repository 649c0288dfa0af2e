package testaddr

import (
	"net"
	"testing"
)

func TestDead(t *testing.T) {
	addr := Dead(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("another socket could listen on the dead %s", addr)
	}
}

func TestReserved(t *testing.T) {
	addr := Reserved(t, "127.0.0.1")
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection while only reserved", addr)
	}
	// The process it is kept for listens there, and again after a restart.
	for range 2 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on the reserved %s: %v", addr, err)
		}
		l.Close()
	}
	// Nobody's port 0 gets it.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		if l.Addr().String() == addr {
			t.Fatalf("a bind to port 0 got the reserved %s", addr)
		}
	}
}
