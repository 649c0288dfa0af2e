package devdomain

import (
	"net"
	"strings"
	"testing"
)

func TestReservePort(t *testing.T) {
	addr, release, err := reservePort("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("reserved %s, want a real port", addr)
	}
	// Nobody listens there until the gateway does...
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s accepts connections while only reserved", addr)
	}
	// ...which can, twice (a restart), while the port stays reserved.
	for range 2 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on the reserved %s: %v", addr, err)
		}
		l.Close()
	}
	// No bind to port 0 gets it while it is held.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		if l.Addr().String() == addr {
			t.Fatalf("a bind to port 0 got the reserved %s", addr)
		}
	}

	tests := []struct{ addr, want, wantErr string }{
		{"127.0.0.1:8080", "127.0.0.1:8080", ""},
		{"localhost:0", "", "port 0 needs an IPv4 address"},
		{"127.0.0.1", "", "missing port"},
	}
	for _, tt := range tests {
		got, release, err := reservePort(tt.addr)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("reservePort(%q): %v, want an error saying %q", tt.addr, err, tt.wantErr)
			}
			continue
		}
		release()
		if err != nil || got != tt.want {
			t.Errorf("reservePort(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
}

func TestReserveGossipPort(t *testing.T) {
	addr, release, err := reserveGossipPort("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// memberlist binds both.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("TCP on the reserved gossip address %s: %v", addr, err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP on the reserved gossip address %s: %v", addr, err)
	}
	u.Close()
}
