package e2e

import (
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// A GET that fails to connect to one target is retried on another.
func TestRetryOnSecondTarget(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		live := startUpstream(t, "live", nil)
		dead := deadAddr(t)
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{{
				Name:    "up",
				Targets: []deploy.Target{{Address: dead}, {Address: live.addr}},
				Retries: 1,
			}},
			Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"}}}}},
		})
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)
		for i := 0; i < 20; i++ {
			code, body, hdr := get(t, http.DefaultClient, "http://"+gw.listen+"/x")
			if code != 200 || hdr.Get("X-Upstream") != "live" {
				t.Fatalf("request %d: %d %q", i, code, body)
			}
		}
		// Without retries the dead target's share fails with 502.
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{{Name: "up", Targets: []deploy.Target{{Address: dead}}}},
			Services:  []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"}}}}},
		})
		gw.waitFor(t, 10*time.Second, "502 from the dead target", func() bool {
			code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/x")
			return code == 502
		})
	})
}

// A target that keeps failing is ejected, and takes traffic again once it
// recovers and its ejection time is over.
func TestPassiveEjectionAndRecovery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var failing atomic.Bool
		failing.Store(true)
		good := startUpstream(t, "good", nil)
		flaky := startUpstream(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "broken", 500)
				return
			}
			w.Write([]byte("flaky ok"))
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{{
				Name:    "up",
				Targets: []deploy.Target{{Address: good.addr}, {Address: flaky.addr}},
				Passive: &deploy.PassiveHealthCheck{ConsecutiveFailures: 3, EjectFor: deploy.Duration(5 * time.Second), Statuses: []int{500}},
			}},
			Services: []deploy.Service{{Name: "svc", Upstream: "up", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"}}}}},
		})
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		// Round robin over two targets: the flaky one fails 3 times within the
		// first 6 requests, then is ejected and every request succeeds.
		failures := 0
		for i := 0; i < 6; i++ {
			if code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/"); code == 500 {
				failures++
			}
		}
		if failures != 3 {
			t.Fatalf("%d failures before ejection, want 3", failures)
		}
		ejected := func() bool {
			for _, u := range gw.report(t).Upstreams {
				for _, tg := range u.Targets {
					if tg.Address == flaky.addr {
						return tg.Ejected
					}
				}
			}
			return false
		}
		if !ejected() {
			t.Fatal("/status does not show the flaky target ejected")
		}
		for i := 0; i < 20; i++ {
			if code, _, hdr := get(t, http.DefaultClient, "http://"+gw.listen+"/"); code != 200 || hdr.Get("X-Upstream") != "good" {
				t.Fatalf("request %d while ejected: %d from %s", i, code, hdr.Get("X-Upstream"))
			}
		}
		failing.Store(false)
		gw.waitFor(t, 10*time.Second, "the flaky target to take traffic again", func() bool {
			_, _, hdr := get(t, http.DefaultClient, "http://"+gw.listen+"/")
			return hdr.Get("X-Upstream") == "flaky"
		})
		if ejected() {
			t.Error("/status still shows the recovered target ejected")
		}
	})
}
