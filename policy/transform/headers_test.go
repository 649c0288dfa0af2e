package transform

import (
	"net/netip"
	"testing"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// identified sets what the template variables read.
func identified(name string) func(c *policy.Context) {
	var consumer *policy.Consumer
	if name != "" {
		consumer = &policy.Consumer{Name: name}
	}
	id := []byte("id-1")
	return func(c *policy.Context) {
		c.Service, c.Route, c.RequestID = "orders", "orders-api", id
		if consumer != nil {
			c.Identify(consumer, "key")
		}
	}
}

const headerConfig = `{
	"remove": ["X-Internal"],
	"rename": {"X-Old": "X-New"},
	"set": {"X-Consumer": "$consumer", "X-Route": "${route}/$service", "X-Price": "$$5", "X-Static": "on"},
	"add": {"X-Tag": "edge $client_ip id=$request_id"}
}`

func TestRequestHeaders(t *testing.T) {
	p := policytest.Build(t, requestHeadersKind, headerConfig, nil)
	tests := []struct {
		name     string
		consumer string
		req      *policytest.Request
		want     map[string][]string
	}{
		{"identified", "alice", policytest.Get("/x", "X-Internal", "secret", "X-Old", "v", "X-Tag", "first", "X-Static", "off"), map[string][]string{
			"x-internal": nil,
			"x-old":      nil,
			"x-new":      {"v"},
			"x-consumer": {"alice"},
			"x-route":    {"orders-api/orders"},
			"x-price":    {"$5"},
			"x-static":   {"on"},
			"x-tag":      {"first", "edge 192.0.2.1 id=id-1"},
		}},
		{"anonymous", "", policytest.Get("/x"), map[string][]string{
			"x-new":      nil,
			"x-consumer": {""},
			"x-tag":      {"edge 192.0.2.1 id=id-1"},
		}},
	}
	for _, tt := range tests {
		c, ok := run(p, tt.req, identified(tt.consumer))
		if !ok {
			t.Fatalf("%s: refused", tt.name)
		}
		if len(c.ResponseEdits()) != 0 {
			t.Errorf("%s: edited the response", tt.name)
		}
		wantHeaders(t, tt.name, policytest.RequestHeaders(c, tt.req), tt.want)
	}
}

// Edits go remove, rename, set, add, names in order within each.
func TestHeaderEditOrder(t *testing.T) {
	c, _ := run(policytest.Build(t, requestHeadersKind, headerConfig, nil), policytest.Get("/x"), identified("alice"))
	var got []string
	for _, e := range c.RequestEdits() {
		got = append(got, [...]string{"set", "add", "del", "rename"}[e.Op]+" "+e.Name)
	}
	want := []string{"del X-Internal", "rename X-Old", "set X-Consumer", "set X-Price", "set X-Route", "set X-Static", "add X-Tag"}
	if len(got) != len(want) {
		t.Fatalf("edits %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("edits %q, want %q", got, want)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	p := policytest.Build(t, responseHeadersKind, `{"remove": ["Server"], "rename": {"X-Upstream-Time": "X-Time"}, "set": {"Cache-Control": "no-store", "X-Served-For": "$consumer"}, "add": {"Link": "</help>; rel=help"}}`, nil)
	req := policytest.Get("/x")
	req.Addr = netip.MustParseAddr("2001:db8::1")
	c, ok := run(p, req, identified("bob"))
	if !ok || len(c.ResponseEdits()) != 0 {
		t.Fatalf("Run passed %v with %d response edits: it must leave the work to Respond", ok, len(c.ResponseEdits()))
	}
	p.(policy.Responder).Respond(c, 502)
	got := policytest.ResponseHeaders(c, map[string][]string{
		"Server": {"upstream/1"}, "X-Upstream-Time": {"12"}, "Cache-Control": {"max-age=60"}, "Link": {"</>; rel=home"},
	})
	wantHeaders(t, "response", got, map[string][]string{
		"server":          nil,
		"x-upstream-time": nil,
		"x-time":          {"12"},
		"cache-control":   {"no-store"},
		"x-served-for":    {"bob"},
		"link":            {"</>; rel=home", "</help>; rel=help"},
	})
	if len(c.RequestEdits()) != 0 {
		t.Errorf("response-headers edited the request")
	}
}

func TestHeadersConfigErrors(t *testing.T) {
	for _, kind := range []*policy.Kind{requestHeadersKind, responseHeadersKind} {
		wantErrors(t, kind, `{}`, nil, `at least one of "remove", "rename", "set" and "add" is required`)
		wantErrors(t, kind, `{"remove": []}`, nil, `at least one of "remove", "rename", "set" and "add" is required`)
		wantErrors(t, kind, `{"set": ["X-A"], "add": {"X-B": 1}, "replace": {}}`, nil,
			`set: must be a mapping of strings, got a list`,
			`add.X-B: must be a string, got an integer`,
			`replace: unknown field`)
	}
	wantErrors(t, requestHeadersKind, `{
		"remove": ["Connection", "Bad Name", "x-request-id"],
		"rename": {"X-C": "Content-Length", "Transfer-Encoding": "X-D"},
		"set": {"Host": "x", "X-A": "a\nb", "X-B": "$foo", "X-E": "${consumer", "X-F": "$"},
		"add": {"X-Forwarded-For": "1"}
	}`, nil,
		`remove[0]: Connection cannot be edited: a hop-by-hop header, managed by the gateway`,
		`remove[1]: "Bad Name" is not a valid header name`,
		`remove[2]: x-request-id cannot be edited: set by the gateway; use the request-id policy`,
		`rename.Transfer-Encoding: Transfer-Encoding cannot be edited: a hop-by-hop header, managed by the gateway`,
		`rename.X-C: Content-Length cannot be edited: set by the gateway from the body`,
		`set.Host: Host cannot be edited: set with proxy-rewrite's host`,
		`set.X-A: must not contain control characters`,
		`set.X-B: unknown variable "$foo" (known: $consumer, $request_id, $client_ip, $route, $service; $$ is a literal $)`,
		`set.X-E: unclosed ${ at offset 0`,
		`set.X-F: unknown variable "$" (known: $consumer, $request_id, $client_ip, $route, $service; $$ is a literal $)`,
		`add.X-Forwarded-For: X-Forwarded-For cannot be edited: set by the gateway`)
	// The forwarding headers are the request's only.
	policytest.Build(t, responseHeadersKind, `{"add": {"X-Forwarded-For": "1"}}`, nil)
}

func BenchmarkRequestHeaders(b *testing.B) {
	req := newBenchReq("GET", "/x", "192.0.2.1", "X-Internal", "secret", "X-Old", "v")
	b.Run("literal", func(b *testing.B) {
		p := policytest.Build(b, requestHeadersKind, `{"remove": ["X-Internal"], "rename": {"X-Old": "X-New"}, "set": {"X-Env": "prod"}, "add": {"X-Tag": "edge"}}`, nil)
		benchRun(b, p, req, identified("alice"))
	})
	b.Run("template", func(b *testing.B) {
		p := policytest.Build(b, requestHeadersKind, headerConfig, nil)
		benchRun(b, p, req, identified("alice"))
	})
}

func BenchmarkResponseHeaders(b *testing.B) {
	p := policytest.Build(b, responseHeadersKind, `{"remove": ["Server"], "set": {"Cache-Control": "no-store", "X-Served-For": "$consumer"}}`, nil)
	benchRun(b, p, newBenchReq("GET", "/x", "192.0.2.1"), identified("alice"))
}
