package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/internal/testaddr"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/policy/catalog"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// seen is what the test upstream reports about a request.
type seen struct {
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
}

func echoUpstream(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		json.NewEncoder(w).Encode(seen{URI: r.URL.RequestURI(), Headers: r.Header})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// newTestProxy compiles cfg into a Proxy, as the gateway does on apply.
func newTestProxy(t testing.TB, cfg *deploy.Config) *Proxy {
	t.Helper()
	if err := cfg.Validate(catalog.Checker{}); err != nil {
		t.Fatal(err)
	}
	m := metrics.NewGateway(prometheus.NewRegistry(), "test")
	reg := upstream.NewRegistry(hclog.NewNullLogger())
	t.Cleanup(reg.Close)
	ups, err := reg.Update(cfg.Upstreams)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Compile(cfg, "sum", ups, m, &PolicyEnv{Resources: policytest.NewResources(t)})
	if err != nil {
		t.Fatal(err)
	}
	p := New(hclog.NewNullLogger(), m)
	p.Swap(snap)
	return p
}

// serve serves cfg with a Proxy on a loopback fasthttp listener.
func serve(t *testing.T, cfg *deploy.Config) string {
	t.Helper()
	p := newTestProxy(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: p.ServeHTTP, StreamRequestBody: true}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestForwarding(t *testing.T) {
	addr := echoUpstream(t)
	dead := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}()
	base := serve(t, &deploy.Config{
		Upstreams: []deploy.Upstream{
			{Name: "echo", Targets: []deploy.Target{{Address: addr}}, Timeouts: deploy.Timeouts{Read: deploy.Duration(200 * time.Millisecond)}},
			{Name: "half-dead", Targets: []deploy.Target{{Address: dead}, {Address: addr}}, Retries: 1},
		},
		Services: []deploy.Service{
			{Name: "s", Upstream: "echo", Routes: []deploy.Route{
				{Name: "strip", Paths: []string{"/api/*"}, StripPrefix: true},
				{Name: "rewrite", Paths: []string{"/users/{id}/profile"}, Rewrite: "/profiles/{id}"},
				{Name: "plain", Paths: []string{"/plain", "/slow"}},
			}},
			{Name: "retry", Upstream: "half-dead", Routes: []deploy.Route{
				{Name: "retry", Paths: []string{"/retry"}},
			}},
		},
	})
	tests := []struct {
		name      string
		method    string
		path      string
		header    map[string]string
		code      int
		uri       string   // what the upstream saw
		absent    []string // headers the upstream must not see
		errorCode string
	}{
		{name: "strip prefix keeps the query", method: "GET", path: "/api/v1/items?q=1", code: 200, uri: "/v1/items?q=1"},
		{name: "strip prefix to root", method: "GET", path: "/api", code: 200, uri: "/"},
		{name: "rewrite with parameter", method: "GET", path: "/users/42/profile", code: 200, uri: "/profiles/42"},
		{name: "normalised path", method: "GET", path: "/x/../plain", code: 200, uri: "/plain"},
		{name: "hop-by-hop headers dropped", method: "GET", path: "/plain", code: 200, uri: "/plain",
			header: map[string]string{"Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic eA==", "TE": "trailers"},
			absent: []string{"Keep-Alive", "Proxy-Authorization", "Te"}},
		{name: "read timeout is 504", method: "GET", path: "/slow", code: 504, errorCode: "upstream_timeout"},
		{name: "idempotent retried past a dead target", method: "GET", path: "/retry", code: 200, uri: "/retry"},
		{name: "idempotent retried past a dead target again", method: "GET", path: "/retry", code: 200, uri: "/retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if tt.errorCode != "" {
				if !strings.Contains(string(body), `"code":"`+tt.errorCode+`"`) {
					t.Fatalf("body %s lacks code %s", body, tt.errorCode)
				}
				return
			}
			var s seen
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if s.URI != tt.uri {
				t.Errorf("upstream saw %q, want %q", s.URI, tt.uri)
			}
			for _, h := range tt.absent {
				if v := s.Headers.Get(h); v != "" {
					t.Errorf("upstream saw hop-by-hop header %s: %q", h, v)
				}
			}
		})
	}
}

// A POST is never sent twice: with one dead target of two, round robin
// gives it the dead one within two requests, and the client sees 502.
func TestNonIdempotentNotRetried(t *testing.T) {
	addr := echoUpstream(t)
	dead := testaddr.Dead(t)
	base := serve(t, &deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: dead}, {Address: addr}}, Retries: 3}},
		Services:  []deploy.Service{{Name: "s", Upstream: "u", Routes: []deploy.Route{{Name: "r", Paths: []string{"/*"}}}}},
	})
	codes := map[int]int{}
	for i := 0; i < 2; i++ {
		resp, err := http.Post(base+"/orders", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[502] != 1 || codes[200] != 1 {
		t.Fatalf("status counts %v, want one 502 and one 200", codes)
	}
}

func TestParseRewrite(t *testing.T) {
	tests := []struct {
		in   string
		want []rewritePart
	}{
		{"", nil},
		{"/static", []rewritePart{{literal: "/static"}}},
		{"/p/{id}", []rewritePart{{literal: "/p/"}, {param: "id"}}},
		{"/{a}/x/{b}.json", []rewritePart{{literal: "/"}, {param: "a"}, {literal: "/x/"}, {param: "b"}, {literal: ".json"}}},
	}
	for _, tt := range tests {
		got := parseRewrite(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("parseRewrite(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("parseRewrite(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}
