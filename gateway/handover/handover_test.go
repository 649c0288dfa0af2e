package handover

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func testName(t *testing.T) string {
	return Name(t.TempDir())
}

// offerTCP offers one TCP listener under name and reports the hooks'
// calls.
func offerTCP(t *testing.T, name string) (net.Listener, *Offer, chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	o, err := Listen(name, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	calls := make(chan string, 10)
	go o.Serve(Hooks{
		Prepare: func() ([]Listener, error) {
			calls <- "prepare"
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				return nil, err
			}
			return []Listener{{Name: "listen", Addr: "127.0.0.1:0", Files: []*os.File{f}}}, nil
		},
		Abort: func() { calls <- "abort" },
	})
	return ln, o, calls
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
		return ""
	}
}

// TestTakeServesTheSameSocket: the taker accepts on the offered socket
// itself, and the offer is ready once the taker says so.
func TestTakeServesTheSameSocket(t *testing.T) {
	name := testName(t)
	ln, o, calls := offerTCP(t, name)
	tk, err := Take(name, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	if got := next(t, calls); got != "prepare" {
		t.Fatalf("hook %q, want prepare", got)
	}
	if tk.PID != os.Getpid() {
		t.Errorf("offer from pid %d, want %d", tk.PID, os.Getpid())
	}
	if tk.Files("listen", "127.0.0.1:1") != nil {
		t.Error("sockets of another address were taken")
	}
	files := tk.Files("listen", "127.0.0.1:0")
	if len(files) != 1 {
		t.Fatalf("%d sockets, want 1", len(files))
	}
	taken, err := net.FileListener(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// The old side closes its own descriptor; the socket lives on.
	ln.Close()
	c, err := net.Dial("tcp", taken.Addr().String())
	if err != nil {
		t.Fatalf("dial after the old descriptor closed: %v", err)
	}
	c.Close()
	if _, err := taken.Accept(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.Ready():
		t.Fatal("ready before the taker said so")
	default:
	}
	if err := tk.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("offer not ready after READY")
	}
}

// TestTakerGoneBeforeReady: a taker that goes away before it is ready
// gives the old process its store back (Abort), and a later one can take.
func TestTakerGoneBeforeReady(t *testing.T) {
	name := testName(t)
	_, o, calls := offerTCP(t, name)
	tk, err := Take(name, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	next(t, calls)
	tk.Close()
	if got := next(t, calls); got != "abort" {
		t.Fatalf("hook %q, want abort", got)
	}
	tk2, err := Take(name, 5*time.Second)
	if err != nil {
		t.Fatalf("second take: %v", err)
	}
	defer tk2.Close()
	tk2.Ready()
	select {
	case <-o.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("offer not ready")
	}
}

func TestTakeWithoutOffer(t *testing.T) {
	if _, err := Take(testName(t), time.Second); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("Take with nothing offered: %v, want ErrNoOffer", err)
	}
}

func TestNameDependsOnDir(t *testing.T) {
	a, b := Name("/var/lib/x/a"), Name("/var/lib/x/b")
	if a == b || a[0] != '@' || Name("/var/lib/x/a") != a {
		t.Fatalf("names %q and %q", a, b)
	}
}
