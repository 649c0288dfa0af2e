package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
	"github.com/gatehouse/gatehouse/internal/waitfor"
)

// serveOn serves cfg on a loopback listener of engine ("fasthttp" or
// "evloop"; the latter hands blocking routes to a fasthttp server, as the
// gateway does).
func serveOn(t *testing.T, engine string, cfg *deploy.Config) string {
	t.Helper()
	p := newTestProxy(t, cfg)
	fast := &fasthttp.Server{Handler: p.ServeHTTP, StreamRequestBody: true}
	t.Cleanup(func() { fast.Shutdown() })
	if engine == "fasthttp" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fast.Serve(ln)
		return "http://" + ln.Addr().String()
	}
	e, err := evloop.Listen(evloop.Config{
		Addr: "127.0.0.1:0", Loops: 1, Dispatcher: p.Dispatcher(), Logger: hclog.NewNullLogger(),
		Handoff: func(c net.Conn) { fast.ServeConn(c) },
	})
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	return "http://" + e.Addr().String()
}

var engines = []string{"fasthttp", "evloop"}

// logCollector is an http-log endpoint keeping the entries it gets.
type logCollector struct {
	mu      sync.Mutex
	entries []map[string]any
}

func (lc *logCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			lc.entries = append(lc.entries, e)
		}
	}
}

func (lc *logCollector) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	var got []map[string]any
	waitfor.Cond(t, 10*time.Second, fmt.Sprintf("%d log entries", n), func() (bool, string) {
		lc.mu.Lock()
		got = append([]map[string]any(nil), lc.entries...)
		lc.mu.Unlock()
		return len(got) >= n, fmt.Sprintf("%d arrived", len(got))
	})
	return got
}

func do(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// Authentication, a consumer's own rate limit replacing the service's,
// the rate-limit headers and the log entry with the consumer, on both
// engines.
func TestPoliciesAuthLimitLog(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			up := echoUpstream(t)
			lc := &logCollector{}
			logs := httptest.NewServer(lc)
			t.Cleanup(logs.Close)
			limit := func(n int) deploy.Policy {
				return deploy.Policy{Name: "rate-limit", Config: map[string]any{
					"limits": []any{map[string]any{"requests": n, "window": "minute"}}}}
			}
			cfg := &deploy.Config{
				Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: up}}}},
				Consumers: []deploy.Consumer{
					{Name: "bronze", Credentials: []deploy.Credential{{Type: "key", Key: "bronze-key"}}},
					{Name: "gold", Credentials: []deploy.Credential{{Type: "key", Key: "gold-key"}}, Policies: []deploy.Policy{limit(100)}},
				},
				GlobalPolicies: []deploy.Policy{{Name: "http-log", Config: map[string]any{
					"endpoint": logs.URL, "flush_interval": "10ms"}}},
				Services: []deploy.Service{{Name: "s", Upstream: "u",
					Policies: []deploy.Policy{{Name: "key-auth", Config: map[string]any{"hide_credentials": true}}, limit(2)},
					Routes:   []deploy.Route{{Name: "r", Paths: []string{"/*"}}}}},
			}
			base := serveOn(t, engine, cfg)

			resp, body := do(t, "GET", base+"/a")
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("X-Request-Id") == "" ||
				!strings.Contains(body, `"code":"unauthorized"`) {
				t.Fatalf("without a key: %d %v %s", resp.StatusCode, resp.Header, body)
			}
			for i := 0; i < 2; i++ {
				resp, body = do(t, "GET", base+"/a", "X-API-Key", "bronze-key")
				if resp.StatusCode != 200 {
					t.Fatalf("bronze request %d: %d %s", i, resp.StatusCode, body)
				}
				var s seen
				json.Unmarshal([]byte(body), &s)
				if s.Headers.Get("X-API-Key") != "" {
					t.Fatalf("the key reached the upstream despite hide_credentials: %v", s.Headers)
				}
				if got := resp.Header.Get("X-RateLimit-Remaining"); got != []string{"1", "0"}[i] {
					t.Fatalf("bronze request %d: X-RateLimit-Remaining %q", i, got)
				}
			}
			resp, body = do(t, "GET", base+"/a", "X-API-Key", "bronze-key")
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "rate_limited") {
				t.Fatalf("bronze over its limit: %d %v %s", resp.StatusCode, resp.Header, body)
			}
			for i := 0; i < 5; i++ {
				if resp, body = do(t, "GET", base+"/a", "X-API-Key", "gold-key"); resp.StatusCode != 200 {
					t.Fatalf("gold request %d: %d %s", i, resp.StatusCode, body)
				}
			}
			if got := resp.Header.Get("X-RateLimit-Limit"); got != "100" {
				t.Fatalf("gold's X-RateLimit-Limit %q, want its own limit 100", got)
			}
			entries := lc.wait(t, 9)
			consumers := map[string]int{}
			for _, e := range entries {
				c, _ := e["consumer"].(string)
				consumers[c+" "+jsonNumber(e["status"])]++
			}
			want := map[string]int{" 401": 1, "bronze 200": 2, "bronze 429": 1, "gold 200": 5}
			for k, n := range want {
				if consumers[k] != n {
					t.Fatalf("log entries by consumer and status %v, want %v", consumers, want)
				}
			}
		})
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// upstreamWith answers with the request it saw and a header of its own.
func upstreamWith(t *testing.T, name string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", name)
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("X-Old", "o")
		json.NewEncoder(w).Encode(map[string]any{"uri": r.URL.RequestURI(), "method": r.Method, "host": r.Host,
			"headers": r.Header, "body": len(body)})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// The transforming policies on both engines: request and response header
// edits (with the consumer in a value, renames, removals of the
// upstream's headers), path/host/method rewriting, a canary by header,
// CORS preflights and headers, chunked bodies over a size limit.
func TestPoliciesTransform(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			main, canary := upstreamWith(t, "main"), upstreamWith(t, "canary")
			cfg := &deploy.Config{
				Upstreams: []deploy.Upstream{
					{Name: "main", Targets: []deploy.Target{{Address: main}}},
					{Name: "canary", Targets: []deploy.Target{{Address: canary}}},
				},
				Consumers: []deploy.Consumer{{Name: "alice", Credentials: []deploy.Credential{{Type: "key", Key: "alice-key"}}}},
				GlobalPolicies: []deploy.Policy{
					{Name: "cors", Config: map[string]any{"origins": []any{"https://app.example.com"}}},
					{Name: "request-size-limit", Config: map[string]any{"max_bytes": 10}},
				},
				Services: []deploy.Service{{Name: "s", Upstream: "main",
					Policies: []deploy.Policy{
						{Name: "key-auth"},
						{Name: "request-headers", Config: map[string]any{
							"set": map[string]any{"X-Consumer": "$consumer"}, "remove": []any{"X-Drop"},
							"rename": map[string]any{"X-Client-Old": "X-Client-New"}}},
						{Name: "response-headers", Config: map[string]any{
							"remove": []any{"X-Internal"}, "set": map[string]any{"X-Served-By": "gatehouse"},
							"rename": map[string]any{"X-Old": "X-New"}}},
						{Name: "traffic-split", Config: map[string]any{"rules": []any{map[string]any{
							"match":     []any{map[string]any{"header": "X-Canary", "values": []any{"1"}}},
							"upstreams": []any{map[string]any{"upstream": "canary", "weight": 100}}}}}},
					},
					Routes: []deploy.Route{
						{Name: "r", Paths: []string{"/api/*"}, StripPrefix: true},
						{Name: "rw", Paths: []string{"/v1/*"}, Policies: []deploy.Policy{{Name: "proxy-rewrite", Config: map[string]any{
							"regex": "^/v1/(.*)$", "replacement": "/internal/$1", "host": "orders.internal", "method": "POST"}}}},
					}}},
			}
			base := serveOn(t, engine, cfg)
			var saw struct {
				URI, Method, Host string
				Headers           http.Header
				Body              int
			}
			decode := func(body string) {
				saw.Headers = nil
				if err := json.Unmarshal([]byte(body), &saw); err != nil {
					t.Fatalf("upstream answer %q: %v", body, err)
				}
			}

			resp, body := do(t, "GET", base+"/api/x", "X-API-Key", "alice-key", "X-Drop", "1", "X-Client-Old", "v",
				"Origin", "https://app.example.com")
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			decode(body)
			if saw.URI != "/x" || saw.Headers.Get("X-Consumer") != "alice" || saw.Headers.Get("X-Drop") != "" ||
				saw.Headers.Get("X-Client-New") != "v" || saw.Headers.Get("X-Client-Old") != "" || saw.Headers.Get("X-Request-Id") == "" {
				t.Fatalf("upstream saw %+v", saw)
			}
			h := resp.Header
			if h.Get("X-Upstream") != "main" || h.Get("X-Internal") != "" || h.Get("X-Served-By") != "gatehouse" ||
				h.Get("X-New") != "o" || h.Get("X-Old") != "" || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
				t.Fatalf("response headers %v", h)
			}

			if resp, body = do(t, "GET", base+"/api/x", "X-API-Key", "alice-key", "X-Canary", "1"); resp.Header.Get("X-Upstream") != "canary" {
				t.Fatalf("canary request went to %q: %s", resp.Header.Get("X-Upstream"), body)
			}

			resp, body = do(t, "GET", base+"/v1/orders/7?q=1", "X-API-Key", "alice-key")
			decode(body)
			if saw.URI != "/internal/orders/7?q=1" || saw.Method != "POST" || saw.Host != "orders.internal" {
				t.Fatalf("rewritten request: %+v", saw)
			}

			// A preflight is answered by the gateway, before authentication.
			resp, body = do(t, "OPTIONS", base+"/api/x", "Origin", "https://app.example.com", "Access-Control-Request-Method", "PUT")
			if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") == "" || resp.Header.Get("X-Upstream") != "" {
				t.Fatalf("preflight: %d %v %s", resp.StatusCode, resp.Header, body)
			}
			// A refusal carries the CORS headers, so a page can read it.
			resp, _ = do(t, "GET", base+"/api/x", "Origin", "https://app.example.com")
			if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
				t.Fatalf("401 without CORS headers: %d %v", resp.StatusCode, resp.Header)
			}

			for _, tt := range []struct {
				size int
				want int
			}{{10, 200}, {11, 413}} {
				req, _ := http.NewRequest("POST", base+"/api/upload", io.MultiReader(strings.NewReader(strings.Repeat("x", tt.size))))
				req.Header.Set("X-API-Key", "alice-key")
				req.ContentLength = -1 // chunked
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode != tt.want {
					t.Fatalf("chunked body of %d bytes: %d %s, want %d", tt.size, r.StatusCode, b, tt.want)
				}
				if tt.want == 200 {
					decode(string(b))
					if saw.Body != tt.size {
						t.Fatalf("upstream got %d bytes, want %d", saw.Body, tt.size)
					}
				}
			}
		})
	}
}

// A key sent in the query string is taken out of it on both engines.
func TestPoliciesQueryKeyHidden(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			up := echoUpstream(t)
			base := serveOn(t, engine, &deploy.Config{
				Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: up}}}},
				Consumers: []deploy.Consumer{{Name: "c", Credentials: []deploy.Credential{{Type: "key", Key: "k1"}}}},
				Services: []deploy.Service{{Name: "s", Upstream: "u",
					Policies: []deploy.Policy{{Name: "key-auth", Config: map[string]any{"query": "apikey", "hide_credentials": true}}},
					Routes:   []deploy.Route{{Name: "r", Paths: []string{"/*"}}}}},
			})
			resp, body := do(t, "GET", base+"/x?a=1&apikey=k1&b=2")
			var s seen
			json.Unmarshal([]byte(body), &s)
			if resp.StatusCode != 200 || s.URI != "/x?a=1&b=2" {
				t.Fatalf("%d, upstream saw %q", resp.StatusCode, s.URI)
			}
		})
	}
}
