package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The example, as written.
func TestProxyExampleConfiguration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		orders := startUpstream(t, "orders", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]string{
				"path":   r.URL.Path,
				"xff":    r.Header.Get("X-Forwarded-For"),
				"proto":  r.Header.Get("X-Forwarded-Proto"),
				"fhost":  r.Header.Get("X-Forwarded-Host"),
				"reqid":  r.Header.Get("X-Request-Id"),
				"custom": r.Header.Get("X-Custom-Header"),
			})
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.yaml")
		writeFile(t, cfg, fmt.Sprintf(`
upstreams:
  - name: orders
    targets:
      - address: %s
services:
  - name: orders
    upstream: orders
    routes:
      - name: list-orders
        paths: [/orders]
        methods: [GET]
`, orders.addr))
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)
		base := "http://" + gw.listen

		code, body, hdr := get(t, http.DefaultClient, base+"/orders", "Host", "shop.example.com", "X-Custom-Header", "kept")
		if code != 200 || hdr.Get("X-Upstream") != "orders" {
			t.Fatalf("GET /orders = %d %q", code, body)
		}
		var seen map[string]string
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatal(err)
		}
		if seen["path"] != "/orders" || seen["xff"] != "127.0.0.1" || seen["proto"] != "http" ||
			seen["fhost"] != "shop.example.com" || seen["reqid"] == "" || seen["custom"] != "kept" {
			t.Errorf("upstream saw %v", seen)
		}
		if hdr.Get("X-Request-Id") != seen["reqid"] {
			t.Errorf("response X-Request-Id %q, upstream saw %q", hdr.Get("X-Request-Id"), seen["reqid"])
		}

		// A client's request id is kept; a prior X-Forwarded-For is appended to.
		_, body, _ = get(t, http.DefaultClient, base+"/orders", "X-Request-Id", "client-id-1", "X-Forwarded-For", "203.0.113.9")
		json.Unmarshal([]byte(body), &seen)
		if seen["reqid"] != "client-id-1" || seen["xff"] != "203.0.113.9, 127.0.0.1" {
			t.Errorf("upstream saw %v", seen)
		}

		for _, tc := range []struct {
			method, path string
			code         int
			errCode      string
		}{
			{"GET", "/nothing", 404, "no_route"},
			{"POST", "/orders", 404, "no_route"},
			{"GET", "/orders/1", 404, "no_route"},
		} {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Error struct {
					Status int    `json:"status"`
					Code   string `json:"code"`
				} `json:"error"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode != tc.code || e.Error.Code != tc.errCode || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s %s = %d %+v, want %d %s", tc.method, tc.path, resp.StatusCode, e, tc.code, tc.errCode)
			}
		}

		r := gw.report(t)
		if !r.Ready || r.Configuration == nil || !strings.HasPrefix(r.Configuration.Checksum, "sha256:") || r.Configuration.Routes != 1 {
			t.Errorf("status = %+v", r)
		}
		// A request is counted once its answer is written: the client may
		// read it before the counter moves.
		until(t, "/metrics counting every request", func() (bool, string) {
			resp, err := http.Get("http://" + gw.status + "/metrics")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			metrics, err := io.ReadAll(resp.Body)
			if err != nil {
				return false, err.Error()
			}
			for _, want := range []string{
				`gatehouse_gateway_requests_total{code="200",group="default",route="list-orders",service="orders"} 2`,
				`gatehouse_gateway_requests_total{code="404",group="default",route="",service=""} 3`,
				`gatehouse_gateway_request_duration_seconds_count{group="default",route="list-orders",service="orders"} 2`,
				`gatehouse_gateway_config_reloads_total{group="default",result="success"} 1`,
			} {
				if !strings.Contains(string(metrics), want) {
					return false, "lacks " + want + " in:\n" + string(metrics)
				}
			}
			return true, ""
		})
	})
}

func TestInvalidConfigurationExitsWithFieldPaths(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
upstreams:
  - name: orders
    targets:
      - address: "127.0.0.1:notaport"
services:
  - name: orders
    upstream: missing
    routes:
      - name: list-orders
        paths: [/orders, orders]
        methods: [FETCH]
`)
	cmd := exec.Command(binary, "gateway", "--config", bad, "--data-dir", filepath.Join(dir, "gw"),
		"--listen", "127.0.0.1:0", "--status-listen", "127.0.0.1:0", "--tls-listen", "")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gateway with an invalid file kept running")
	}
	if err == nil {
		t.Fatalf("gateway exited 0 with an invalid file:\n%s", out)
	}
	for _, want := range []string{
		"upstreams[0].targets[0].address",
		"services[0].upstream",
		`services[0].routes[0].paths[1]: must start with "/"`,
		"services[0].routes[0].methods[0]",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
