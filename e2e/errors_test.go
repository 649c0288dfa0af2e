package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

// The gateway's own errors are JSON with a code, on both engines: 502 for
// an unreachable target, 503 when active health checks took every target
// out, 504 when the target is too slow.
func TestGatewayErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		slow := startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				http.Error(w, "down", 500)
				return
			}
			time.Sleep(2 * time.Second)
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{
				{Name: "dead", Targets: []deploy.Target{{Address: deadAddr(t)}}},
				{Name: "slow", Targets: []deploy.Target{{Address: slow.addr}},
					Timeouts: deploy.Timeouts{Read: deploy.Duration(300 * time.Millisecond)}},
				{Name: "unhealthy", Targets: []deploy.Target{{Address: slow.addr}},
					HealthCheck: &deploy.ActiveHealthCheck{Path: "/health", Interval: deploy.Duration(100 * time.Millisecond),
						Timeout: deploy.Duration(50 * time.Millisecond), UnhealthyThreshold: 1}},
			},
			Services: []deploy.Service{
				{Name: "dead", Upstream: "dead", Routes: []deploy.Route{{Name: "dead", Paths: []string{"/dead"}}}},
				{Name: "slow", Upstream: "slow", Routes: []deploy.Route{{Name: "slow", Paths: []string{"/slow"}}}},
				{Name: "unhealthy", Upstream: "unhealthy", Routes: []deploy.Route{{Name: "unhealthy", Paths: []string{"/unhealthy"}}}},
			},
		})
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)

		errorOf := func(path string) (int, string, string) {
			resp, err := http.Get("http://" + gw.listen + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct {
					Status    int    `json:"status"`
					Code      string `json:"code"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			if e.Error.Status != resp.StatusCode || e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("GET %s: body %+v does not match status %d and X-Request-Id %q", path, e, resp.StatusCode, resp.Header.Get("X-Request-Id"))
			}
			return resp.StatusCode, e.Error.Code, resp.Header.Get("Content-Type")
		}
		gw.waitFor(t, 10*time.Second, "the unhealthy target to be taken out", func() bool {
			// Until the first probe fails, the request reaches the slow
			// target: that answer is not the one under test.
			code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/unhealthy")
			return code == 503
		})
		for _, tc := range []struct {
			path string
			code int
			name string
		}{
			{"/dead", 502, "upstream_failed"},
			{"/slow", 504, "upstream_timeout"},
			{"/unhealthy", 503, "no_healthy_target"},
			{"/nowhere", 404, "no_route"},
		} {
			code, name, ctype := errorOf(tc.path)
			if code != tc.code || name != tc.name || ctype != "application/json" {
				t.Errorf("GET %s = %d %s (%s), want %d %s", tc.path, code, name, ctype, tc.code, tc.name)
			}
		}
	})
}
