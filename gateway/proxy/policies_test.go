package proxy

import (
	"bufio"
	"context"
	"encoding/json"
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
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lc.mu.Lock()
		got := append([]map[string]any(nil), lc.entries...)
		lc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log entries: fewer than %d arrived", n)
	return nil
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
