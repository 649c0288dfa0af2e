package proxy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/evloop"
)

func testDispatcher(t testing.TB, cfg *deploy.Config) *Dispatcher {
	return newTestProxy(t, cfg).Dispatcher()
}

func request(method, path, query string, headers ...string) *evloop.Request {
	r := &evloop.Request{
		Method:     []byte(method),
		Path:       []byte(path),
		Query:      []byte(query),
		Minor:      1,
		Host:       []byte("api.example.com"),
		RemoteAddr: netip.MustParseAddrPort("192.0.2.7:40000"),
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, evloop.Header{Name: []byte(headers[i]), Value: []byte(headers[i+1])})
	}
	return r
}

func TestDispatchBuildsHead(t *testing.T) {
	d := testDispatcher(t, &deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: "10.0.0.1:80"}}}},
		Services: []deploy.Service{{Name: "s", Upstream: "u", Routes: []deploy.Route{
			{Name: "strip", Paths: []string{"/api/*"}, StripPrefix: true},
			{Name: "rewrite", Paths: []string{"/users/{id}"}, Rewrite: "/u/{id}/profile"},
		}}},
	})
	tests := []struct {
		name     string
		req      *evloop.Request
		target   string
		status   int
		contains []string
		absent   []string
	}{
		{
			name:   "strip prefix, headers",
			req:    request("GET", "/api/v1/x%20y", "a=1", "Connection", "keep-alive", "X-Forwarded-For", "203.0.113.1", "Accept", "*/*", "Keep-Alive", "5", "X-Request-Id", "abc"),
			target: "10.0.0.1:80",
			contains: []string{"GET /v1/x%20y?a=1 HTTP/1.1\r\n", "Accept: */*\r\n", "X-Forwarded-For: 203.0.113.1, 192.0.2.7\r\n",
				"X-Forwarded-Proto: http\r\n", "X-Forwarded-Host: api.example.com\r\n", "X-Request-Id: abc\r\n\r\n"},
			absent: []string{"Connection:", "Keep-Alive:"},
		},
		{
			name:     "rewrite with parameter",
			req:      request("GET", "/users/42", ""),
			target:   "10.0.0.1:80",
			contains: []string{"GET /u/42/profile HTTP/1.1\r\n"},
		},
		{
			name:     "dot segments resolved before routing",
			req:      request("GET", "/api/../users/7", ""),
			target:   "10.0.0.1:80",
			contains: []string{"GET /u/7/profile HTTP/1.1\r\n"},
		},
		{
			name:     "no route",
			req:      request("GET", "/nothing", ""),
			status:   404,
			contains: []string{`"code":"no_route"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex evloop.Exchange
			d.Dispatch(tt.req, &ex)
			if ex.Target != tt.target || (tt.status != 0 && ex.Status != tt.status) {
				t.Fatalf("target %q status %d, want %q %d", ex.Target, ex.Status, tt.target, tt.status)
			}
			out := string(ex.Head)
			if tt.status != 0 {
				out = string(ex.Body)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("lacks %q in:\n%s", want, out)
				}
			}
			for _, no := range tt.absent {
				if strings.Contains(out, no) {
					t.Errorf("has %q in:\n%s", no, out)
				}
			}
			if !strings.HasPrefix(string(ex.ResponseHeaders), "X-Request-Id: ") {
				t.Errorf("response headers %q lack the request id", ex.ResponseHeaders)
			}
			d.Done(&ex, evloop.Result{Status: 200})
		})
	}
}

// The head states the body's framing once, in its canonical form, leaves
// out the expectation the engine answers, and only idempotent methods may
// be replayed.
func TestDispatchFramingAndReplay(t *testing.T) {
	d := testDispatcher(t, &deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: "10.0.0.1:80"}}}},
		Services:  []deploy.Service{{Name: "s", Upstream: "u", Routes: []deploy.Route{{Name: "all", Paths: []string{"/*"}}}}},
	})
	withLength := func(r *evloop.Request, n int64) *evloop.Request { r.ContentLength = n; return r }
	tests := []struct {
		name       string
		req        *evloop.Request
		replayable bool
		framing    string // the only framing header line the head may have
	}{
		{"GET", request("GET", "/a", ""), true, ""},
		{"HEAD", request("HEAD", "/a", ""), true, ""},
		{"DELETE", request("DELETE", "/a", ""), true, ""},
		{"POST without a body", withLength(request("POST", "/a", "", "Content-Length", "0"), 0), false, "Content-Length: 0\r\n"},
		{"PATCH", withLength(request("PATCH", "/a", "", "Content-Length", "2"), 2), false, "Content-Length: 2\r\n"},
		{"repeated length", withLength(request("PUT", "/a", "", "Content-Length", "5", "content-length", "5"), 5), true, "Content-Length: 5\r\n"},
		{"chunked", withLength(request("POST", "/a", "", "Transfer-Encoding", "CHUNKED", "Expect", "100-continue"), -1), false,
			"Transfer-Encoding: chunked\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex evloop.Exchange
			d.Dispatch(tt.req, &ex)
			head := strings.ToLower(string(ex.Head))
			if ex.Replayable != tt.replayable {
				t.Errorf("Replayable %v, want %v", ex.Replayable, tt.replayable)
			}
			if n := strings.Count(head, "content-length:") + strings.Count(head, "transfer-encoding:"); n != 0 && tt.framing == "" || n > 1 {
				t.Errorf("%d framing headers in:\n%s", n, ex.Head)
			}
			if tt.framing != "" && !strings.Contains(string(ex.Head), "\r\n"+tt.framing) {
				t.Errorf("lacks %q in:\n%s", tt.framing, ex.Head)
			}
			if strings.Contains(head, "expect:") {
				t.Errorf("Expect reached the head:\n%s", ex.Head)
			}
			d.Done(&ex, evloop.Result{Status: 200})
		})
	}
}

// BenchmarkDispatch is the proxy's share of a request on the evloop
// engine: route, pick, build the head, record metrics.
func BenchmarkDispatch(b *testing.B) {
	d := testDispatcher(b, &deploy.Config{
		Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80"}}}},
		Services: []deploy.Service{{Name: "s", Upstream: "u", Routes: []deploy.Route{
			{Name: "orders", Paths: []string{"/orders/{id}"}, Methods: []string{"GET"}},
		}}},
	})
	req := request("GET", "/orders/42", "x=1", "Accept", "*/*", "User-Agent", "bench")
	var ex evloop.Exchange
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ex.Head, ex.ResponseHeaders = ex.Head[:0], ex.ResponseHeaders[:0]
		d.Dispatch(req, &ex)
		d.Done(&ex, evloop.Result{Status: 200})
	}
}

// BenchmarkDispatchPolicies is BenchmarkDispatch with the policy run of
// bench/proxy.sh: key-auth, a local rate limit far above the load, and
// request-id.
func BenchmarkDispatchPolicies(b *testing.B) {
	d := testDispatcher(b, &deploy.Config{
		Upstreams:      []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80"}}}},
		Consumers:      []deploy.Consumer{{Name: "bench", Credentials: []deploy.Credential{{Type: "key", Key: "bench-key"}}}},
		GlobalPolicies: []deploy.Policy{{Name: "request-id"}},
		Services: []deploy.Service{{Name: "s", Upstream: "u",
			Policies: []deploy.Policy{
				{Name: "key-auth"},
				{Name: "rate-limit", Config: map[string]any{"limits": []any{map[string]any{"requests": 1 << 30, "window": "second"}}}},
			},
			Routes: []deploy.Route{{Name: "orders", Paths: []string{"/orders/{id}"}, Methods: []string{"GET"}}},
		}},
	})
	req := request("GET", "/orders/42", "x=1", "Accept", "*/*", "User-Agent", "bench", "X-API-Key", "bench-key")
	var ex evloop.Exchange
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ex.Head, ex.ResponseHeaders = ex.Head[:0], ex.ResponseHeaders[:0]
		d.Dispatch(req, &ex)
		if ex.Target == "" {
			b.Fatalf("answered locally: %d %s", ex.Status, ex.Body)
		}
		ex.Filter.ResponseStatus(&ex, 200)
		d.Done(&ex, evloop.Result{Status: 200})
	}
}
