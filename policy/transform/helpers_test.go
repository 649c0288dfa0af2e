package transform

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/policytest"
)

// run runs p on req in a fresh Context prepared by setup.
func run(p policy.Policy, req policy.Request, setup func(c *policy.Context)) (*policy.Context, bool) {
	c := &policy.Context{}
	c.Reset(req, time.Now())
	if setup != nil {
		setup(c)
	}
	return c, p.Run(c)
}

// wantErrors checks a refused configuration's "path: message" lines.
func wantErrors(t *testing.T, kind *policy.Kind, js string, env *policy.Env, want ...string) {
	t.Helper()
	got := policytest.Errors(t, kind, js, env)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s:\n got %q\nwant %q", kind.Name, js, got, want)
	}
}

// wantHeaders checks headers (lower-case names) against want; a nil value
// in want means the header must be absent.
func wantHeaders(t *testing.T, what string, got map[string][]string, want map[string][]string) {
	t.Helper()
	for name, values := range want {
		if !reflect.DeepEqual(got[name], values) {
			t.Errorf("%s: header %s = %q, want %q", what, name, got[name], values)
		}
	}
}

// wantAnswer checks a local answer.
func wantAnswer(t *testing.T, what string, c *policy.Context, status int, code string) {
	t.Helper()
	a, ok := c.Answer()
	switch {
	case !ok:
		t.Errorf("%s: no answer, want %d %s", what, status, code)
	case a.Status != status || a.Code != code:
		t.Errorf("%s: answer %d %q, want %d %q", what, a.Status, a.Code, status, code)
	}
}

// benchReq is a policy.Request over byte slices made once, so that a
// benchmark counts the policy's allocations only.
type benchReq struct {
	method, path []byte
	headers      [][2][]byte
	cl           int64
	addr         netip.Addr
}

func newBenchReq(method, path, addr string, headers ...string) *benchReq {
	r := &benchReq{method: []byte(method), path: []byte(path), addr: netip.MustParseAddr(addr)}
	for i := 0; i+1 < len(headers); i += 2 {
		r.headers = append(r.headers, [2][]byte{[]byte(headers[i]), []byte(headers[i+1])})
	}
	return r
}

func (r *benchReq) Method() []byte { return r.method }
func (r *benchReq) Path() []byte   { return r.path }
func (r *benchReq) Query() []byte  { return nil }
func (r *benchReq) Host() []byte   { return nil }
func (r *benchReq) Header(name string) []byte {
	for _, h := range r.headers {
		if httpascii.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return nil
}

func (r *benchReq) VisitHeaders(fn func(name, value []byte)) {
	for _, h := range r.headers {
		fn(h[0], h[1])
	}
}
func (r *benchReq) ContentLength() int64   { return r.cl }
func (r *benchReq) RemoteAddr() netip.Addr { return r.addr }
func (r *benchReq) TLS() bool              { return false }
func (r *benchReq) Body() ([]byte, bool)   { return nil, false }

// benchRun runs p on req b.N times on one Context, reset per request as
// the engines do, after a warm-up that grows the Context's buffers.
func benchRun(b *testing.B, p policy.Policy, req policy.Request, setup func(c *policy.Context)) {
	b.Helper()
	c := &policy.Context{}
	step := func() {
		c.Reset(req, time.Time{})
		if setup != nil {
			setup(c)
		}
		p.Run(c)
		if r, ok := p.(policy.Responder); ok {
			r.Respond(c, 200)
		}
	}
	step()
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

func TestKindsPhasesAndPriorities(t *testing.T) {
	want := map[string][2]int{
		"request-id":         {int(policy.PhaseRewrite), 200},
		"proxy-rewrite":      {int(policy.PhaseRewrite), 100},
		"ip-restriction":     {int(policy.PhaseAccess), 1000},
		"cors":               {int(policy.PhaseAccess), 950},
		"request-size-limit": {int(policy.PhaseAccess), 900},
		"traffic-split":      {int(policy.PhaseBeforeProxy), 200},
		"request-headers":    {int(policy.PhaseBeforeProxy), 100},
		"response-headers":   {int(policy.PhaseResponse), 100},
	}
	kinds := Kinds()
	if len(kinds) != len(want) {
		t.Fatalf("%d kinds, want %d", len(kinds), len(want))
	}
	for _, k := range kinds {
		if w, ok := want[k.Name]; !ok || w != [2]int{int(k.Phase), k.Priority} {
			t.Errorf("%s: phase %s priority %d, want %v", k.Name, k.Phase, k.Priority, w)
		}
	}
}

// Every kind's policy is shared by the engines' threads: run each from
// several goroutines at once, for the race detector.
func TestConcurrentRuns(t *testing.T) {
	configs := map[*policy.Kind]string{
		requestIDKind:        `{"header": "X-Trace-Id", "generate": "uuid"}`,
		proxyRewriteKind:     `{"regex": "^/(\\w+)", "replacement": "/v2/$1"}`,
		ipRestrictionKind:    `{"allow": ["192.0.2.0/24"]}`,
		corsKind:             `{"origins": ["*.example.com"]}`,
		requestSizeLimitKind: `{"max_bytes": 10}`,
		trafficSplitKind:     `{"rules": [{"upstreams": [{"upstream": "canary", "weight": 10}]}]}`,
		requestHeadersKind:   `{"set": {"X-Route": "$route"}}`,
		responseHeadersKind:  `{"add": {"X-Consumer": "$consumer"}}`,
	}
	if len(configs) != len(Kinds()) {
		t.Fatalf("%d configurations for %d kinds", len(configs), len(Kinds()))
	}
	env := policytest.Env(nil, "canary")
	for kind, js := range configs {
		p := policytest.Build(t, kind, js, env)
		req := newBenchReq("OPTIONS", "/orders", "192.0.2.7", "Origin", "https://a.example.com", "Access-Control-Request-Method", "GET")
		done := make(chan struct{})
		for range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				c := &policy.Context{}
				for range 200 {
					c.Reset(req, time.Now())
					p.Run(c)
					if r, ok := p.(policy.Responder); ok {
						r.Respond(c, 200)
					}
				}
			}()
		}
		for range 4 {
			<-done
		}
	}
}
