package router

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/deploy"
)

// headers is a HeaderGetter over a plain map, keyed by canonical name.
type headers map[string]string

func (h headers) Peek(key string) []byte {
	v, ok := h[key]
	if !ok {
		return nil
	}
	return []byte(v)
}

type request struct {
	host, method, path string
	headers            headers
	want               int // Handle; -1 for no match
	params             string
	// rest is what follows PrefixLen: what stripping the prefix leaves.
	rest string
}

// paramString renders m's parameters as "a=1,b=2".
func paramString(m *Match) string {
	parts := make([]string, m.NParams)
	for i := range m.NParams {
		parts[i] = m.Params[i].Name + "=" + string(m.Params[i].Value)
	}
	return strings.Join(parts, ",")
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		reqs  []request
	}{
		{
			name: "exact beats param beats prefix",
			specs: []Spec{
				{Paths: []string{"/a/*"}, Handle: 0},
				{Paths: []string{"/a/{id}"}, Handle: 1},
				{Paths: []string{"/a/new"}, Handle: 2},
			},
			reqs: []request{
				{path: "/a/new", want: 2},
				{path: "/a/7", want: 1, params: "id=7"},
				{path: "/a/7/x", want: 0, rest: "/7/x"},
				{path: "/a", want: 0},
				{path: "/b", want: -1},
			},
		},
		{
			name: "backtracks from a static dead end",
			specs: []Spec{
				{Paths: []string{"/a/b/c"}, Handle: 0},
				{Paths: []string{"/a/{x}/d"}, Handle: 1},
				{Paths: []string{"/{y}/b/e"}, Handle: 2},
			},
			reqs: []request{
				{path: "/a/b/c", want: 0},
				{path: "/a/b/d", want: 1, params: "x=b"},
				{path: "/a/b/e", want: 2, params: "y=a"},
				{path: "/a/b/f", want: -1},
			},
		},
		{
			name: "longer prefix first",
			specs: []Spec{
				{Paths: []string{"/*"}, Handle: 0},
				{Paths: []string{"/api/*"}, Handle: 1},
				{Paths: []string{"/api/v1/*"}, Handle: 2},
			},
			reqs: []request{
				{path: "/api/v1/x", want: 2, rest: "/x"},
				{path: "/api/v1", want: 2},
				{path: "/api/v2", want: 1, rest: "/v2"},
				{path: "/apiv1", want: 0, rest: "/apiv1"},
				{path: "/", want: 0, rest: "/"},
			},
		},
		{
			name: "prefix routes attached deeper lose to a static match elsewhere",
			specs: []Spec{
				{Paths: []string{"/a/*"}, Handle: 0},
				{Paths: []string{"/a/b/c"}, Handle: 1},
			},
			reqs: []request{
				{path: "/a/b/c", want: 1},
				{path: "/a/b/c/d", want: 0, rest: "/b/c/d"},
				{path: "/a/b", want: 0, rest: "/b"},
			},
		},
		{
			name: "hosts: exact, then wildcard, then any, falling through",
			specs: []Spec{
				{Paths: []string{"/*"}, Handle: 0},
				{Hosts: []string{"*.example.com"}, Paths: []string{"/*"}, Handle: 1},
				{Hosts: []string{"api.example.com"}, Paths: []string{"/orders"}, Handle: 2},
				{Hosts: []string{"*.example.com"}, Paths: []string{"/users"}, Methods: []string{"POST"}, Handle: 3},
			},
			reqs: []request{
				{host: "api.example.com", path: "/orders", want: 2},
				{host: "api.example.com", path: "/other", want: 1, rest: "/other"},
				{host: "web.example.com", path: "/orders", want: 1, rest: "/orders"},
				{host: "a.b.example.com", path: "/x", want: 1, rest: "/x"},
				{host: "example.com", path: "/orders", want: 0, rest: "/orders"},
				{host: "other.org", path: "/orders", want: 0, rest: "/orders"},
				{host: "", path: "/orders", want: 0, rest: "/orders"},
				{host: "web.example.com", method: "POST", path: "/users", want: 3},
				{host: "web.example.com", method: "GET", path: "/users", want: 1, rest: "/users"},
			},
		},
		{
			name: "host buckets fall through to no match",
			specs: []Spec{
				{Hosts: []string{"api.example.com"}, Paths: []string{"/a"}, Handle: 0},
			},
			reqs: []request{
				{host: "api.example.com", path: "/a", want: 0},
				{host: "api.example.com", path: "/b", want: -1},
				{host: "web.example.com", path: "/a", want: -1},
			},
		},
		{
			name: "longest wildcard wins",
			specs: []Spec{
				{Hosts: []string{"*.com"}, Paths: []string{"/*"}, Handle: 0},
				{Hosts: []string{"*.example.com"}, Paths: []string{"/*"}, Handle: 1},
				{Hosts: []string{"*.eu.example.com"}, Paths: []string{"/*"}, Handle: 2},
				{Hosts: []string{"*.eu.example.com"}, Paths: []string{"/only"}, Methods: []string{"DELETE"}, Handle: 3},
			},
			reqs: []request{
				{host: "a.eu.example.com", path: "/x", want: 2, rest: "/x"},
				{host: "a.b.eu.example.com", path: "/x", want: 2, rest: "/x"},
				{host: "eu.example.com", path: "/x", want: 1, rest: "/x"},
				{host: "a.example.com", path: "/x", want: 1, rest: "/x"},
				{host: "example.com", path: "/x", want: 0, rest: "/x"},
				{host: "com", path: "/x", want: -1},
				{host: "a.eu.example.com", method: "DELETE", path: "/only", want: 3},
			},
		},
		{
			name: "port, trailing dot and case of the host",
			specs: []Spec{
				{Hosts: []string{"API.Example.com"}, Paths: []string{"/a"}, Handle: 0},
				{Hosts: []string{"*.example.com"}, Paths: []string{"/a"}, Handle: 1},
				{Hosts: []string{"[::1]"}, Paths: []string{"/a"}, Handle: 2},
			},
			reqs: []request{
				{host: "api.example.com", path: "/a", want: 0},
				{host: "API.EXAMPLE.COM:8443", path: "/a", want: 0},
				{host: "api.example.com.", path: "/a", want: 0},
				{host: "api.example.com.:80", path: "/a", want: 0},
				{host: "Web.Example.Com:80", path: "/a", want: 1},
				{host: "[::1]:8080", path: "/a", want: 2},
				{host: "[::1]", path: "/a", want: 2},
				{host: "api.example.org", path: "/a", want: -1},
			},
		},
		{
			name: "method filter",
			specs: []Spec{
				{Paths: []string{"/r"}, Methods: []string{"GET", "HEAD"}, Handle: 0},
				{Paths: []string{"/r"}, Methods: []string{"POST"}, Handle: 1},
				{Paths: []string{"/s"}, Methods: []string{"PUT"}, Handle: 2},
				{Paths: []string{"/s"}, Handle: 3},
				{Paths: []string{"/t"}, Methods: []string{"GET"}, Handle: 4},
				{Paths: []string{"/*"}, Methods: []string{"PATCH"}, Handle: 5},
			},
			reqs: []request{
				{method: "GET", path: "/r", want: 0},
				{method: "HEAD", path: "/r", want: 0},
				{method: "POST", path: "/r", want: 1},
				{method: "DELETE", path: "/r", want: -1},
				{method: "PUT", path: "/s", want: 2},
				{method: "GET", path: "/s", want: 3},
				{method: "get", path: "/t", want: -1},
				{method: "PATCH", path: "/t", want: 5, rest: "/t"},
			},
		},
		{
			name: "unknown method only matches routes without methods",
			specs: []Spec{
				{Paths: []string{"/a"}, Methods: []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"}, Handle: 0},
				{Paths: []string{"/a"}, Handle: 1},
				{Paths: []string{"/b"}, Methods: []string{"GET"}, Handle: 2},
			},
			reqs: []request{
				{method: "PURGE", path: "/a", want: 1},
				{method: "TRACE", path: "/a", want: 0},
				{method: "PURGE", path: "/b", want: -1},
				{method: "BREW", path: "/b", want: -1},
			},
		},
		{
			name: "header filter",
			specs: []Spec{
				{Paths: []string{"/h"}, Handle: 0},
				{Paths: []string{"/h"}, Headers: []deploy.HeaderMatch{{Name: "X-Canary"}}, Handle: 1},
				{Paths: []string{"/h"}, Headers: []deploy.HeaderMatch{{Name: "X-Canary"}, {Name: "X-Tier", Values: []string{"gold", "silver"}}}, Handle: 2},
				{Paths: []string{"/v"}, Headers: []deploy.HeaderMatch{{Name: "X-Version", Values: []string{"2"}}}, Handle: 3},
			},
			reqs: []request{
				{path: "/h", want: 0},
				{path: "/h", headers: headers{"X-Canary": "1"}, want: 1},
				{path: "/h", headers: headers{"X-Canary": ""}, want: 0},
				{path: "/h", headers: headers{"X-Canary": "1", "X-Tier": "gold"}, want: 2},
				{path: "/h", headers: headers{"X-Canary": "1", "X-Tier": "silver"}, want: 2},
				{path: "/h", headers: headers{"X-Canary": "1", "X-Tier": "bronze"}, want: 1},
				{path: "/h", headers: headers{"X-Tier": "gold"}, want: 0},
				{path: "/v", headers: headers{"X-Version": "2"}, want: 3},
				{path: "/v", headers: headers{"X-Version": "20"}, want: -1},
				{path: "/v", want: -1},
			},
		},
		{
			name: "priority, then headers, then methods, then handle",
			specs: []Spec{
				{Paths: []string{"/p"}, Handle: 0},
				{Paths: []string{"/p"}, Methods: []string{"GET"}, Handle: 1},
				{Paths: []string{"/p"}, Headers: []deploy.HeaderMatch{{Name: "X-A"}}, Handle: 2},
				{Paths: []string{"/p"}, Priority: 5, Methods: []string{"POST"}, Handle: 3},
				{Paths: []string{"/q"}, Priority: 1, Handle: 10},
				{Paths: []string{"/q"}, Priority: 1, Handle: 9},
				{Paths: []string{"/q"}, Handle: 8},
			},
			reqs: []request{
				{method: "POST", path: "/p", headers: headers{"X-A": "1"}, want: 3},
				{method: "GET", path: "/p", headers: headers{"X-A": "1"}, want: 2},
				{method: "GET", path: "/p", want: 1},
				{method: "PUT", path: "/p", want: 0},
				{path: "/q", want: 9},
			},
		},
		{
			name: "priority does not cross path nodes",
			specs: []Spec{
				{Paths: []string{"/a/*"}, Priority: 100, Handle: 0},
				{Paths: []string{"/a/b"}, Handle: 1},
			},
			reqs: []request{
				{path: "/a/b", want: 1},
				{path: "/a/c", want: 0, rest: "/c"},
			},
		},
		{
			name: "trailing slash",
			specs: []Spec{
				{Paths: []string{"/a"}, Handle: 0},
				{Paths: []string{"/b/"}, Handle: 1},
				{Paths: []string{"/c/*"}, Handle: 2},
				{Paths: []string{"/"}, Handle: 3},
				{Paths: []string{"/d/{id}"}, Handle: 4},
			},
			reqs: []request{
				{path: "/a", want: 0},
				{path: "/a/", want: -1},
				{path: "/b/", want: 1},
				{path: "/b", want: -1},
				{path: "/c", want: 2},
				{path: "/c/", want: 2, rest: "/"},
				{path: "/c/x/y", want: 2, rest: "/x/y"},
				{path: "/c//", want: 2, rest: "//"},
				{path: "/", want: 3},
				{path: "/d/", want: -1},
				{path: "/d/1/", want: -1},
				{path: "", want: -1},
				{path: "a", want: -1},
			},
		},
		{
			name: "params",
			specs: []Spec{
				{Paths: []string{"/users/{user}/orders/{order}"}, Handle: 0},
				{Paths: []string{"/users/{id}"}, Handle: 1},
				{Paths: []string{"/files/{dir}/*"}, Handle: 2},
				{Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"}, Handle: 3},
				{Paths: []string{"/one/{x}", "/two/{y}"}, Handle: 4},
			},
			reqs: []request{
				{path: "/users/ann/orders/42", want: 0, params: "user=ann,order=42"},
				{path: "/users/ann", want: 1, params: "id=ann"},
				{path: "/users/", want: -1},
				{path: "/users/ann/orders", want: -1},
				{path: "/files/docs/a/b", want: 2, params: "dir=docs", rest: "/a/b"},
				{path: "/files/docs", want: 2, params: "dir=docs"},
				{path: "/1/2/3/4/5/6/7/8", want: 3, params: "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8"},
				{path: "/one/1", want: 4, params: "x=1"},
				{path: "/two/2", want: 4, params: "y=2"},
			},
		},
		{
			name: "routes under several hosts and paths",
			specs: []Spec{
				{Hosts: []string{"a.test", "*.b.test"}, Paths: []string{"/x", "/y/*"}, Handle: 0},
			},
			reqs: []request{
				{host: "a.test", path: "/x", want: 0},
				{host: "z.b.test", path: "/y/1", want: 0, rest: "/1"},
				{host: "b.test", path: "/x", want: -1},
				{host: "c.test", path: "/x", want: -1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := Build(tt.specs)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.reqs {
				method := r.method
				if method == "" {
					method = "GET"
				}
				var h HeaderGetter
				if r.headers != nil {
					h = r.headers
				}
				var m Match
				ok := table.Lookup([]byte(r.host), []byte(method), []byte(r.path), h, &m)
				desc := fmt.Sprintf("%s %s%s %v", method, r.host, r.path, r.headers)
				if r.want < 0 {
					if ok {
						t.Errorf("%s: matched route %d, want none", desc, m.Handle)
					}
					continue
				}
				if !ok {
					t.Errorf("%s: no match, want route %d", desc, r.want)
					continue
				}
				if m.Handle != r.want {
					t.Errorf("%s: route %d, want %d", desc, m.Handle, r.want)
				}
				if got := paramString(&m); got != r.params {
					t.Errorf("%s: params %q, want %q", desc, got, r.params)
				}
				if got := r.path[m.PrefixLen:]; got != r.rest {
					t.Errorf("%s: PrefixLen %d leaves %q, want %q", desc, m.PrefixLen, got, r.rest)
				}
			}
		})
	}
}

func TestLookupFasthttpHeaders(t *testing.T) {
	table, err := Build([]Spec{
		{Paths: []string{"/a"}, Handle: 0},
		{Paths: []string{"/a"}, Headers: []deploy.HeaderMatch{{Name: "x-canary", Values: []string{"on"}}}, Handle: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var req fasthttp.Request
	req.SetRequestURI("http://Api.Example.com:8080/a")
	req.Header.Set("X-Canary", "on")
	var m Match
	if !table.Lookup(req.Header.Host(), req.Header.Method(), req.URI().Path(), &req.Header, &m) || m.Handle != 1 {
		t.Fatalf("got %v %+v, want route 1", m.Handle, m)
	}
	req.Header.Set("X-Canary", "off")
	if !table.Lookup(req.Header.Host(), req.Header.Method(), req.URI().Path(), &req.Header, &m) || m.Handle != 0 {
		t.Fatalf("got %v, want route 0", m.Handle)
	}
}

func TestLookupLongHost(t *testing.T) {
	long := strings.Repeat("A", 300) + ".example.com"
	table, err := Build([]Spec{
		{Hosts: []string{"*.example.com"}, Paths: []string{"/a"}, Handle: 0},
		{Paths: []string{"/a"}, Handle: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m Match
	if !table.Lookup([]byte(long), []byte("GET"), []byte("/a"), nil, &m) || m.Handle != 1 {
		t.Fatalf("got %v, want the any-host route 1", m.Handle)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Paths: []string{"a"}}, `route 1 path "a": must start with "/"`},
		{Spec{Paths: []string{"/a/{"}}, `route 1 path "/a/{": a parameter must be a whole segment`},
		{Spec{Paths: []string{"/a/{}"}}, `route 1 path "/a/{}": parameter ""`},
		{Spec{Paths: []string{"/a/{x}/{x}"}}, `route 1 path "/a/{x}/{x}": duplicate parameter {x}`},
		{Spec{Paths: []string{"/*/a"}}, `route 1 path "/*/a": "*" is only allowed as the whole last segment`},
		{Spec{Paths: []string{"/a*"}}, `route 1 path "/a*": "*" is only allowed`},
		{Spec{Paths: []string{"/a//b"}}, `route 1 path "/a//b": must not have empty segments`},
		{Spec{Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"}}, `must have at most 8 parameters`},
		{Spec{}, `route 1 has no paths`},
		{Spec{Paths: []string{"/a"}, Methods: []string{"get"}}, `route 1 method "get": not a standard upper-case method`},
		{Spec{Paths: []string{"/a"}, Hosts: []string{"*."}}, `route 1 host "*.": empty name`},
		{Spec{Paths: []string{"/a"}, Hosts: []string{"a.*.com"}}, `route 1 host "a.*.com": "*" is only allowed`},
		{Spec{Paths: []string{"/a"}, Hosts: []string{strings.Repeat("a", 256)}}, `longer than 255 bytes`},
		{Spec{Paths: []string{"/a"}, Hosts: []string{"*." + strings.Repeat("a", 254)}}, `longer than 253 bytes`},
		{Spec{Paths: []string{"/a"}, Hosts: []string{"a.com:80"}}, `route 1 host "a.com:80": must not have a port`},
		{Spec{Paths: []string{"/a"}, Headers: []deploy.HeaderMatch{{}}}, `route 1 header: empty name`},
	}
	for _, tt := range tests {
		_, err := Build([]Spec{{Paths: []string{"/ok"}}, tt.spec})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%+v) = %v, want an error containing %q", tt.spec, err, tt.want)
		}
	}
}

func TestBuildDuplicatesLowerHandleWins(t *testing.T) {
	table, err := Build([]Spec{
		{Paths: []string{"/a/{x}"}, Handle: 7},
		{Paths: []string{"/a/{y}"}, Handle: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m Match
	if !table.Lookup(nil, []byte("GET"), []byte("/a/1"), nil, &m) || m.Handle != 3 || paramString(&m) != "y=1" {
		t.Fatalf("got route %d %q, want 3 y=1", m.Handle, paramString(&m))
	}
	if table.Len() != 2 {
		t.Fatalf("Len = %d, want 2", table.Len())
	}
}

func TestBuildCopiesHeaderValues(t *testing.T) {
	values := []string{"on"}
	table, err := Build([]Spec{{Paths: []string{"/a"}, Headers: []deploy.HeaderMatch{{Name: "X-A", Values: values}}}})
	if err != nil {
		t.Fatal(err)
	}
	values[0] = "off"
	var m Match
	if !table.Lookup(nil, []byte("GET"), []byte("/a"), headers{"X-A": "on"}, &m) {
		t.Fatal("the table changed with the spec it was built from")
	}
}

func TestLookupNoAllocs(t *testing.T) {
	specs, reqs := realistic(10000)
	table, err := Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	var hdr fasthttp.RequestHeader
	hdr.Set("X-Canary", "on")
	check := func(r benchRequest, match bool) {
		var m Match
		allocs := testing.AllocsPerRun(100, func() {
			if table.Lookup(r.host, r.method, r.path, &hdr, &m) != match {
				t.Fatalf("%s %s%s: match is %v, want %v", r.method, r.host, r.path, !match, match)
			}
		})
		if allocs != 0 {
			t.Errorf("%s %s%s: %v allocations per Lookup, want 0", r.method, r.host, r.path, allocs)
		}
	}
	for _, r := range reqs {
		check(r, true)
	}
	check(benchRequest{host: []byte("Nowhere.Example.COM"), method: []byte("GET"), path: []byte("/none/of/these")}, false)
}

// benchRequest is a request of the realistic route set, in the byte slices
// fasthttp hands out.
type benchRequest struct {
	host, method, path []byte
}

// realistic returns n routes shaped like a gateway's: per service an item
// route with a parameter, a method-restricted collection route, a prefix
// catch-all and now and then a header-gated canary, spread over exact,
// wildcard and no hosts. The requests hit every kind.
func realistic(n int) ([]Spec, []benchRequest) {
	var specs []Spec
	add := func(s Spec) {
		if len(specs) < n {
			s.Handle = len(specs)
			specs = append(specs, s)
		}
	}
	hostsOf := func(svc int) []string {
		switch svc % 4 {
		case 0:
			return []string{fmt.Sprintf("svc%d.example.com", svc)}
		case 1:
			return []string{fmt.Sprintf("*.tenant%d.example.com", svc)}
		}
		return nil
	}
	complete := 0 // services with all their routes
	for svc := 0; len(specs) < n; svc++ {
		hosts := hostsOf(svc)
		base := fmt.Sprintf("/svc%d", svc)
		add(Spec{Hosts: hosts, Paths: []string{base + "/items/{id}"}, Methods: []string{"GET", "PUT", "DELETE"}})
		add(Spec{Hosts: hosts, Paths: []string{base + "/items"}, Methods: []string{"GET", "POST"}})
		add(Spec{Hosts: hosts, Paths: []string{base + "/*"}})
		add(Spec{Hosts: hosts, Paths: []string{base + "/items/{id}/events/{event}"}, Methods: []string{"GET"}})
		if svc%5 == 0 {
			add(Spec{Hosts: hosts, Paths: []string{base + "/items/{id}"}, Headers: []deploy.HeaderMatch{{Name: "X-Canary", Values: []string{"on"}}}, Priority: 1})
		}
		if len(specs) < n {
			complete = svc + 1
		}
	}
	var reqs []benchRequest
	for _, svc := range []int{0, 1, 2, complete / 2, complete - 1} {
		var host string
		switch svc % 4 {
		case 0:
			host = fmt.Sprintf("SVC%d.example.com:443", svc)
		case 1:
			host = fmt.Sprintf("eu.tenant%d.example.com", svc)
		default:
			host = "gateway.example.net"
		}
		if svc >= complete {
			continue
		}
		base := fmt.Sprintf("/svc%d", svc)
		for _, r := range []struct{ method, path string }{
			{"GET", base + "/items/12345"},
			{"POST", base + "/items"},
			{"GET", base + "/items/12345/events/e-9"},
			{"GET", base + "/static/js/app.js"},
			{"PATCH", base + "/items/12345"},
		} {
			reqs = append(reqs, benchRequest{host: []byte(host), method: []byte(r.method), path: []byte(r.path)})
		}
	}
	return specs, reqs
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			specs, reqs := realistic(n)
			table, err := Build(specs)
			if err != nil {
				b.Fatal(err)
			}
			var hdr fasthttp.RequestHeader
			hdr.Set("X-Canary", "on")
			var m Match
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := &reqs[i%len(reqs)]
				table.Lookup(r.host, r.method, r.path, &hdr, &m)
				i++
			}
		})
	}
}

func BenchmarkBuild10000(b *testing.B) {
	specs, _ := realistic(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(specs); err != nil {
			b.Fatal(err)
		}
	}
}
