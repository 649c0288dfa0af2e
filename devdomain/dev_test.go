package devdomain

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// TestGossipOnLoopback runs a dev domain whose gateway binary is a script
// that writes down its arguments: what the node manager really passes to
// each gateway. Gossip must listen and be advertised on loopback, like
// everything else in a dev domain.
func TestGossipOnLoopback(t *testing.T) {
	dir := t.TempDir()
	argsDir := filepath.Join(dir, "args")
	if err := os.Mkdir(argsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fake-gateway")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsDir + "/$$.tmp && mv " + argsDir + "/$$.tmp " + argsDir + "/$$\nexec sleep 300\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		// Port 0 everywhere: dev picks the ports.
		Dir: filepath.Join(dir, "dev"), AdminAddr: "127.0.0.1:0", NodeAddr: "127.0.0.1:0", Upstream: "127.0.0.1:0",
		Gateways: []Gateway{
			{Name: "demo-1", Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0"},
			{Name: "demo-2", Listen: "127.0.0.1:0", StatusListen: "127.0.0.1:0"},
		},
		GatewayBin: fake, Out: &bytes.Buffer{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	args := map[string][]string{} // by instance
	waitfor.Cond(t, 60*time.Second, "both gateways started", func() (bool, string) {
		select {
		case err := <-done:
			done <- err // for the deferred stop
			t.Fatalf("dev domain stopped: %v", err)
		default:
		}
		files, _ := filepath.Glob(filepath.Join(argsDir, "[0-9]*"))
		for _, f := range files {
			if strings.HasSuffix(f, ".tmp") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			a := strings.Split(strings.TrimSpace(string(data)), "\n")
			for i := range a {
				if a[i] == "--instance" && i+1 < len(a) {
					args[a[i+1]] = a
				}
			}
		}
		return len(args) == len(opts.Gateways), fmt.Sprintf("started: %v", args)
	})
	for name, a := range args {
		for _, flag := range []string{"--gossip-listen=", "--gossip-advertise="} {
			addr := ""
			for _, s := range a {
				if v, ok := strings.CutPrefix(s, flag); ok {
					addr = v
				}
			}
			host, port, err := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || port == "" || port == "0" {
				t.Errorf("%s runs with %s%q, want a loopback address with a port; all its arguments: %q", name, flag, addr, a)
			}
		}
	}
}
