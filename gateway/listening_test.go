package gateway

import (
	"context"
	"errors"
	"maps"
	"net"
	"strings"
	"testing"
	"time"
)

// Every listener takes port 0, and what the gateway tells about itself
// (the Listening hook behind --ready-file, the listeners of /status, the
// status address its gossip metadata carries) names the ports it bound.
func TestListeningOnPortZero(t *testing.T) {
	for _, engine := range []string{EngineEvloop, EngineFasthttp} {
		t.Run(engine, func(t *testing.T) {
			bound := make(chan map[string]string, 1)
			g, err := New(Options{Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0", TLSListen: "127.0.0.1:0", Engine: engine,
				Profiling: true, ProfilingListen: "127.0.0.1:0", DrainTimeout: time.Second,
				Listening: func(a map[string]string) error { bound <- a; return nil }})
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
			var addrs map[string]string
			select {
			case addrs = <-bound:
			case err := <-done:
				done <- err
				t.Fatalf("Run ended before its listeners were bound: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("Listening was not called")
			}
			for _, key := range []string{"listen", "tls_listen", "status_listen", "pprof_listen"} {
				if a := addrs[key]; !strings.HasPrefix(a, "127.0.0.1:") || strings.HasSuffix(a, ":0") {
					t.Errorf("%s = %q, want a loopback address with its port; all: %v", key, a, addrs)
				}
			}
			if len(addrs) != 4 {
				t.Errorf("Listening got %v, want the four listeners", addrs)
			}
			fromStatus := map[string]string{}
			g.listenersMu.Lock()
			for _, l := range g.listeners {
				fromStatus[map[string]string{"http": "listen", "https": "tls_listen", "status": "status_listen", "pprof": "pprof_listen"}[l.Name]] = l.Address
			}
			g.listenersMu.Unlock()
			if !maps.Equal(fromStatus, addrs) {
				t.Errorf("/status listeners %v, Listening %v", fromStatus, addrs)
			}
			if m := g.gossipMeta(); m.Status != addrs["status_listen"] {
				t.Errorf("gossip metadata's status address %q, want the bound %s", m.Status, addrs["status_listen"])
			}
			for _, key := range []string{"listen", "status_listen"} {
				c, err := net.Dial("tcp", addrs[key])
				if err != nil {
					t.Errorf("%s %s: %v", key, addrs[key], err)
					continue
				}
				c.Close()
			}
		})
	}
}

// An error of the Listening hook (a ready file that cannot be written)
// stops the gateway before it serves.
func TestListeningErrorStops(t *testing.T) {
	g, err := New(Options{Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0", Engine: EngineEvloop, DrainTimeout: time.Second,
		Listening: func(map[string]string) error { return errors.New("ready file: disk full") }})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run: %v, want the hook's error", err)
	}
}
