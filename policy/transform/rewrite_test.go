package transform

import (
	"testing"

	"github.com/gatehouse/gatehouse/policy/policytest"
)

func TestProxyRewritePath(t *testing.T) {
	tests := []struct {
		config, path string
		want         string // "" when the path is left to the route
	}{
		{`{"path": "/v2/items"}`, "/api/items", "/v2/items"},
		{`{"regex": "^/api/v1/(\\w+)/(?P<id>\\d+)$", "replacement": "/internal/$1/${id}"}`, "/api/v1/orders/42", "/internal/orders/42"},
		{`{"regex": "^/api/v1/(\\w+)/(?P<id>\\d+)$", "replacement": "/internal/$1/${id}"}`, "/api/v2/orders/42", ""},
		// Only the first match is replaced; the rest of the path stays.
		{`{"regex": "/old/", "replacement": "/new/"}`, "/x/old/old/y", "/x/new/old/y"},
		{`{"regex": "^/api", "replacement": ""}`, "/api/x", "/x"},
		// A result without its leading "/" gets one.
		{`{"regex": "^/api", "replacement": ""}`, "/api", "/"},
		{`{"regex": "^/(.*)$", "replacement": "$1"}`, "/a/b", "/a/b"},
		{`{"regex": "^/(.*)$", "replacement": "/$1"}`, "/a/b", "/a/b"},
		{`{"regex": "^/(a)?b", "replacement": "/[$1]"}`, "/bc", "/[]c"},
		{`{"regex": "^/x", "replacement": "/$$a"}`, "/x", "/$a"},
		{`{"regex": "^/x(\\d)", "replacement": "/y${1}0"}`, "/x7", "/y70"},
		{`{"host": "orders_api:8080"}`, "/a", ""},
	}
	for _, tt := range tests {
		p := policytest.Build(t, proxyRewriteKind, tt.config, nil)
		c, ok := run(p, policytest.Get(tt.path), nil)
		if !ok {
			t.Fatalf("%s: refused", tt.config)
		}
		got, set := c.Path()
		switch {
		case tt.want == "" && set:
			t.Errorf("%s on %s: path set to %q, want it left to the route", tt.config, tt.path, got)
		case tt.want != "" && (!set || string(got) != tt.want):
			t.Errorf("%s on %s: path %q (set %v), want %q", tt.config, tt.path, got, set, tt.want)
		}
	}
}

func TestProxyRewriteHostMethod(t *testing.T) {
	p := policytest.Build(t, proxyRewriteKind, `{"host": "internal.example.com:8080", "method": "POST"}`, nil)
	c, _ := run(p, policytest.Get("/a"), nil)
	if h, ok := c.Host(); !ok || string(h) != "internal.example.com:8080" {
		t.Errorf("host %q (%v)", h, ok)
	}
	if m, ok := c.Method(); !ok || string(m) != "POST" {
		t.Errorf("method %q (%v)", m, ok)
	}
	if _, ok := c.Path(); ok {
		t.Errorf("path set without path or regex")
	}
	c, _ = run(policytest.Build(t, proxyRewriteKind, `{"path": "/b"}`, nil), policytest.Get("/a"), nil)
	if _, ok := c.Host(); ok {
		t.Errorf("host set without host")
	}
	if _, ok := c.Method(); ok {
		t.Errorf("method set without method")
	}
}

func TestProxyRewriteConfigErrors(t *testing.T) {
	wantErrors(t, proxyRewriteKind, `{}`, nil, `at least one of "path", "regex", "host" and "method" is required`)
	wantErrors(t, proxyRewriteKind, `{"path": "v2"}`, nil, `path: must start with "/"`)
	wantErrors(t, proxyRewriteKind, `{"path": "/v2?x=1"}`, nil, `path: must not hold "?" or "#": the client's query string is kept`)
	wantErrors(t, proxyRewriteKind, `{"path": 2}`, nil, `path: must be a string, got an integer`)
	wantErrors(t, proxyRewriteKind, `{"path": "/a", "regex": "a", "replacement": "b"}`, nil,
		`regex: not allowed with "path": the path is either replaced or rewritten`)
	wantErrors(t, proxyRewriteKind, `{"regex": "a"}`, nil, `replacement: required with "regex"`)
	wantErrors(t, proxyRewriteKind, `{"replacement": "a"}`, nil, `regex: required with "replacement"`)
	wantErrors(t, proxyRewriteKind, `{"regex": "(", "replacement": "x"}`, nil,
		"regex: invalid regular expression: missing closing ): `(`")
	wantErrors(t, proxyRewriteKind, `{"regex": "(a)", "replacement": "/$2"}`, nil, `replacement: the regex has no group $2: it has 1`)
	wantErrors(t, proxyRewriteKind, `{"regex": "(a)", "replacement": "/${name}"}`, nil, `replacement: the regex has no group named "name"`)
	wantErrors(t, proxyRewriteKind, `{"regex": "(a)", "replacement": "/$x"}`, nil,
		`replacement: $ at offset 1 must start a group such as $1 or ${name}; $$ is a literal $`)
	wantErrors(t, proxyRewriteKind, `{"regex": "(a)", "replacement": "/${1"}`, nil, `replacement: unclosed ${ at offset 1`)
	wantErrors(t, proxyRewriteKind, `{"host": "a b", "method": "FETCH", "uri": "/"}`, nil,
		`host: must be a host name or address with an optional port, such as "api.internal" or "10.0.0.1:8080", got "a b"`,
		`method: must be "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" or "OPTIONS"`,
		`uri: unknown field`)
}

func BenchmarkProxyRewrite(b *testing.B) {
	b.Run("path+host", func(b *testing.B) {
		p := policytest.Build(b, proxyRewriteKind, `{"path": "/v2/items", "host": "internal.example.com"}`, nil)
		benchRun(b, p, newBenchReq("GET", "/api/items", "192.0.2.1"), nil)
	})
	b.Run("regex", func(b *testing.B) {
		p := policytest.Build(b, proxyRewriteKind, `{"regex": "^/api/v1/(\\w+)/(\\d+)$", "replacement": "/internal/$1/$2"}`, nil)
		benchRun(b, p, newBenchReq("GET", "/api/v1/orders/42", "192.0.2.1"), nil)
	})
}
