package router

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/deploy"
)

// fuzzSpecs cover every kind of host, path node, method and header filter.
var fuzzSpecs = []Spec{
	{Paths: []string{"/"}},
	{Paths: []string{"/a", "/a/"}, Methods: []string{"GET"}},
	{Paths: []string{"/a/{x}"}},
	{Paths: []string{"/a/{x}/b/{y}"}, Methods: []string{"POST", "PUT"}},
	{Paths: []string{"/a/*"}, Priority: 2},
	{Paths: []string{"/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"}},
	{Paths: []string{"/files/{dir}/*"}},
	{Hosts: []string{"api.example.com"}, Paths: []string{"/a/{id}"}, Headers: []deploy.HeaderMatch{{Name: "X-Canary", Values: []string{"on"}}}},
	{Hosts: []string{"api.example.com"}, Paths: []string{"/b/*"}},
	{Hosts: []string{"*.example.com"}, Paths: []string{"/*"}, Methods: []string{"DELETE"}},
	{Hosts: []string{"*.eu.example.com"}, Paths: []string{"/{x}/c"}, Headers: []deploy.HeaderMatch{{Name: "X-Canary"}}},
}

func init() {
	for i := range fuzzSpecs {
		fuzzSpecs[i].Handle = i
	}
}

func FuzzLookup(f *testing.F) {
	table, err := Build(fuzzSpecs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("api.example.com", "GET", "/a/1", "on")
	f.Add("API.example.com:80", "POST", "/a/1/b/2", "")
	f.Add("x.eu.example.com.", "DELETE", "/q/c", "1")
	f.Add("[::1]:80", "PURGE", "/files/d/e/f", "")
	f.Add("", "GET", "/1/2/3/4/5/6/7/8", "")
	f.Add("a", "GET", "//a//", "")
	f.Fuzz(func(t *testing.T, host, method, path, canary string) {
		var h headers
		if canary != "" {
			h = headers{"X-Canary": canary}
		}
		p := []byte(path)
		var m Match
		ok := table.Lookup([]byte(host), []byte(method), p, h, &m)
		want := slices.ContainsFunc(fuzzSpecs, func(s Spec) bool { return specMatches(s, host, method, path, h) })
		if ok != want {
			t.Fatalf("Lookup = %v, but a brute-force search says %v", ok, want)
		}
		if !ok {
			return
		}
		if m.Handle < 0 || m.Handle >= len(fuzzSpecs) || !specMatches(fuzzSpecs[m.Handle], host, method, path, h) {
			t.Fatalf("Lookup picked route %d, which does not match", m.Handle)
		}
		if m.PrefixLen < 0 || m.PrefixLen > len(p) || m.NParams < 0 || m.NParams > len(m.Params) {
			t.Fatalf("bad match %+v", m)
		}
		for _, prm := range m.Params[:m.NParams] {
			if prm.Name == "" || len(prm.Value) == 0 || strings.Contains(string(prm.Value), "/") {
				t.Fatalf("bad parameter %q=%q", prm.Name, prm.Value)
			}
			// A slice of p ends where p's capacity ends: its offset in p
			// follows from the capacities, and its first byte must be
			// that byte of p, not a copy.
			off := cap(p) - cap(prm.Value)
			if off < 0 || off+len(prm.Value) > len(p) || &p[off] != &prm.Value[0] {
				t.Fatalf("parameter %q=%q does not alias the path", prm.Name, prm.Value)
			}
		}
	})
}

func FuzzBuild(f *testing.F) {
	f.Add("/a/{id}", "/a/*", "*.example.com")
	f.Add("/", "/*", "")
	f.Add("/a/{", "/{a}/{a}", "a.*.b")
	f.Add("/x/", "/x/{y}/z/*", "EXAMPLE.com.")
	f.Fuzz(func(t *testing.T, p1, p2, host string) {
		specs := []Spec{{Paths: []string{p1}, Handle: 0}, {Paths: []string{p2}, Handle: 1}}
		if host != "" {
			specs[1].Hosts = []string{host}
		}
		table, err := Build(specs)
		if err != nil {
			return
		}
		reqHost := host
		if suffix, ok := strings.CutPrefix(host, "*."); ok {
			reqHost = "x." + suffix
		}
		// Every built path must be reachable by a request it describes.
		for _, p := range []string{p1, p2} {
			path := concrete(p)
			var m Match
			if !table.Lookup([]byte(reqHost), []byte("GET"), []byte(path), nil, &m) {
				t.Fatalf("no route for %s%s, built from %q", reqHost, path, p)
			}
			if !specMatches(specs[m.Handle], reqHost, "GET", path, nil) {
				t.Fatalf("%s%s matched route %d, which does not match it", reqHost, path, m.Handle)
			}
		}
	})
}

// concrete turns a valid route path into a request path it matches.
func concrete(p string) string {
	pat, _ := deploy.ParsePath(p)
	var b strings.Builder
	for _, s := range pat.Segments {
		b.WriteByte('/')
		if s.Param != "" {
			b.WriteString("v")
		} else {
			b.WriteString(s.Literal)
		}
	}
	if pat.Prefix || b.Len() == 0 {
		b.WriteString("/x")
	}
	return b.String()
}

// specMatches is the definition of a route matching a request, without
// any precedence: the oracle the table is checked against.
func specMatches(s Spec, host, method, path string, h headers) bool {
	if len(s.Methods) > 0 && !slices.Contains(s.Methods, method) {
		return false
	}
	for _, hm := range s.Headers {
		v := h[hm.Name]
		if v == "" || len(hm.Values) > 0 && !slices.Contains(hm.Values, v) {
			return false
		}
	}
	if len(s.Hosts) > 0 && !slices.ContainsFunc(s.Hosts, func(pattern string) bool { return hostMatches(pattern, host) }) {
		return false
	}
	return slices.ContainsFunc(s.Paths, func(pattern string) bool { return pathMatches(pattern, path) })
}

func hostMatches(pattern, host string) bool {
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		host = host[:i]
	}
	host = lowerASCII(strings.TrimSuffix(host, "."))
	pattern = lowerASCII(pattern)
	if len(host) > maxHost {
		return false
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+strings.TrimSuffix(suffix, "."))
	}
	return host == strings.TrimSuffix(pattern, ".")
}

func pathMatches(pattern, path string) bool {
	pat, err := deploy.ParsePath(pattern)
	if err != nil || !strings.HasPrefix(path, "/") {
		return false
	}
	segs := strings.Split(path[1:], "/")
	if len(segs) < len(pat.Segments) || !pat.Prefix && len(segs) != len(pat.Segments) {
		return false
	}
	for i, ps := range pat.Segments {
		if ps.Param == "" && segs[i] != ps.Literal || ps.Param != "" && segs[i] == "" {
			return false
		}
	}
	return true
}
