package router

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/deploy"
)

// Spec is one route as the router sees it.
type Spec struct {
	// Hosts are exact ("api.example.com") or wildcard ("*.example.com",
	// matching any name below example.com but not example.com itself).
	// Empty means any host.
	Hosts []string
	// Paths are exact ("/orders"), with parameters ("/orders/{id}") or
	// prefixes ("/api/*", matching "/api", "/api/" and everything below),
	// in the syntax of deploy.ParsePath.
	Paths []string
	// Methods are upper-case standard methods; empty means any method.
	Methods []string
	// Headers must all match: the header is present with a non-empty
	// value and, when Values is non-empty, equal to one of them.
	Headers []deploy.HeaderMatch
	// Priority orders routes ending at the same path node: higher first.
	Priority int
	// Handle is returned by Lookup; it is the caller's index of its route.
	Handle int
}

// HeaderGetter gives Lookup the request headers. *fasthttp.RequestHeader
// satisfies it.
type HeaderGetter interface {
	Peek(key string) []byte
}

// Param is a path parameter of a match. Value aliases the path given to
// Lookup: it is only valid as long as that path is.
type Param struct {
	Name  string
	Value []byte
}

// Match is the result of Lookup. It is meant to live on the caller's stack.
type Match struct {
	Handle int
	// PrefixLen is, for a prefix route, how many bytes of the request path
	// the pattern before "/*" covers ("/api/*" on "/api/v1" gives 4); for
	// other routes it is the length of the path.
	PrefixLen int
	Params    [deploy.MaxPathParams]Param
	NParams   int
}

// Table is a compiled set of routes. It never changes after Build, so any
// number of goroutines may call Lookup at once.
type Table struct {
	exact    map[string]*node
	wildcard map[string]*node // keyed by the suffix after "*."
	// wildLens has bit i set when a wildcard suffix is i bytes long: most
	// suffixes of a request host can be skipped without hashing them.
	wildLens [maxHost/64 + 1]uint64
	anyHost  *node
	routes   int
}

// node is one path segment position of a host bucket's trie.
type node struct {
	// Static children are a map while building; Build turns small maps
	// into slices because scanning a few keys beats hashing the segment.
	keys   []string
	kids   []*node
	kidMap map[string]*node
	param  *node
	// exact routes end here; prefix routes ("/*") are attached here and
	// match whatever follows.
	exact  []entry
	prefix []entry
}

// smallFanout is the most static children kept as slices.
const smallFanout = 8

// entry is one path of one route at one node.
type entry struct {
	handle   int
	priority int
	methods  methodSet
	headers  []deploy.HeaderMatch
	params   []string // the path's parameter names, in path order
}

// maxHost bounds the hosts a route may name and the request hosts that
// are lower-cased on the stack. DNS names are at most 253 bytes, so a
// longer request host can only match routes without hosts.
const maxHost = 255

type methodSet uint16

// methodOther stands for every method outside the standard ones: only
// routes without methods have it.
const (
	methodGet methodSet = 1 << iota
	methodHead
	methodPost
	methodPut
	methodPatch
	methodDelete
	methodOptions
	methodConnect
	methodTrace
	methodOther

	methodAny methodSet = 1<<16 - 1
)

func methodBit(m []byte) methodSet {
	switch string(m) {
	case "GET":
		return methodGet
	case "HEAD":
		return methodHead
	case "POST":
		return methodPost
	case "PUT":
		return methodPut
	case "PATCH":
		return methodPatch
	case "DELETE":
		return methodDelete
	case "OPTIONS":
		return methodOptions
	case "CONNECT":
		return methodConnect
	case "TRACE":
		return methodTrace
	}
	return methodOther
}

// Build compiles specs. An error names the offending spec by its index in
// specs. Specs that tie on everything are allowed: the lower Handle wins.
func Build(specs []Spec) (*Table, error) {
	t := &Table{
		exact:    make(map[string]*node),
		wildcard: make(map[string]*node),
		routes:   len(specs),
	}
	for i := range specs {
		if err := t.add(&specs[i]); err != nil {
			return nil, fmt.Errorf("route %d %w", i, err)
		}
	}
	for _, n := range t.exact {
		n.freeze()
	}
	for _, n := range t.wildcard {
		n.freeze()
	}
	if t.anyHost != nil {
		t.anyHost.freeze()
	}
	return t, nil
}

func (t *Table) add(s *Spec) error {
	e := entry{handle: s.Handle, priority: s.Priority, methods: methodAny}
	if len(s.Methods) > 0 {
		e.methods = 0
		for _, m := range s.Methods {
			bit := methodBit([]byte(m))
			if bit == methodOther {
				return fmt.Errorf("method %q: not a standard upper-case method", m)
			}
			e.methods |= bit
		}
	}
	for _, h := range s.Headers {
		if h.Name == "" {
			return errors.New("header: empty name")
		}
		// The spec usually aliases a configuration the caller may reuse;
		// the table must not change with it.
		e.headers = append(e.headers, deploy.HeaderMatch{Name: h.Name, Values: slices.Clone(h.Values)})
	}
	if len(s.Paths) == 0 {
		return errors.New("has no paths")
	}
	pats := make([]deploy.PathPattern, len(s.Paths))
	for i, p := range s.Paths {
		pat, err := deploy.ParsePath(p)
		if err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
		pats[i] = pat
	}
	var roots []*node
	if len(s.Hosts) == 0 {
		if t.anyHost == nil {
			t.anyHost = &node{}
		}
		roots = append(roots, t.anyHost)
	}
	for _, h := range s.Hosts {
		name, wild, err := parseHost(h)
		if err != nil {
			return fmt.Errorf("host %q: %w", h, err)
		}
		bucket := t.exact
		if wild {
			bucket = t.wildcard
			t.wildLens[len(name)/64] |= 1 << (len(name) % 64)
		}
		root := bucket[name]
		if root == nil {
			root = &node{}
			bucket[name] = root
		}
		roots = append(roots, root)
	}
	for _, root := range roots {
		for _, pat := range pats {
			root.insert(pat, e)
		}
	}
	return nil
}

// parseHost returns a route host lower-cased in the form requests are
// compared in, and for a wildcard the suffix after "*.".
func parseHost(h string) (name string, wild bool, err error) {
	name, wild = strings.CutPrefix(lowerASCII(h), "*.")
	name = strings.TrimSuffix(name, ".")
	// A request host is compared after canonicalHost: anything it could
	// never equal would be a route that silently never matches.
	limit := maxHost
	if wild {
		limit -= 2 // a label and its dot come before the suffix
	}
	switch {
	case name == "":
		return "", false, errors.New("empty name")
	case len(name) > limit:
		return "", false, fmt.Errorf("longer than %d bytes", limit)
	case strings.Contains(name, "*"):
		return "", false, errors.New(`"*" is only allowed as a leading "*." label`)
	case strings.LastIndexByte(name, ':') > strings.LastIndexByte(name, ']'):
		return "", false, errors.New("must not have a port")
	}
	return name, wild, nil
}

// lowerASCII lower-cases s the way canonicalHost does. strings.ToLower
// would also fold non-ASCII letters and replace invalid UTF-8, neither of
// which a request host goes through.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (n *node) insert(pat deploy.PathPattern, e entry) {
	for _, seg := range pat.Segments {
		if seg.Param != "" {
			e.params = append(e.params, seg.Param)
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.kidMap == nil {
			n.kidMap = make(map[string]*node)
		}
		c := n.kidMap[seg.Literal]
		if c == nil {
			c = &node{}
			n.kidMap[seg.Literal] = c
		}
		n = c
	}
	if pat.Prefix {
		n.prefix = append(n.prefix, e)
	} else {
		n.exact = append(n.exact, e)
	}
}

func (n *node) freeze() {
	if len(n.kidMap) <= smallFanout {
		for k := range n.kidMap {
			n.keys = append(n.keys, k)
		}
		slices.Sort(n.keys)
		for _, k := range n.keys {
			n.kids = append(n.kids, n.kidMap[k])
		}
		n.kidMap = nil
	}
	for _, c := range n.kidMap {
		c.freeze()
	}
	for _, c := range n.kids {
		c.freeze()
	}
	if n.param != nil {
		n.param.freeze()
	}
	slices.SortStableFunc(n.exact, compareEntries)
	slices.SortStableFunc(n.prefix, compareEntries)
}

// compareEntries orders the routes of one node from the one that wins a
// tie to the one that loses it.
func compareEntries(a, b entry) int {
	if c := cmp.Compare(b.priority, a.priority); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.headers), len(a.headers)); c != 0 {
		return c
	}
	if aAny, bAny := a.methods == methodAny, b.methods == methodAny; aAny != bAny {
		if bAny {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.handle, b.handle)
}

func (n *node) child(seg []byte) *node {
	if n.kidMap != nil {
		return n.kidMap[string(seg)]
	}
	for i, k := range n.keys {
		if k == string(seg) {
			return n.kids[i]
		}
	}
	return nil
}

// Len is the number of specs the table was built from.
func (t *Table) Len() int { return t.routes }

// Lookup finds the route of a request and fills m. host is the Host header
// (a port and a trailing dot are ignored, case does not matter), path the
// decoded, normalized path without the query. h may be nil when no route
// has headers. Lookup does not allocate; m's parameter values alias path.
func (t *Table) Lookup(host, method, path []byte, h HeaderGetter, m *Match) bool {
	s := search{path: path, method: methodBit(method), h: h}
	if len(path) == 0 || path[0] != '/' || !t.find(&s, host) {
		m.NParams = 0
		return false
	}
	m.Handle = s.win.handle
	m.PrefixLen = s.pos
	m.NParams = len(s.win.params)
	for i, name := range s.win.params {
		m.Params[i] = Param{Name: name, Value: path[s.spans[i][0]:s.spans[i][1]]}
	}
	return true
}

// find walks the host buckets that apply to host, most specific first.
func (t *Table) find(s *search, host []byte) bool {
	var buf [maxHost]byte
	if name, ok := canonicalHost(host, &buf); ok {
		if root := t.exact[string(name)]; root != nil && s.walk(root, 0, 0) {
			return true
		}
		if len(t.wildcard) > 0 {
			// From the first dot on, each suffix is shorter than the one
			// before: the longest matching wildcard is tried first.
			for i := 0; i < len(name); i++ {
				n := len(name) - i - 1
				if name[i] != '.' || t.wildLens[n/64]&(1<<(n%64)) == 0 {
					continue
				}
				if root := t.wildcard[string(name[i+1:])]; root != nil && s.walk(root, 0, 0) {
					return true
				}
			}
		}
	}
	return t.anyHost != nil && s.walk(t.anyHost, 0, 0)
}

// canonicalHost strips a port and a trailing dot from host and lower-cases
// it, in buf when it has upper-case letters. It reports false for a host
// too long to name any route.
func canonicalHost(host []byte, buf *[maxHost]byte) ([]byte, bool) {
	// The port follows the last colon, unless that colon is inside an
	// IPv6 literal ("[::1]").
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.LastIndexByte(host, ']') < i {
		host = host[:i]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) > maxHost {
		return nil, false
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			lower := buf[:len(host)]
			copy(lower, host[:i])
			for j := i; j < len(host); j++ {
				c := host[j]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				lower[j] = c
			}
			return lower, true
		}
	}
	return host, true
}

// search is the state of one Lookup. It records the result apart from the
// caller's Match, and parameters as offsets rather than slices of path,
// because writing through a pointer in a recursion makes escape analysis
// move the Match to the heap.
type search struct {
	path   []byte
	method methodSet
	h      HeaderGetter
	spans  [deploy.MaxPathParams][2]int
	win    *entry
	pos    int
}

// walk matches the path from pos, the index of the slash before the next
// segment (len(path) once all segments are consumed), at n, where np
// parameters have been captured. Each trie node pairs with one segment
// position, so a walk visits every node at most once however it
// backtracks.
func (s *search) walk(n *node, pos, np int) bool {
	if pos == len(s.path) {
		return s.pick(n.exact, pos) || s.pick(n.prefix, pos)
	}
	start := pos + 1
	end := len(s.path)
	if i := bytes.IndexByte(s.path[start:], '/'); i >= 0 {
		end = start + i
	}
	if c := n.child(s.path[start:end]); c != nil && s.walk(c, end, np) {
		return true
	}
	if n.param != nil && end > start {
		s.spans[np] = [2]int{start, end}
		if s.walk(n.param, end, np+1) {
			return true
		}
	}
	return s.pick(n.prefix, pos)
}

// pick records the first of es, in precedence order, that the method and
// headers match.
func (s *search) pick(es []entry, pos int) bool {
	for i := range es {
		e := &es[i]
		if e.methods&s.method != 0 && headersMatch(s.h, e.headers) {
			s.win, s.pos = e, pos
			return true
		}
	}
	return false
}

func headersMatch(h HeaderGetter, hs []deploy.HeaderMatch) bool {
	if len(hs) == 0 {
		return true
	}
	if h == nil {
		return false
	}
	for i := range hs {
		// fasthttp returns nil or an empty slice for a header sent empty,
		// depending on its buffers, so an empty value counts as absent.
		v := h.Peek(hs[i].Name)
		if len(v) == 0 || len(hs[i].Values) > 0 && !oneOf(v, hs[i].Values) {
			return false
		}
	}
	return true
}

// oneOf is slices.Contains without converting v to a string, which would
// allocate.
func oneOf(v []byte, values []string) bool {
	for _, w := range values {
		if string(v) == w {
			return true
		}
	}
	return false
}
