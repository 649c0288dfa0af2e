package transform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/policy"
)

// proxyRewrite changes the path, host and method the upstream receives.
// A path it sets replaces the route's own strip_prefix and rewrite.
type proxyRewrite struct {
	path        []byte
	re          *regexp.Regexp
	replacement []replacePart
	host        []byte
	method      []byte
}

// replacePart is a literal (group < 0) or a group of the regex.
type replacePart struct {
	lit   string
	group int
}

var rewriteMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func newProxyRewrite(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &proxyRewrite{}

	path, hasPath := stringField(r, &errs, "path")
	if hasPath {
		if why := checkPath(path); why != "" {
			r.Fail("path", why)
		}
		p.path = []byte(path)
	}
	expr, hasRegex := stringField(r, &errs, "regex")
	replacement, hasReplacement := stringField(r, &errs, "replacement")
	switch {
	case r.Has("regex") && r.Has("path"):
		r.Fail("regex", `not allowed with "path": the path is either replaced or rewritten`)
	case r.Has("regex") != r.Has("replacement"):
		if r.Has("regex") {
			r.Fail("replacement", `required with "regex"`)
		} else {
			r.Fail("regex", `required with "replacement"`)
		}
	case hasRegex && hasReplacement:
		re, err := regexp.Compile(expr)
		if err != nil {
			r.Failf("regex", "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			break
		}
		parts, err := parseReplacement(replacement, re)
		if err != nil {
			r.Fail("replacement", err.Error())
			break
		}
		p.re, p.replacement = re, parts
	}
	if host, ok := stringField(r, &errs, "host"); ok {
		if !validHostPort(strings.ToLower(host)) {
			r.Failf("host", `must be a host name or address with an optional port, such as "api.internal" or "10.0.0.1:8080", got %q`, host)
		}
		p.host = []byte(host)
	}
	n := len(errs)
	if method := r.OneOf("method", "", rewriteMethods...); r.Has("method") && len(errs) == n {
		p.method = []byte(method)
	}
	r.Done()
	if len(errs) == 0 && p.path == nil && p.re == nil && p.host == nil && p.method == nil {
		errs.Add("", `at least one of "path", "regex", "host" and "method" is required`)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkPath returns what is wrong with an upstream path, "" if nothing.
// Paths are unescaped: the engine escapes them on the way out.
func checkPath(path string) string {
	switch {
	case !strings.HasPrefix(path, "/"):
		return `must start with "/"`
	case strings.ContainsAny(path, "?#"):
		return `must not hold "?" or "#": the client's query string is kept`
	case !validValue(path) || strings.ContainsRune(path, '\t'):
		return "must not contain control characters"
	}
	return ""
}

// parseReplacement reads $1 (the digits that follow), ${1}, ${name} and
// $$, checking every group against re.
func parseReplacement(s string, re *regexp.Regexp) ([]replacePart, error) {
	var parts []replacePart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, replacePart{lit: lit.String(), group: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			continue
		}
		rest := s[i+1:]
		var ref string
		switch {
		case strings.HasPrefix(rest, "$"):
			lit.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ${ at offset %d", i)
			}
			ref = rest[1:end]
			i += end + 1
		default:
			n := 0
			for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("$ at offset %d must start a group such as $1 or ${name}; $$ is a literal $", i)
			}
			ref = rest[:n]
			i += n
		}
		g, err := strconv.Atoi(ref)
		if err != nil {
			if g = re.SubexpIndex(ref); g < 0 {
				return nil, fmt.Errorf("the regex has no group named %q", ref)
			}
		} else if g > re.NumSubexp() {
			return nil, fmt.Errorf("the regex has no group $%d: it has %d", g, re.NumSubexp())
		}
		flush()
		parts = append(parts, replacePart{group: g})
	}
	flush()
	return parts, nil
}

func (p *proxyRewrite) Run(c *policy.Context) bool {
	switch {
	case p.path != nil:
		c.SetPath(p.path)
	case p.re != nil:
		p.rewrite(c)
	}
	if p.host != nil {
		c.SetHost(p.host)
	}
	if p.method != nil {
		c.SetMethod(p.method)
	}
	return true
}

// rewrite replaces the regex's first match in the path; a path it does
// not match is left to the route's own rewriting. A result that does not
// start with "/" gets one.
func (p *proxyRewrite) rewrite(c *policy.Context) {
	path, _ := c.Path()
	m := p.re.FindSubmatchIndex(path)
	if m == nil {
		return
	}
	b := append(c.Scratch()[:0], '/')
	b = append(b, path[:m[0]]...)
	for _, rp := range p.replacement {
		switch {
		case rp.group < 0:
			b = append(b, rp.lit...)
		case m[2*rp.group] >= 0:
			b = append(b, path[m[2*rp.group]:m[2*rp.group+1]]...)
		}
	}
	b = append(b, path[m[1]:]...)
	if len(b) > 1 && b[1] == '/' {
		b = b[1:]
	}
	c.SetPath(b)
}
