package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/certs"
	"github.com/gatehouse/gatehouse/gateway/router"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/policy"
)

// Snapshot is one compiled configuration. Nothing in it changes after
// Compile; a new configuration gives a new Snapshot.
type Snapshot struct {
	Checksum  string
	AppliedAt time.Time
	Origin    string
	Config    *deploy.Config
	Upstreams map[string]*upstream.Upstream
	Certs     *certs.Set

	table  *router.Table
	routes []route
}

// route is what a matched request needs, resolved once per configuration.
type route struct {
	service, name string
	upstream      *upstream.Upstream
	stripPrefix   bool
	rewrite       []rewritePart
	hashSource    string
	hashName      string
	metrics       *metrics.Route
	// chain is the route's policies, nil without any.
	chain *policy.Chain
}

// rewritePart is a literal piece of a rewrite template or, when param is
// set, the value of that path parameter.
type rewritePart struct {
	literal string
	param   string
}

// Compile builds a Snapshot. ups are the upstreams of cfg as built by the
// upstream registry; m gives each route its metrics; pe what the policies
// are built with.
func Compile(cfg *deploy.Config, checksum string, ups map[string]*upstream.Upstream, m *metrics.Gateway, pe *PolicyEnv) (*Snapshot, error) {
	set, err := certs.Build(cfg.Certificates)
	if err != nil {
		return nil, err
	}
	if pe == nil {
		pe = &PolicyEnv{}
	}
	chains, err := pe.chains(cfg, ups)
	if err != nil {
		return nil, fmt.Errorf("build policies: %w", err)
	}
	var specs []router.Spec
	var routes []route
	for si, svc := range cfg.Services {
		up, ok := ups[svc.Upstream]
		if !ok {
			return nil, fmt.Errorf("services[%d]: upstream %q not built", si, svc.Upstream)
		}
		for _, r := range svc.Routes {
			rt := route{
				service:     svc.Name,
				name:        r.Name,
				upstream:    up,
				stripPrefix: r.StripPrefix,
				rewrite:     parseRewrite(r.Rewrite),
				metrics:     m.Route(svc.Name, r.Name),
				chain:       chains[len(routes)],
			}
			if h := up.Config.HashOn; h != nil && up.Config.Balancer == deploy.BalancerConsistentHash {
				rt.hashSource, rt.hashName = h.Source, h.Name
			}
			specs = append(specs, router.Spec{
				Hosts:    r.Hosts,
				Paths:    r.Paths,
				Methods:  r.Methods,
				Headers:  r.Headers,
				Priority: r.Priority,
				Handle:   len(routes),
			})
			routes = append(routes, rt)
		}
	}
	table, err := router.Build(specs)
	if err != nil {
		return nil, fmt.Errorf("compile routes: %w", err)
	}
	return &Snapshot{
		Checksum:  checksum,
		Config:    cfg,
		Upstreams: ups,
		Certs:     set,
		table:     table,
		routes:    routes,
	}, nil
}

// hashOn is the consistent-hash source of up as the route uses it: its
// own upstream's, resolved at compile time, or that of the upstream a
// policy chose instead.
func (rt *route) hashOn(up *upstream.Upstream) (source, name string) {
	if up == rt.upstream {
		return rt.hashSource, rt.hashName
	}
	if h := up.Config.HashOn; h != nil && up.Config.Balancer == deploy.BalancerConsistentHash {
		return h.Source, h.Name
	}
	return "", ""
}

// appendPath appends the path the target receives, unescaped: the route's
// rewrite with its parameters, the path less its matched prefix, or the
// normalised request path as it is. Both engines forward what it gives.
func (rt *route) appendPath(dst []byte, m *router.Match, path []byte) []byte {
	switch {
	case rt.rewrite != nil:
		for _, part := range rt.rewrite {
			if part.param == "" {
				dst = append(dst, part.literal...)
				continue
			}
			for i := 0; i < m.NParams; i++ {
				if m.Params[i].Name == part.param {
					dst = append(dst, m.Params[i].Value...)
					break
				}
			}
		}
		return dst
	case rt.stripPrefix:
		rest := path[m.PrefixLen:]
		if len(rest) == 0 || rest[0] != '/' {
			dst = append(dst, '/')
		}
		return append(dst, rest...)
	}
	return append(dst, path...)
}

func parseRewrite(tmpl string) []rewritePart {
	var parts []rewritePart
	for tmpl != "" {
		open := strings.IndexByte(tmpl, '{')
		end := -1
		if open >= 0 {
			end = strings.IndexByte(tmpl[open:], '}')
		}
		if open < 0 || end < 0 {
			parts = append(parts, rewritePart{literal: tmpl})
			break
		}
		if open > 0 {
			parts = append(parts, rewritePart{literal: tmpl[:open]})
		}
		parts = append(parts, rewritePart{param: tmpl[open+1 : open+end]})
		tmpl = tmpl[open+end+1:]
	}
	return parts
}
