package policytest

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
)

// Request is a policy.Request held in fields.
type Request struct {
	MethodV, PathV, QueryV, HostV string
	// Headers are name/value pairs in order.
	Headers [][2]string
	CL      int64
	Addr    netip.Addr
	IsTLS   bool
	BodyV   []byte
	// Streamed makes Body report that the body is not in memory.
	Streamed bool
}

// Get returns a GET of path (with an optional "?query") from 192.0.2.1.
func Get(target string, headers ...string) *Request {
	r := &Request{MethodV: "GET", HostV: "api.example.com", Addr: netip.MustParseAddr("192.0.2.1")}
	r.PathV, r.QueryV, _ = strings.Cut(target, "?")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Headers = append(r.Headers, [2]string{headers[i], headers[i+1]})
	}
	return r
}

func (r *Request) Method() []byte { return []byte(r.MethodV) }
func (r *Request) Path() []byte   { return []byte(r.PathV) }
func (r *Request) Query() []byte  { return []byte(r.QueryV) }
func (r *Request) Host() []byte   { return []byte(r.HostV) }
func (r *Request) Header(name string) []byte {
	for _, h := range r.Headers {
		if strings.EqualFold(h[0], name) {
			return []byte(h[1])
		}
	}
	return nil
}
func (r *Request) VisitHeaders(fn func(name, value []byte)) {
	for _, h := range r.Headers {
		fn([]byte(h[0]), []byte(h[1]))
	}
}
func (r *Request) ContentLength() int64   { return r.CL }
func (r *Request) RemoteAddr() netip.Addr { return r.Addr }
func (r *Request) TLS() bool              { return r.IsTLS }
func (r *Request) Body() ([]byte, bool)   { return r.BodyV, !r.Streamed }

// Config decodes a policy configuration written as JSON, with integers as
// int like the configuration decoder gives them.
func Config(t testing.TB, js string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("config %s: %v", js, err)
	}
	return normalize(m).(map[string]any)
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n)
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// Env returns an Env for tests: consumers as given, upstreams from names
// (each one's handle is its name), no group, no resources.
func Env(consumers *policy.Consumers, upstreams ...string) *policy.Env {
	if consumers == nil {
		consumers = policy.NewConsumers()
	}
	return &policy.Env{
		Logger:    hclog.NewNullLogger(),
		Consumers: consumers,
		Upstream: func(name string) (any, bool) {
			for _, u := range upstreams {
				if u == name {
					return u, true
				}
			}
			return nil, false
		},
	}
}

// Build builds kind from a JSON configuration, failing the test on error.
func Build(t testing.TB, kind *policy.Kind, js string, env *policy.Env) policy.Policy {
	t.Helper()
	p, err := kind.New(Config(t, js), env)
	if err != nil {
		t.Fatalf("%s %s: %v", kind.Name, js, err)
	}
	return p
}

// Errors builds kind from a JSON configuration that must be refused, and
// returns its errors as "path: message" lines.
func Errors(t testing.TB, kind *policy.Kind, js string, env *policy.Env) []string {
	t.Helper()
	_, err := kind.New(Config(t, js), env)
	if err == nil {
		t.Fatalf("%s %s: accepted", kind.Name, js)
	}
	es, ok := err.(policy.ConfigErrors)
	if !ok {
		t.Fatalf("%s %s: error %T %v is not policy.ConfigErrors", kind.Name, js, err, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// Run runs p on req in a fresh Context and returns the Context.
func Run(p policy.Policy, req policy.Request) (*policy.Context, bool) {
	c := &policy.Context{}
	c.Reset(req, time.Now())
	ok := p.Run(c)
	return c, ok
}

// RequestHeaders applies c's request edits to req's headers and returns
// the result as name → values (names as edited).
func RequestHeaders(c *policy.Context, req *Request) map[string][]string {
	h := map[string][]string{}
	for _, kv := range req.Headers {
		k := strings.ToLower(kv[0])
		h[k] = append(h[k], kv[1])
	}
	apply(c, c.RequestEdits(), h)
	return h
}

// ResponseHeaders applies c's response edits to upstream headers.
func ResponseHeaders(c *policy.Context, upstream map[string][]string) map[string][]string {
	h := map[string][]string{}
	for k, v := range upstream {
		h[strings.ToLower(k)] = append([]string(nil), v...)
	}
	apply(c, c.ResponseEdits(), h)
	return h
}

func apply(c *policy.Context, edits []policy.HeaderEdit, h map[string][]string) {
	for i := range edits {
		e := &edits[i]
		k := strings.ToLower(e.Name)
		switch e.Op {
		case policy.EditSet:
			h[k] = []string{string(c.Value(e))}
		case policy.EditAdd:
			h[k] = append(h[k], string(c.Value(e)))
		case policy.EditDel:
			delete(h, k)
		case policy.EditRename:
			if v, ok := h[k]; ok {
				delete(h, k)
				h[strings.ToLower(e.NewName)] = v
			}
		}
	}
}
