package deploy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
)

// Defaults of the active health check that validation needs: the timeout
// must stay below the interval whether they are written or defaulted.
const (
	defaultHealthInterval = 5 * time.Second
	defaultHealthTimeout  = 2 * time.Second
)

var (
	objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)
	policyName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

const hostRule = "must be a lower-case host name such as api.example.com or *.example.com, without a port"

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// Validate checks the rules a configuration must follow beyond its shape,
// and returns nil or Errors holding every problem with its field path.
// docs/configuration.md describes them for users; keep both in step.
//
// Names of upstreams, services, routes, consumers and certificates are
// required, match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$ and are unique within
// their kind; route names are unique across all services.
//
// A service names an existing upstream and has at least one route.
//
// A route has at least one path, each valid for ParsePath and different
// from the route's other paths. Hosts are valid for ValidHost. Methods are
// upper-case standard methods without duplicates. Header names are HTTP
// tokens. Rewrite starts with "/" and only uses {name} parameters that every
// path of the route has. StripPrefix needs every path to be a prefix path.
// No two routes may have a path of the same shape (parameter names aside)
// with the same hosts, methods, headers and priority: neither would win.
//
// An upstream has at least one target; addresses are host:port with a port
// of 1-65535 and are unique within the upstream; weights are 0-1000. The
// balancer is empty, round-robin, least-connections or consistent-hash;
// hash_on is required with consistent-hash and refused otherwise, its
// source is header, cookie or client-ip, and its name is a token required
// for header and cookie and refused for client-ip. Retries are 0-10.
// Durations are not negative. The health check path starts with "/", its
// interval is at least 100ms, its timeout is below its interval (defaults
// included), its thresholds are 0-100 and its statuses 100-599. Passive
// checks have consecutive_failures of 1-1000 and statuses 100-599.
//
// A credential's type is key (needs key), basic (needs username and
// password) or jwt (needs subject and secret), and the fields of the other
// types are refused. Keys and basic usernames are unique across consumers.
// Messages name the consumer holding a duplicate, never the secret.
//
// A certificate has at least one SNI, each valid for ValidHost and served
// by no other certificate; cert is a PEM certificate chain and key the PEM
// private key of its first certificate.
//
// Policies, wherever they are, name a kind of kinds (policy/catalog's
// Checker), at most once per scope, and their configurations are checked by
// that kind. A nil kinds knows no kind (see PolicyKinds).
func (c *Config) Validate(kinds PolicyKinds) error {
	v := validator{
		kinds:      c.policyChecker(kinds),
		routeNames: make(map[string]string),
		routeKeys:  make(map[routeKey]routeRef),
	}
	upstreams := make(map[string]string)
	for i := range c.Upstreams {
		p := fieldpath.Index("upstreams", i)
		v.name(upstreams, p, c.Upstreams[i].Name)
		v.upstream(p, &c.Upstreams[i])
	}
	services := make(map[string]string)
	for i := range c.Services {
		p := fieldpath.Index("services", i)
		v.name(services, p, c.Services[i].Name)
		v.service(p, &c.Services[i], upstreams)
	}
	v.consumers(c.Consumers)
	v.certificates(c.Certificates)
	v.policies("global_policies", c.GlobalPolicies)
	return v.errs.Err()
}

type validator struct {
	errs  Errors
	kinds PolicyChecker
	// routeNames maps a route name to the path of the route that has it.
	routeNames map[string]string
	// routeKeys maps what a route path matches to the route that has it.
	routeKeys map[routeKey]routeRef
}

// routeKey is what decides which route serves a request, for one path.
type routeKey struct {
	hosts, path, methods, headers string
	priority                      int
}

type routeRef struct {
	path, name string
	pathIndex  int
}

// name checks the name of the list element at path, recording it in seen
// (name to element path) to find duplicates.
func (v *validator) name(seen map[string]string, path, name string) {
	p := path + ".name"
	switch {
	case name == "":
		v.errs.Add(p, "required")
	case !objectName.MatchString(name):
		v.errs.Add(p, `must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`)
	case seen[name] != "":
		v.errs.Addf(p, "%q is already the name of %s", name, seen[name])
	default:
		seen[name] = path
	}
}

func (v *validator) service(path string, s *Service, upstreams map[string]string) {
	switch {
	case s.Upstream == "":
		v.errs.Add(path+".upstream", "required")
	case upstreams[s.Upstream] == "":
		v.errs.Addf(path+".upstream", "no upstream is named %q", s.Upstream)
	}
	if len(s.Routes) == 0 {
		v.errs.Add(path+".routes", "at least one route is required")
	}
	for i := range s.Routes {
		v.route(fieldpath.Index(path+".routes", i), &s.Routes[i])
	}
	v.policies(path+".policies", s.Policies)
}

func (v *validator) route(path string, r *Route) {
	v.name(v.routeNames, path, r.Name)
	for i, h := range r.Hosts {
		if !ValidHost(h) {
			v.errs.Add(fieldpath.Index(path+".hosts", i), hostRule)
		}
	}
	if len(r.Paths) == 0 {
		v.errs.Add(path+".paths", "at least one path is required")
	}
	// patterns holds the valid paths only, so that a bad path is reported
	// once, where it is, rather than again by the rules that use it.
	patterns := make(map[int]PathPattern, len(r.Paths))
	allPrefix := true
	for i, s := range r.Paths {
		pat, err := ParsePath(s)
		if err != nil {
			v.errs.Add(fieldpath.Index(path+".paths", i), err.Error())
			continue
		}
		patterns[i] = pat
		allPrefix = allPrefix && pat.Prefix
	}
	v.methods(path, r.Methods)
	for i, h := range r.Headers {
		p := fieldpath.Index(path+".headers", i) + ".name"
		switch {
		case h.Name == "":
			v.errs.Add(p, "required")
		case !httpascii.IsToken(h.Name):
			v.errs.Add(p, "must be an HTTP header name")
		}
	}
	if r.StripPrefix && !allPrefix {
		v.errs.Add(path+".strip_prefix", `only allowed when every path ends with "/*"`)
	}
	if r.Rewrite != "" {
		v.rewrite(path, r, patterns)
	}
	v.conflicts(path, r, patterns)
	v.policies(path+".policies", r.Policies)
}

func (v *validator) methods(path string, ms []string) {
	for i, m := range ms {
		p := fieldpath.Index(path+".methods", i)
		switch {
		case !slices.Contains(httpMethods, m):
			v.errs.Addf(p, "must be one of %s (upper case)", strings.Join(httpMethods, ", "))
		case slices.Index(ms, m) < i:
			v.errs.Addf(p, "duplicate of methods[%d]", slices.Index(ms, m))
		}
	}
}

func (v *validator) rewrite(path string, r *Route, patterns map[int]PathPattern) {
	p := path + ".rewrite"
	if !strings.HasPrefix(r.Rewrite, "/") {
		v.errs.Add(p, `must start with "/"`)
		return
	}
	names, err := rewriteParams(r.Rewrite)
	if err != nil {
		v.errs.Add(p, err.Error())
		return
	}
	for _, name := range names {
		for i := range r.Paths {
			if pat, ok := patterns[i]; ok && !pat.hasParam(name) {
				v.errs.Addf(p, "uses {%s}, which paths[%d] does not have", name, i)
			}
		}
	}
}

// rewriteParams returns the parameter names a rewrite uses, in order.
func rewriteParams(s string) ([]string, error) {
	var names []string
	for {
		open := strings.IndexAny(s, "{}")
		if open < 0 {
			return names, nil
		}
		if s[open] == '}' {
			return nil, errors.New(`has "}" without "{"`)
		}
		end := strings.IndexAny(s[open+1:], "{}")
		if end < 0 || s[open+1+end] == '{' {
			return nil, errors.New(`has "{" without "}"`)
		}
		name := s[open+1 : open+1+end]
		if !paramName.MatchString(name) {
			return nil, fmt.Errorf("{%s} is not a parameter name", name)
		}
		names = append(names, name)
		s = s[open+1+end+1:]
	}
}

// conflicts reports paths of r that match exactly what a path of an earlier
// route matches.
func (v *validator) conflicts(path string, r *Route, patterns map[int]PathPattern) {
	base := routeKey{
		hosts:    setKey(r.Hosts),
		methods:  setKey(r.Methods),
		headers:  headersKey(r.Headers),
		priority: r.Priority,
	}
	for i := range r.Paths {
		pat, ok := patterns[i]
		if !ok {
			continue
		}
		key := base
		key.path = pat.shape()
		p := fieldpath.Index(path+".paths", i)
		other, dup := v.routeKeys[key]
		switch {
		case !dup:
			v.routeKeys[key] = routeRef{path: path, name: r.Name, pathIndex: i}
		case other.path == path:
			v.errs.Addf(p, "matches the same requests as paths[%d]", other.pathIndex)
		default:
			v.errs.Addf(p, "conflicts with %s.paths[%d] of route %q: same hosts, path, methods, headers and priority", other.path, other.pathIndex, other.name)
		}
	}
}

// setKey is an unambiguous text for the set of values in list.
func setKey(list []string) string {
	set := make([]string, len(list))
	for i, s := range list {
		set[i] = strconv.Quote(s)
	}
	slices.Sort(set)
	return strings.Join(slices.Compact(set), ",")
}

// headersKey is an unambiguous text for a set of header matches, whose
// names are case-insensitive.
func headersKey(hs []HeaderMatch) string {
	set := make([]string, len(hs))
	for i, h := range hs {
		set[i] = strings.ToLower(h.Name) + ":" + setKey(h.Values)
	}
	return setKey(set)
}

func (v *validator) upstream(path string, u *Upstream) {
	if len(u.Targets) == 0 {
		v.errs.Add(path+".targets", "at least one target is required")
	}
	addresses := make(map[string]int)
	for i, t := range u.Targets {
		p := fieldpath.Index(path+".targets", i)
		if msg := checkAddress(t.Address); msg != "" {
			v.errs.Add(p+".address", msg)
		} else if first, dup := addresses[t.Address]; dup {
			v.errs.Addf(p+".address", "duplicate of targets[%d]", first)
		} else {
			addresses[t.Address] = i
		}
		v.intRange(p+".weight", t.Weight, 0, 1000)
	}

	switch u.Balancer {
	case "", BalancerRoundRobin, BalancerLeastConnections, BalancerConsistentHash:
	default:
		v.errs.Addf(path+".balancer", "must be %s, %s or %s", BalancerRoundRobin, BalancerLeastConnections, BalancerConsistentHash)
	}
	switch {
	case u.HashOn == nil && u.Balancer == BalancerConsistentHash:
		v.errs.Addf(path+".hash_on", "required with balancer %s", BalancerConsistentHash)
	case u.HashOn != nil && u.Balancer != BalancerConsistentHash:
		v.errs.Addf(path+".hash_on", "only allowed with balancer %s", BalancerConsistentHash)
	}
	if u.HashOn != nil {
		v.hashOn(path+".hash_on", u.HashOn)
	}

	v.nonNegative(path+".timeouts.connect", u.Timeouts.Connect)
	v.nonNegative(path+".timeouts.read", u.Timeouts.Read)
	v.nonNegative(path+".timeouts.write", u.Timeouts.Write)
	v.intRange(path+".retries", u.Retries, 0, 10)
	if u.HealthCheck != nil {
		v.healthCheck(path+".health_check", u.HealthCheck)
	}
	if pc := u.Passive; pc != nil {
		p := path + ".passive"
		v.intRange(p+".consecutive_failures", pc.ConsecutiveFailures, 1, 1000)
		v.nonNegative(p+".eject_for", pc.EjectFor)
		v.statuses(p+".statuses", pc.Statuses)
	}
}

// checkAddress returns what is wrong with a target address, or "".
func checkAddress(a string) string {
	if a == "" {
		return "required"
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return `must be host:port, such as "10.0.0.1:8080" or "orders.internal:80"`
	}
	// Digits only: Atoi would take "+80", which dialing does not.
	if n, err := strconv.Atoi(port); err != nil || strings.Trim(port, "0123456789") != "" || n < 1 || n > 65535 {
		return "must have a port number between 1 and 65535"
	}
	return ""
}

func (v *validator) hashOn(path string, h *HashOn) {
	switch h.Source {
	case HashOnHeader, HashOnCookie:
		switch {
		case h.Name == "":
			v.errs.Addf(path+".name", "required with source %s", h.Source)
		case !httpascii.IsToken(h.Name):
			v.errs.Addf(path+".name", "must be a %s name", h.Source)
		}
	case HashOnClientIP:
		if h.Name != "" {
			v.errs.Addf(path+".name", "not allowed with source %s", HashOnClientIP)
		}
	case "":
		v.errs.Add(path+".source", "required")
	default:
		v.errs.Addf(path+".source", "must be %s, %s or %s", HashOnHeader, HashOnCookie, HashOnClientIP)
	}
}

func (v *validator) healthCheck(path string, hc *ActiveHealthCheck) {
	switch {
	case hc.Path == "":
		v.errs.Add(path+".path", "required")
	case !strings.HasPrefix(hc.Path, "/"):
		v.errs.Add(path+".path", `must start with "/"`)
	}
	v.nonNegative(path+".interval", hc.Interval)
	v.nonNegative(path+".timeout", hc.Timeout)
	if hc.Interval > 0 && hc.Interval.Std() < 100*time.Millisecond {
		v.errs.Add(path+".interval", "must be at least 100ms")
	}
	interval, timeout := hc.Interval.Or(defaultHealthInterval), hc.Timeout.Or(defaultHealthTimeout)
	if hc.Interval >= 0 && hc.Timeout >= 0 && timeout >= interval {
		msg := fmt.Sprintf("must be less than the interval (%s)", interval)
		if hc.Timeout == 0 {
			msg += fmt.Sprintf("; the default is %s", defaultHealthTimeout)
		}
		v.errs.Add(path+".timeout", msg)
	}
	v.intRange(path+".healthy_threshold", hc.HealthyThreshold, 0, 100)
	v.intRange(path+".unhealthy_threshold", hc.UnhealthyThreshold, 0, 100)
	v.statuses(path+".statuses", hc.Statuses)
}

func (v *validator) statuses(path string, statuses []int) {
	for i, s := range statuses {
		v.intRange(fieldpath.Index(path, i), s, 100, 599)
	}
}

func (v *validator) intRange(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errs.Addf(path, "must be between %d and %d", lo, hi)
	}
}

func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.errs.Add(path, "must not be negative")
	}
}

// credentialFields lists the fields each credential type requires. The
// other fields are refused: the gateway would ignore them, so a password on
// a key credential is a mistake, not a second factor.
var credentialFields = map[string][]string{
	CredentialKey:   {"key"},
	CredentialBasic: {"username", "password"},
	CredentialJWT:   {"subject", "secret"},
}

// ownerRef is the element where a value that must be unique was first
// seen, and that element's name.
type ownerRef struct {
	path, name string
}

func (v *validator) consumers(cs []Consumer) {
	names := make(map[string]string)
	keys := make(map[string]ownerRef)
	usernames := make(map[string]ownerRef)
	for i := range cs {
		c := &cs[i]
		path := fieldpath.Index("consumers", i)
		v.name(names, path, c.Name)
		for j := range c.Credentials {
			cred := &c.Credentials[j]
			p := fieldpath.Index(path+".credentials", j)
			want, ok := credentialFields[cred.Type]
			if !ok {
				if cred.Type == "" {
					v.errs.Add(p+".type", "required")
				} else {
					v.errs.Addf(p+".type", "must be %s, %s or %s", CredentialKey, CredentialBasic, CredentialJWT)
				}
				continue
			}
			for _, f := range []struct{ name, value string }{
				{"key", cred.Key},
				{"username", cred.Username},
				{"password", cred.Password},
				{"subject", cred.Subject},
				{"secret", cred.Secret},
			} {
				required := slices.Contains(want, f.name)
				switch {
				case required && f.value == "":
					v.errs.Addf(p+"."+f.name, "required with type %s", cred.Type)
				case !required && f.value != "":
					v.errs.Addf(p+"."+f.name, "not allowed with type %s", cred.Type)
				}
			}
			ref := ownerRef{path: p, name: c.Name}
			switch cred.Type {
			case CredentialKey:
				v.unique(keys, cred.Key, ref, p+".key")
			case CredentialBasic:
				v.unique(usernames, cred.Username, ref, p+".username")
			}
		}
		v.policies(path+".policies", c.Policies)
	}
}

// unique reports a credential value already seen, naming where rather than
// the value, which may be a secret.
func (v *validator) unique(seen map[string]ownerRef, value string, ref ownerRef, path string) {
	if value == "" {
		return
	}
	if first, dup := seen[value]; dup {
		v.errs.Addf(path, "already used by consumer %q (%s)", first.name, first.path)
		return
	}
	seen[value] = ref
}

func (v *validator) certificates(certs []Certificate) {
	names := make(map[string]string)
	snis := make(map[string]ownerRef)
	for i := range certs {
		c := &certs[i]
		path := fieldpath.Index("certificates", i)
		v.name(names, path, c.Name)
		if len(c.SNIs) == 0 {
			v.errs.Add(path+".snis", "at least one SNI is required")
		}
		for j, sni := range c.SNIs {
			p := fieldpath.Index(path+".snis", j)
			if !ValidHost(sni) {
				v.errs.Add(p, hostRule)
				continue
			}
			if first, dup := snis[sni]; dup {
				v.errs.Addf(p, "already served by certificate %q (%s)", first.name, first.path)
				continue
			}
			snis[sni] = ownerRef{path: p, name: c.Name}
		}
		v.keyPair(path, c)
	}
}

// keyPair checks the certificate chain and its key. Messages come from the
// parsers, which name PEM block types but never quote what they read.
func (v *validator) keyPair(path string, c *Certificate) {
	chainOK := false
	switch msg := checkChain([]byte(c.Cert)); {
	case c.Cert == "":
		v.errs.Add(path+".cert", "required")
	case msg != "":
		v.errs.Add(path+".cert", msg)
	default:
		chainOK = true
	}
	if c.Key == "" {
		v.errs.Add(path+".key", "required")
		return
	}
	if !chainOK {
		return
	}
	if _, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key)); err != nil {
		v.errs.Add(path+".key", "must be the PEM private key of the first certificate of cert: "+strings.TrimPrefix(err.Error(), "tls: "))
	}
}

// checkChain returns what is wrong with a PEM certificate chain, or "".
func checkChain(b []byte) string {
	n := 0
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			break
		}
		b = rest
		n++
		if block.Type != "CERTIFICATE" {
			return fmt.Sprintf("must hold only CERTIFICATE PEM blocks, block %d is %q", n, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Sprintf("certificate %d: %s", n, strings.TrimPrefix(err.Error(), "x509: "))
		}
	}
	if n == 0 {
		return "must be a PEM certificate chain"
	}
	return ""
}

func (v *validator) policies(path string, ps []Policy) {
	seen := make(map[string]int)
	for i := range ps {
		p := fieldpath.Index(path, i)
		if first, dup := seen[ps[i].Name]; dup && ps[i].Name != "" {
			v.errs.Addf(p+".name", "policy %q is already set at %s", ps[i].Name, fieldpath.Index(path, first))
			continue
		}
		seen[ps[i].Name] = i
		v.policy(p, &ps[i])
	}
}
