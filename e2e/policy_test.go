package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
)

func limit(n int) deploy.Policy {
	return deploy.Policy{Name: "rate-limit", Config: map[string]any{
		"limits": []any{map[string]any{"requests": n, "window": "minute"}}}}
}

// A global policy, a service policy, a route policy and a consumer policy
// act in the documented order, whatever the scope they are written at:
// ip-restriction before key-auth before rate-limit (so refused requests
// eat no budget), the consumer's rate limit replacing the route's once
// the consumer is known, and the consumer's name reaching the upstream
// through a global request-headers policy.
func TestPolicyOrderAndScopes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		up := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("consumer=" + r.Header.Get("X-Consumer") + " key=" + r.Header.Get("X-API-Key")))
		})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.json")
		writeConfig(t, cfg, deploy.Config{
			Upstreams: []deploy.Upstream{{Name: "api", Targets: []deploy.Target{{Address: up.addr}}}},
			Consumers: []deploy.Consumer{
				{Name: "bronze", Credentials: []deploy.Credential{{Type: "key", Key: "bronze-key"}}},
				{Name: "gold", Credentials: []deploy.Credential{{Type: "key", Key: "gold-key"}}, Policies: []deploy.Policy{limit(5)}},
			},
			GlobalPolicies: []deploy.Policy{
				{Name: "request-headers", Config: map[string]any{"set": map[string]any{"X-Consumer": "$consumer"}}},
				limit(1000),
			},
			Services: []deploy.Service{{
				Name: "api", Upstream: "api",
				Policies: []deploy.Policy{{Name: "key-auth", Config: map[string]any{"hide_credentials": true}}},
				Routes: []deploy.Route{
					{Name: "open", Paths: []string{"/open/*"}, Policies: []deploy.Policy{limit(2)}},
					{Name: "closed", Paths: []string{"/closed/*"}, Policies: []deploy.Policy{
						{Name: "ip-restriction", Config: map[string]any{"deny": []any{"127.0.0.0/8", "::1"}}}}},
				},
			}},
		})
		gw := startGateway(t, gatewayOpts{engine: engine, config: cfg, dataDir: filepath.Join(dir, "gw")})
		gw.waitReady(t)
		base := "http://" + gw.listen

		// ip-restriction runs before key-auth: a good key is still refused.
		if code, body, _ := get(t, http.DefaultClient, base+"/closed/x", "X-API-Key", "gold-key"); code != 403 || !strings.Contains(body, "forbidden") {
			t.Fatalf("denied address: %d %s", code, body)
		}
		// Unauthenticated requests are refused before they are counted.
		for i := 0; i < 5; i++ {
			if code, body, hdr := get(t, http.DefaultClient, base+"/open/x"); code != 401 || hdr.Get("X-RateLimit-Limit") != "" {
				t.Fatalf("without a key: %d %s %v", code, body, hdr)
			}
		}
		// bronze gets the route's limit of 2 (which replaces the global
		// 1000), and the upstream learns who called but not the key.
		for i := 0; i < 2; i++ {
			code, body, _ := get(t, http.DefaultClient, base+"/open/x", "X-API-Key", "bronze-key")
			if code != 200 || body != "consumer=bronze key=" {
				t.Fatalf("bronze %d: %d %q", i, code, body)
			}
		}
		if code, body, hdr := get(t, http.DefaultClient, base+"/open/x", "X-API-Key", "bronze-key"); code != 429 || hdr.Get("Retry-After") == "" {
			t.Fatalf("bronze over the route's limit: %d %s %v", code, body, hdr)
		}
		// gold's own limit of 5 replaces the route's.
		for i := 0; i < 5; i++ {
			code, body, hdr := get(t, http.DefaultClient, base+"/open/x", "X-API-Key", "gold-key")
			if code != 200 || body != "consumer=gold key=" || hdr.Get("X-RateLimit-Limit") != "5" {
				t.Fatalf("gold %d: %d %q %v", i, code, body, hdr)
			}
		}
		if code, _, _ := get(t, http.DefaultClient, base+"/open/x", "X-API-Key", "gold-key"); code != 429 {
			t.Fatalf("gold over its own limit: %d", code)
		}
	})
}

// A configuration whose policy is misconfigured is refused with the
// field's path, and the gateway keeps serving the one before.
func TestPolicyConfigErrorKeepsServing(t *testing.T) {
	up := startUpstream(t, "api", nil)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.json")
	good := deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "api", Targets: []deploy.Target{{Address: up.addr}}}},
		Services:  []deploy.Service{{Name: "api", Upstream: "api", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"}}}}},
	}
	writeConfig(t, cfg, good)
	gw := startGateway(t, gatewayOpts{config: cfg, dataDir: filepath.Join(dir, "gw")})
	gw.waitReady(t)
	before := gw.report(t).Configuration.Checksum

	bad := good
	bad.Services = []deploy.Service{{Name: "api", Upstream: "api", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"},
		Policies: []deploy.Policy{{Name: "rate-limit", Config: map[string]any{"limits": []any{map[string]any{"requests": 5, "window": "fortnight"}}}}}}}}}
	writeConfig(t, cfg, bad)
	want := `services[0].routes[0].policies[0].config.limits[0].window`
	gw.waitFor(t, 10*time.Second, "the error reported", func() bool {
		return strings.Contains(gw.out.String(), want)
	})
	if code, _, _ := get(t, http.DefaultClient, "http://"+gw.listen+"/x"); code != 200 {
		t.Fatalf("after a bad policy configuration: %d", code)
	}
	if got := gw.report(t).Configuration.Checksum; got != before {
		t.Fatalf("checksum %s, want the previous %s", got, before)
	}
}
