package transform

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// cors answers CORS preflights itself and adds the CORS headers to the
// responses of allowed origins. Browsers enforce CORS; the gateway only
// says what is allowed, so a request from another origin still goes on,
// without the headers that would let a browser page read its answer.
type cors struct {
	anyOrigin bool
	origins   map[string]struct{}
	wildcards []originPattern
	// methods, headers and expose are the header values, joined once;
	// headers is empty to echo Access-Control-Request-Headers.
	methods, headers, expose string
	credentials              bool
	maxAge                   string
	// varyActual and varyPreflight are the Vary the answers need: on
	// Origin unless every origin gets "*", and on
	// Access-Control-Request-Headers for a preflight that echoes them.
	varyActual    []byte
	varyPreflight string
}

// originPattern is "*.example.com", with an optional scheme and port:
// any origin with one or more labels before the domain.
type originPattern struct {
	scheme string // "" for http and https
	suffix string // ".example.com" or ".example.com:8443"
}

var defaultMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

func newCORS(config map[string]any, _ *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &cors{origins: map[string]struct{}{}}

	r.Required("origins")
	origins, ok := stringsField(r, &errs, "origins")
	if ok && len(origins) == 0 {
		r.Fail("origins", "must not be empty")
	}
	for i, o := range origins {
		path := fieldpath.Index("origins", i)
		switch {
		case o == "*":
			if len(origins) > 1 {
				errs.Add(path, `"*" allows every origin: it must be the only one`)
			}
			p.anyOrigin = true
		case strings.Contains(o, "*"):
			pat, err := parseOriginPattern(o)
			if err != nil {
				errs.Add(path, err.Error())
				continue
			}
			p.wildcards = append(p.wildcards, pat)
		default:
			origin, err := parseOrigin(o)
			if err != nil {
				errs.Add(path, err.Error())
				continue
			}
			p.origins[origin] = struct{}{}
		}
	}

	methods, ok := stringsField(r, &errs, "methods")
	switch {
	case !r.Has("methods"):
		methods = defaultMethods
	case ok && len(methods) == 0:
		r.Fail("methods", "must not be empty")
	}
	var names []string
	for i, m := range methods {
		if !httpascii.IsToken(m) || m != strings.ToUpper(m) {
			errs.Addf(fieldpath.Index("methods", i), "%q is not a method: methods are upper-case tokens such as \"GET\"", m)
			continue
		}
		names = append(names, m)
	}
	p.methods = strings.Join(names, ", ")

	headers, ok := stringsField(r, &errs, "headers")
	if ok && len(headers) == 0 {
		r.Fail("headers", "must not be empty: leave it out to allow the headers the browser asks for")
	}
	p.headers = joinHeaderNames(&errs, "headers", headers,
		`"*" is not needed: leave headers out to allow the headers the browser asks for`)
	p.credentials = r.Bool("credentials", false)
	exposeStar := ""
	if p.credentials {
		exposeStar = `"*" is not a wildcard for requests with credentials: list the headers`
	}
	p.expose = joinHeaderNames(&errs, "expose_headers", r.Strings("expose_headers"), exposeStar)
	p.maxAge = strconv.Itoa(int(r.Duration("max_age", time.Hour, 0, 24*time.Hour) / time.Second))
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}

	if !p.anyOrigin || p.credentials {
		p.varyActual = []byte("Origin")
	}
	switch {
	case p.headers != "":
		p.varyPreflight = string(p.varyActual)
	case p.varyActual != nil:
		p.varyPreflight = "Origin, Access-Control-Request-Headers"
	default:
		p.varyPreflight = "Access-Control-Request-Headers"
	}
	return p, nil
}

// joinHeaderNames checks the header names of the list at key and joins
// them for a header value. star is why "*" is refused, "" when it is
// allowed.
func joinHeaderNames(errs *policy.ConfigErrors, key string, list []string, star string) string {
	var names []string
	for i, h := range list {
		path := fieldpath.Index(key, i)
		switch {
		case h == "*" && star != "":
			errs.Add(path, star)
		case !httpascii.IsToken(h):
			errs.Addf(path, "%q is not a valid header name", h)
		default:
			names = append(names, h)
		}
	}
	return strings.Join(names, ", ")
}

// parseOrigin checks an origin as browsers send it, scheme://host[:port],
// and returns it in lower case, as browsers write it.
func parseOrigin(s string) (string, error) {
	bad := fmt.Errorf(`must be "*", an origin such as "https://app.example.com" or a wildcard such as "*.example.com", got %q`, s)
	scheme, host, ok := strings.Cut(strings.ToLower(s), "://")
	if !ok || scheme != "http" && scheme != "https" || !validHostPort(host) {
		return "", bad
	}
	return scheme + "://" + host, nil
}

// parseOriginPattern reads [scheme://]*.domain[:port].
func parseOriginPattern(s string) (originPattern, error) {
	bad := fmt.Errorf(`a wildcard origin is "*.example.com" or "https://*.example.com", with an optional port, got %q`, s)
	var p originPattern
	rest := strings.ToLower(s)
	if scheme, after, ok := strings.Cut(rest, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return p, bad
		}
		p.scheme, rest = scheme, after
	}
	domain, ok := strings.CutPrefix(rest, "*.")
	if !ok || strings.Contains(domain, "*") || !validHostPort(domain) || strings.HasPrefix(domain, "[") {
		return p, bad
	}
	p.suffix = "." + domain
	return p, nil
}

// validHostPort reports whether s is host[:port] with nothing else: no
// path, user or query.
func validHostPort(s string) bool {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host, port = s[:i], s[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return false
		}
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		for i := 0; i < len(host); i++ {
			if b := host[i]; !(b == ':' || b == '.' || '0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
				return false
			}
		}
		return host != ""
	}
	if host == "" || host[0] == '.' || host[len(host)-1] == '.' {
		return false
	}
	for i := 0; i < len(host); i++ {
		if !hostChar(host[i]) {
			return false
		}
	}
	return true
}

// hostChar reports whether b may be part of a lower-case host name. "_" is
// not in DNS's rules but is in container and service names.
func hostChar(b byte) bool {
	return b == '-' || b == '.' || b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z'
}

// allowed reports whether origin may read the answers.
func (p *cors) allowed(origin []byte) bool {
	if p.anyOrigin {
		return true
	}
	if _, ok := p.origins[string(origin)]; ok {
		return true
	}
	for i := range p.wildcards {
		if p.wildcards[i].match(origin) {
			return true
		}
	}
	return false
}

func (w *originPattern) match(origin []byte) bool {
	i := bytes.Index(origin, []byte("://"))
	if i < 0 {
		return false
	}
	scheme, host := origin[:i], origin[i+3:]
	switch {
	case w.scheme == "" && string(scheme) != "http" && string(scheme) != "https",
		w.scheme != "" && string(scheme) != w.scheme,
		len(host) <= len(w.suffix) || string(host[len(host)-len(w.suffix):]) != w.suffix:
		return false
	}
	for _, b := range host[:len(host)-len(w.suffix)] {
		if !hostChar(b) {
			return false
		}
	}
	return true
}

// requestOrigin is the request's Origin, and whether the request is a
// preflight.
func requestOrigin(req policy.Request) (origin []byte, preflight bool) {
	origin = req.Header("Origin")
	preflight = len(origin) > 0 && string(req.Method()) == http.MethodOptions &&
		len(req.Header("Access-Control-Request-Method")) > 0
	return origin, preflight
}

// Run answers preflights: 204 with what is allowed, or 403 for an origin
// that is not, rather than passing the OPTIONS to an upstream that might
// answer it with CORS headers of its own.
func (p *cors) Run(c *policy.Context) bool {
	origin, preflight := requestOrigin(c.Request)
	if !preflight {
		return true
	}
	if !p.allowed(origin) {
		if p.varyActual != nil {
			c.AddResponseHeader("Vary", p.varyActual)
		}
		c.Reject(http.StatusForbidden, "origin_not_allowed", "the origin is not allowed to call this API")
		return false
	}
	p.allowOrigin(c, origin)
	c.SetResponseHeaderString("Access-Control-Allow-Methods", p.methods)
	switch {
	case p.headers != "":
		c.SetResponseHeaderString("Access-Control-Allow-Headers", p.headers)
	default:
		if h := c.Request.Header("Access-Control-Request-Headers"); len(h) > 0 {
			c.SetResponseHeader("Access-Control-Allow-Headers", h)
		}
	}
	c.SetResponseHeaderString("Access-Control-Max-Age", p.maxAge)
	if p.varyPreflight != "" {
		c.SetResponseHeaderString("Vary", p.varyPreflight)
	}
	c.Respond(http.StatusNoContent, "", nil)
	return false
}

// allowOrigin says that origin may read the answer: "*" when every origin
// may, unless credentials are allowed, which browsers refuse with "*".
func (p *cors) allowOrigin(c *policy.Context, origin []byte) {
	if p.anyOrigin && !p.credentials {
		c.SetResponseHeaderString("Access-Control-Allow-Origin", "*")
	} else {
		c.SetResponseHeader("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		c.SetResponseHeaderString("Access-Control-Allow-Credentials", "true")
	}
}

// Respond adds the CORS headers to the answer of an actual request,
// whoever gave it, so that a page can read an error too. Preflights were
// answered in Run (or refused before it, which fails them anyway).
func (p *cors) Respond(c *policy.Context, _ int) {
	origin, preflight := requestOrigin(c.Request)
	if preflight {
		return
	}
	if p.varyActual != nil {
		// Even without Origin: a cache must not give this answer to a
		// request that has one.
		c.AddResponseHeader("Vary", p.varyActual)
	}
	if len(origin) == 0 || !p.allowed(origin) {
		return
	}
	p.allowOrigin(c, origin)
	if p.expose != "" {
		c.SetResponseHeaderString("Access-Control-Expose-Headers", p.expose)
	}
}
