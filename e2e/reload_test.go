package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

func reloadConfig(version int, a, b string) deploy.Config {
	// Every version changes routes and the upstream's targets, so that
	// each reload swaps the routing table and the target set.
	targets := []deploy.Target{{Address: a}}
	if version%2 == 1 {
		targets = append(targets, deploy.Target{Address: b})
	}
	return deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "up", Targets: targets}},
		Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{
			{Name: "items", Paths: []string{"/items/*"}},
			{Name: fmt.Sprintf("v%d", version), Paths: []string{fmt.Sprintf("/v/%d", version)}},
		}}},
	}
}

// Reloads under continuous load fail no request.
func TestReloadUnderLoadFailsNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		a := startUpstream(t, "a", nil)
		b := startUpstream(t, "b", nil)
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		writeConfig(t, cfg, reloadConfig(0, a.addr, b.addr))
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		ctx, cancel := context.WithCancel(context.Background())
		var ok, failed atomic.Int64
		var firstFailure atomic.Value
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
				for ctx.Err() == nil {
					resp, err := client.Get("http://" + gw.listen + "/items/1")
					if err != nil {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, err.Error())
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, resp.Status)
						continue
					}
					ok.Add(1)
				}
			}()
		}
		sum := gw.report(t).Configuration.Checksum
		const reloads = 20
		for v := 1; v <= reloads; v++ {
			writeConfig(t, cfg, reloadConfig(v, a.addr, b.addr))
			sum = gw.waitNewConfig(t, sum)
			if code, _, _ := get(t, http.DefaultClient, fmt.Sprintf("http://%s/v/%d", gw.listen, v)); code != 200 {
				t.Fatalf("route of version %d not served after reload", v)
			}
		}
		cancel()
		wg.Wait()
		t.Logf("%d requests during %d reloads, %d failed", ok.Load(), reloads, failed.Load())
		if failed.Load() != 0 {
			t.Fatalf("%d requests failed during reloads; first: %v", failed.Load(), firstFailure.Load())
		}
		if ok.Load() < 100 {
			t.Fatalf("only %d requests ran during the reloads: the load did not overlap them", ok.Load())
		}
	})
}

// An invalid file is rejected on reload; the running configuration keeps
// serving, and /status says why.
func TestInvalidReloadKeepsServing(t *testing.T) {
	up := startUpstream(t, "up", nil)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.json")
	simpleConfig(t, cfg, up.addr)
	gw := startGateway(t, gatewayOpts{config: cfg, dataDir: filepath.Join(dir, "gw")})
	gw.waitReady(t)
	before := gw.report(t).Configuration.Checksum

	writeFile(t, cfg, `{"upstreams":[{"name":"up","targets":[]}],"services":[{"name":"svc","upstream":"up","routes":[{"name":"r","paths":["x"]}]}]}`)
	gw.waitFor(t, 10*time.Second, "the rejection in /status", func() bool {
		r := gw.report(t)
		return r.LastError != nil && strings.Contains(r.LastError.Message, `services[0].routes[0].paths[0]: must start with "/"`)
	})
	if got := gw.report(t).Configuration.Checksum; got != before {
		t.Fatalf("configuration changed to %s after an invalid file", got)
	}
	if code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/still"); code != 200 {
		t.Fatalf("previous configuration no longer serves: %d", code)
	}

	// SIGHUP re-reads the file at once, whatever the watch interval.
	simpleConfig(t, cfg, up.addr)
	gw.signal(syscall.SIGHUP)
	gw.waitFor(t, 10*time.Second, "recovery after a valid file", func() bool {
		return gw.report(t).LastError == nil
	})
}
