package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxPathParams is how many parameters a route path may have.
const MaxPathParams = 8

// PathPattern is a parsed route path.
//
// Segments are the parts of the path between slashes, after the leading
// one, so that a request path split the same way (strings.Split(p[1:],
// "/")) lines up with them: "/" is one empty literal segment and a
// trailing slash is a final empty literal segment ("/orders/" is
// "orders", ""). A prefix path has Prefix set and its "*" segment removed:
// "/api/*" is Segments "api" with Prefix, and "/*" is no segments with
// Prefix.
type PathPattern struct {
	Segments []Segment
	Prefix   bool
}

// Segment is a literal segment or, when Param is set, a parameter segment
// ("{id}" has Param "id") matching any one non-empty segment.
type Segment struct {
	Literal string
	Param   string
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParsePath parses a route path: exact ("/orders"), with parameter
// segments ("/orders/{id}"), or a prefix whose last segment is "*"
// ("/api/*", matching "/api", "/api/" and everything below). The error
// messages are meant to follow a field path: `paths[0]: must start with "/"`.
func ParsePath(p string) (PathPattern, error) {
	if !strings.HasPrefix(p, "/") {
		return PathPattern{}, errors.New(`must start with "/"`)
	}
	// A request path never holds them: the query and fragment are cut off
	// before routing.
	if strings.ContainsAny(p, "?#") {
		return PathPattern{}, errors.New(`must not contain "?" or "#"`)
	}
	parts := strings.Split(p[1:], "/")
	var pat PathPattern
	if parts[len(parts)-1] == "*" {
		pat.Prefix = true
		parts = parts[:len(parts)-1]
	}
	params := make(map[string]bool)
	for i, s := range parts {
		switch {
		case s == "" && (i < len(parts)-1 || pat.Prefix):
			return PathPattern{}, errors.New(`must not have empty segments ("//")`)
		case strings.Contains(s, "*"):
			return PathPattern{}, errors.New(`"*" is only allowed as the whole last segment`)
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			if !paramName.MatchString(name) {
				return PathPattern{}, fmt.Errorf(`parameter %q: name must be a letter or "_" followed by letters, digits or "_"`, name)
			}
			if params[name] {
				return PathPattern{}, fmt.Errorf("duplicate parameter {%s}", name)
			}
			params[name] = true
			pat.Segments = append(pat.Segments, Segment{Param: name})
		case strings.ContainsAny(s, "{}"):
			return PathPattern{}, errors.New(`a parameter must be a whole segment such as "{id}"`)
		default:
			pat.Segments = append(pat.Segments, Segment{Literal: s})
		}
	}
	if len(params) > MaxPathParams {
		return PathPattern{}, fmt.Errorf("must have at most %d parameters", MaxPathParams)
	}
	return pat, nil
}

// hasParam reports whether name is a parameter of p.
func (p PathPattern) hasParam(name string) bool {
	for _, s := range p.Segments {
		if s.Param == name {
			return true
		}
	}
	return false
}

// shape is p with parameter names left out: two paths of the same shape
// match the same requests.
func (p PathPattern) shape() string {
	var b strings.Builder
	for _, s := range p.Segments {
		b.WriteByte('/')
		if s.Param != "" {
			b.WriteString("{}")
		} else {
			b.WriteString(s.Literal)
		}
	}
	if p.Prefix {
		b.WriteString("/*")
	}
	return b.String()
}

// ValidHost reports whether h is a host a route or certificate can name: a
// lower-case DNS name ("api.example.com") or a single leading wildcard label
// followed by one ("*.example.com"), without a port or a trailing dot. The
// wildcard stands for one or more leading labels, as in nginx's
// server_name: routing by suffix is what operators expect of it.
func ValidHost(h string) bool {
	if len(h) > 253 {
		return false
	}
	name, _ := strings.CutPrefix(h, "*.")
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := range len(l) {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
