package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

func TestCheckProfilingListen(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"127.0.0.2:0", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{":6060", false},
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"192.0.2.2:6060", false},
		{"example.com:6060", false},
		{"127.0.0.1", false},
	} {
		err := CheckProfilingListen(tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("CheckProfilingListen(%q) = %v, want ok %v", tt.addr, err, tt.ok)
		}
		if _, err := New(Options{Profiling: true, ProfilingListen: tt.addr}); (err == nil) != tt.ok {
			t.Errorf("New with pprof on %q: %v, want ok %v", tt.addr, err, tt.ok)
		} else if err != nil && !strings.Contains(err.Error(), "pprof listen address") {
			t.Errorf("New with pprof on %q: %v does not name the address", tt.addr, err)
		}
	}
	g, err := New(Options{Profiling: true})
	if err != nil {
		t.Fatal(err)
	}
	if g.opts.ProfilingListen != DefaultProfilingListen || !strings.HasPrefix(DefaultProfilingListen, "127.0.0.1:") {
		t.Errorf("default pprof address %q", g.opts.ProfilingListen)
	}
}

// With --pprof, /debug/pprof is on a loopback listener of its own and not
// on the status port.
func TestProfilingHasItsOwnLoopbackListener(t *testing.T) {
	g, err := New(Options{Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0", TLSListen: "", Engine: EngineFasthttp,
		Profiling: true, ProfilingListen: "127.0.0.1:0", DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addrs := map[string]string{}
	waitfor.Cond(t, 10*time.Second, "the gateway's listeners bound", func() (bool, string) {
		g.listenersMu.Lock()
		for _, l := range g.listeners {
			addrs[l.Name] = l.Address
		}
		g.listenersMu.Unlock()
		return addrs["pprof"] != "", fmt.Sprintf("%v", addrs)
	})
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(addrs["pprof"], "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof listener %s: %d %.200q", addrs["pprof"], code, body)
	}
	if code, _ := get(addrs["status"], "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("status port %s serves /debug/pprof/: %d", addrs["status"], code)
	}
	if code, _ := get(addrs["status"], "/healthz"); code != http.StatusOK {
		t.Errorf("status port %s: /healthz %d", addrs["status"], code)
	}
}
