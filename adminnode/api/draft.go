package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

func draftOut(d store.Draft) apitypes.Draft {
	return apitypes.Draft{Group: d.Group, Version: d.Version, UpdatedAt: d.UpdatedAt, UpdatedBy: d.UpdatedBy, Config: redact(d.Config)}
}

func (s *Server) getDraft(q *request) (any, error) {
	d, err := s.store.GetDraft(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	setETag(q, d.Version)
	return draftOut(d), nil
}

// putDraft replaces the whole draft. If-Match is required: a whole
// document written over a draft its author never saw is the lost update
// the ETag exists to prevent.
func (s *Server) putDraft(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name + "/draft"
	if q.r.Header.Get("If-Match") == "" {
		return nil, newError(http.StatusPreconditionRequired, apitypes.CodePreconditionRequired,
			"If-Match is required: send the ETag of the draft this document was based on (GET the draft first)")
	}
	version, err := ifMatch(q, 0)
	if err != nil {
		return nil, err
	}
	cfg, err := configFrom(q)
	if err != nil {
		return nil, err
	}
	cur, err := s.store.GetDraft(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	if err := keepSecrets(cfg, &cur.Config); err != nil {
		return nil, err
	}
	d, err := s.store.PutDraft(q.ctx, q.group.Name, *cfg, version, q.who.user)
	if err != nil {
		return nil, err
	}
	q.auditDetail = fmt.Sprintf("draft version %d", d.Version)
	setETag(q, d.Version)
	return draftOut(d), nil
}

func (s *Server) validateDraft(q *request) (any, error) {
	data, err := readBody(q)
	if err != nil {
		return nil, err
	}
	d, err := s.store.GetDraft(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	cfg := &d.Config
	if len(strings.TrimSpace(string(data))) > 0 {
		if cfg, err = deploy.Decode(data); err != nil {
			var errs deploy.Errors
			if errors.As(err, &errs) {
				return apitypes.Validation{Errors: fieldErrors(errs), Warnings: []apitypes.Warning{}}, nil
			}
			return nil, badRequest("", "%v", err)
		}
		if err := keepSecrets(cfg, &d.Config); err != nil {
			return nil, err
		}
	}
	// What is validated is what a deployment would be: the placeholders
	// resolved with the group's environment.
	st, err := s.settingsOf(q.ctx, q.group.Environment)
	if err != nil {
		return nil, err
	}
	resolved, err := resolve(cfg, st)
	if err != nil {
		e, internal := asAPIError(err)
		if internal || e.status != http.StatusUnprocessableEntity {
			return nil, err
		}
		errs := e.body.Errors
		if len(errs) == 0 {
			errs = []apitypes.FieldError{{Message: e.body.Message}}
		}
		return apitypes.Validation{Errors: errs, Warnings: []apitypes.Warning{}}, nil
	}
	v := validation(resolved)
	if v.Valid {
		// What the group's instances lack to run it: the gateways would
		// refuse the deployment.
		if v.Warnings, err = s.runWarnings(q.ctx, q.group.Name, resolved); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func validation(cfg *deploy.Config) apitypes.Validation {
	if err := cfg.Validate(catalog.Checker{}); err != nil {
		var errs deploy.Errors
		if !errors.As(err, &errs) {
			errs = deploy.Errors{{Message: err.Error()}}
		}
		return apitypes.Validation{Errors: fieldErrors(errs), Warnings: []apitypes.Warning{}}
	}
	sum, err := cfg.Checksum()
	if err != nil {
		return apitypes.Validation{Errors: []apitypes.FieldError{{Message: err.Error()}}, Warnings: []apitypes.Warning{}}
	}
	return apitypes.Validation{Valid: true, Checksum: sum, Errors: []apitypes.FieldError{}, Warnings: []apitypes.Warning{}}
}

func (s *Server) draftDiff(q *request) (any, error) {
	d, err := s.store.GetDraft(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	// The draft is written with its placeholders: it is compared with
	// the current deployment as written, not with the values it ran.
	from, label := &deploy.Config{}, "none"
	dep, err := s.deps.LatestDeployment(q.ctx, q.group.Name)
	switch {
	case err == nil:
		if from, err = template(dep); err != nil {
			return nil, err
		}
		label = fmt.Sprint(dep.Number)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return apitypes.Diff{Group: q.group.Name, From: label, To: "draft", Changes: diffChanges(from, &d.Config)}, nil
}

// latestConfig is the configuration of the group's current deployment, or
// an empty one when it has none.
func (s *Server) latestConfig(ctx context.Context, group string) (*deploy.Config, string, error) {
	dep, err := s.deps.LatestDeployment(ctx, group)
	if errors.Is(err, store.ErrNotFound) {
		return &deploy.Config{}, "none", nil
	}
	if err != nil {
		return nil, "", err
	}
	cfg, err := deploy.DecodeCanonical(dep.Config)
	if err != nil {
		return nil, "", fmt.Errorf("decode deployment %d of group %q: %w", dep.Number, group, err)
	}
	return cfg, fmt.Sprint(dep.Number), nil
}

func diffChanges(from, to *deploy.Config) []deploy.Change {
	c := deploy.Diff(from, to)
	if c == nil {
		c = []deploy.Change{}
	}
	return c
}

// editDraft applies change to the draft and stores it, retrying when
// another edit lands in between: a per-resource edit applies to whatever
// the draft is, so it never loses the other edit. With If-Match, the
// caller asked for a precise version instead, and a conflict is theirs to
// see.
func (s *Server) editDraft(q *request, change func(cfg *deploy.Config) error) (store.Draft, error) {
	pinned := q.r.Header.Get("If-Match") != ""
	for attempt := 0; ; attempt++ {
		d, err := s.store.GetDraft(q.ctx, q.group.Name)
		if err != nil {
			return store.Draft{}, err
		}
		version := d.Version
		if pinned {
			if version, err = ifMatch(q, d.Version); err != nil {
				return store.Draft{}, err
			}
		}
		cfg := d.Config
		if err := change(&cfg); err != nil {
			return store.Draft{}, err
		}
		nd, err := s.store.PutDraft(q.ctx, q.group.Name, cfg, version, q.who.user)
		if errors.Is(err, store.ErrConflict) && !pinned && attempt < 5 {
			continue
		}
		if err == nil {
			setETag(q, nd.Version)
			q.auditDetail = fmt.Sprintf("draft version %d", nd.Version)
		}
		return nd, err
	}
}

// readDraft returns the group's draft configuration.
func (s *Server) readDraft(q *request) (deploy.Config, error) {
	d, err := s.store.GetDraft(q.ctx, q.group.Name)
	if err != nil {
		return deploy.Config{}, err
	}
	setETag(q, d.Version)
	return d.Config, nil
}

// decodeResource decodes one resource of a draft as strictly as a whole
// configuration, by decoding it inside one: field paths then read as in
// the document ("services[0].routes[0].paths[0]").
func decodeResource(q *request, wrap func(raw []byte) []byte) (*deploy.Config, error) {
	data, err := readBody(q)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, badRequest("", "request body is empty")
	}
	if err := decodeJSONBytes(data, new(any)); err != nil {
		return nil, err
	}
	cfg, err := deploy.Decode(wrap(data))
	if err != nil {
		var errs deploy.Errors
		if errors.As(err, &errs) {
			e := invalidConfig(errs)
			e.status, e.body.Code = http.StatusBadRequest, apitypes.CodeBadRequest
			return nil, e
		}
		return nil, badRequest("", "%v", err)
	}
	return cfg, nil
}

// kindOps reaches the named resources of one kind in a configuration.
type kindOps struct {
	// field is the configuration's field, as in paths.
	field string
	names func(c *deploy.Config) []string
	// get returns resource i, redacted.
	get    func(c *deploy.Config, i int) any
	set    func(c *deploy.Config, i int, from *deploy.Config)
	add    func(c *deploy.Config, from *deploy.Config)
	remove func(c *deploy.Config, i int)
	// only returns a configuration holding resource i alone.
	only func(c *deploy.Config, i int) *deploy.Config
	// name and rename concern the one resource of a decoded wrapper.
	name   func(c *deploy.Config) string
	rename func(c *deploy.Config, name string)
}

// opsFor builds the kindOps of the list field list reaches, whose
// elements are named by name and shown by show.
func opsFor[T any](field string, list func(c *deploy.Config) *[]T, name func(x *T) *string, show func(x T) any) kindOps {
	return kindOps{
		field: field,
		names: func(c *deploy.Config) []string {
			l := *list(c)
			out := make([]string, len(l))
			for i := range l {
				out[i] = *name(&l[i])
			}
			return out
		},
		get: func(c *deploy.Config, i int) any { return show((*list(c))[i]) },
		set: func(c *deploy.Config, i int, f *deploy.Config) { (*list(c))[i] = (*list(f))[0] },
		add: func(c *deploy.Config, f *deploy.Config) { *list(c) = append(*list(c), (*list(f))[0]) },
		remove: func(c *deploy.Config, i int) {
			*list(c) = slices.Delete(slices.Clone(*list(c)), i, i+1)
		},
		only: func(c *deploy.Config, i int) *deploy.Config {
			one := &deploy.Config{}
			*list(one) = []T{(*list(c))[i]}
			return one
		},
		name:   func(c *deploy.Config) string { return *name(&(*list(c))[0]) },
		rename: func(c *deploy.Config, n string) { *name(&(*list(c))[0]) = n },
	}
}

func opsOf(kind string) kindOps {
	switch kind {
	case "services":
		return opsFor("services", func(c *deploy.Config) *[]deploy.Service { return &c.Services },
			func(x *deploy.Service) *string { return &x.Name }, func(x deploy.Service) any { return x })
	case "upstreams":
		return opsFor("upstreams", func(c *deploy.Config) *[]deploy.Upstream { return &c.Upstreams },
			func(x *deploy.Upstream) *string { return &x.Name }, func(x deploy.Upstream) any { return x })
	case "consumers":
		return opsFor("consumers", func(c *deploy.Config) *[]deploy.Consumer { return &c.Consumers },
			func(x *deploy.Consumer) *string { return &x.Name }, func(x deploy.Consumer) any { return redactConsumer(x) })
	}
	return opsFor("certificates", func(c *deploy.Config) *[]deploy.Certificate { return &c.Certificates },
		func(x *deploy.Certificate) *string { return &x.Name }, func(x deploy.Certificate) any { return redactCertificate(x) })
}

// draftSample is the body type of a kind, for the OpenAPI description.
func draftSample(kind string) any {
	switch kind {
	case "services":
		return deploy.Service{}
	case "upstreams":
		return deploy.Upstream{}
	case "consumers":
		return deploy.Consumer{}
	}
	return deploy.Certificate{}
}

func singular(kind string) string { return strings.TrimSuffix(kind, "s") }

func wrapOne(field string) func(raw []byte) []byte {
	return func(raw []byte) []byte {
		return []byte(`{"` + field + `":[` + string(raw) + `]}`)
	}
}

func listResources(kind string) func(s *Server, q *request) (any, error) {
	ops := opsOf(kind)
	return func(s *Server, q *request) (any, error) {
		cfg, err := s.readDraft(q)
		if err != nil {
			return nil, err
		}
		n := len(ops.names(&cfg))
		out := make([]any, n)
		for i := range n {
			out[i] = ops.get(&cfg, i)
		}
		return out, nil
	}
}

func getResource(kind string) func(s *Server, q *request) (any, error) {
	ops := opsOf(kind)
	return func(s *Server, q *request) (any, error) {
		cfg, err := s.readDraft(q)
		if err != nil {
			return nil, err
		}
		name := q.vars["name"]
		i := slices.Index(ops.names(&cfg), name)
		if i < 0 {
			return nil, notFound("%s %q not in the draft of group %q", singular(kind), name, q.group.Name)
		}
		return ops.get(&cfg, i), nil
	}
}

func createResource(kind string) func(s *Server, q *request) (any, error) {
	ops := opsOf(kind)
	return func(s *Server, q *request) (any, error) {
		in, err := decodeResource(q, wrapOne(ops.field))
		if err != nil {
			return nil, err
		}
		name := ops.name(in)
		q.auditTarget = "group/" + q.group.Name + "/draft/" + kind + "/" + name
		if name == "" {
			return nil, badRequest("name", "name is required")
		}
		var out any
		_, err = s.editDraft(q, func(cfg *deploy.Config) error {
			if slices.Contains(ops.names(cfg), name) {
				return conflict("%s %q already exists in the draft of group %q", singular(kind), name, q.group.Name)
			}
			if err := keepSecrets(in, &deploy.Config{}); err != nil {
				return err
			}
			ops.add(cfg, in)
			out = ops.get(cfg, len(ops.names(cfg))-1)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}

func putResource(kind string) func(s *Server, q *request) (any, error) {
	ops := opsOf(kind)
	return func(s *Server, q *request) (any, error) {
		name := q.vars["name"]
		q.auditTarget = "group/" + q.group.Name + "/draft/" + kind + "/" + name
		in, err := decodeResource(q, wrapOne(ops.field))
		if err != nil {
			return nil, err
		}
		switch ops.name(in) {
		case "":
			ops.rename(in, name)
		case name:
		default:
			return nil, badRequest("name", "name %q differs from the %s in the path %q", ops.name(in), singular(kind), name)
		}
		var out any
		_, err = s.editDraft(q, func(cfg *deploy.Config) error {
			i := slices.Index(ops.names(cfg), name)
			if i < 0 {
				return notFound("%s %q not in the draft of group %q", singular(kind), name, q.group.Name)
			}
			// Secrets are matched against the resource being replaced
			// alone, at index 0 like the decoded one.
			if err := keepSecrets(in, ops.only(cfg, i)); err != nil {
				return err
			}
			ops.set(cfg, i, in)
			out = ops.get(cfg, i)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
}

func deleteResource(kind string) func(s *Server, q *request) (any, error) {
	ops := opsOf(kind)
	return func(s *Server, q *request) (any, error) {
		name := q.vars["name"]
		q.auditTarget = "group/" + q.group.Name + "/draft/" + kind + "/" + name
		_, err := s.editDraft(q, func(cfg *deploy.Config) error {
			i := slices.Index(ops.names(cfg), name)
			if i < 0 {
				return notFound("%s %q not in the draft of group %q", singular(kind), name, q.group.Name)
			}
			ops.remove(cfg, i)
			return nil
		})
		return nil, err
	}
}

// service finds the path's {service} in cfg.
func service(q *request, cfg *deploy.Config) (int, error) {
	name := q.vars["service"]
	i := slices.IndexFunc(cfg.Services, func(s deploy.Service) bool { return s.Name == name })
	if i < 0 {
		return -1, notFound("service %q not in the draft of group %q", name, q.group.Name)
	}
	return i, nil
}

func routeIndex(q *request, svc deploy.Service) (int, error) {
	name := q.vars["route"]
	i := slices.IndexFunc(svc.Routes, func(r deploy.Route) bool { return r.Name == name })
	if i < 0 {
		return -1, notFound("route %q not in service %q of the draft of group %q", name, svc.Name, q.group.Name)
	}
	return i, nil
}

func (s *Server) listRoutes(q *request) (any, error) {
	cfg, err := s.readDraft(q)
	if err != nil {
		return nil, err
	}
	i, err := service(q, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Services[i].Routes == nil {
		return []deploy.Route{}, nil
	}
	return cfg.Services[i].Routes, nil
}

func (s *Server) getRoute(q *request) (any, error) {
	cfg, err := s.readDraft(q)
	if err != nil {
		return nil, err
	}
	i, err := service(q, &cfg)
	if err != nil {
		return nil, err
	}
	j, err := routeIndex(q, cfg.Services[i])
	if err != nil {
		return nil, err
	}
	return cfg.Services[i].Routes[j], nil
}

func decodeRoute(q *request) (deploy.Route, error) {
	in, err := decodeResource(q, func(raw []byte) []byte {
		return []byte(`{"services":[{"name":"s","upstream":"u","routes":[` + string(raw) + `]}]}`)
	})
	if err != nil {
		return deploy.Route{}, err
	}
	return in.Services[0].Routes[0], nil
}

// editService applies change to the path's service of the draft.
func (s *Server) editService(q *request, change func(svc *deploy.Service) error) error {
	_, err := s.editDraft(q, func(cfg *deploy.Config) error {
		i, err := service(q, cfg)
		if err != nil {
			return err
		}
		cfg.Services = slices.Clone(cfg.Services)
		svc := cfg.Services[i]
		svc.Routes = slices.Clone(svc.Routes)
		if err := change(&svc); err != nil {
			return err
		}
		cfg.Services[i] = svc
		return nil
	})
	return err
}

func (s *Server) createRoute(q *request) (any, error) {
	r, err := decodeRoute(q)
	if err != nil {
		return nil, err
	}
	q.auditTarget = "group/" + q.group.Name + "/draft/services/" + q.vars["service"] + "/routes/" + r.Name
	if r.Name == "" {
		return nil, badRequest("name", "name is required")
	}
	err = s.editService(q, func(svc *deploy.Service) error {
		if slices.ContainsFunc(svc.Routes, func(x deploy.Route) bool { return x.Name == r.Name }) {
			return conflict("route %q already exists in service %q", r.Name, svc.Name)
		}
		svc.Routes = append(svc.Routes, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) putRoute(q *request) (any, error) {
	name := q.vars["route"]
	q.auditTarget = "group/" + q.group.Name + "/draft/services/" + q.vars["service"] + "/routes/" + name
	r, err := decodeRoute(q)
	if err != nil {
		return nil, err
	}
	switch r.Name {
	case "":
		r.Name = name
	case name:
	default:
		return nil, badRequest("name", "name %q differs from the route in the path %q", r.Name, name)
	}
	err = s.editService(q, func(svc *deploy.Service) error {
		j, err := routeIndex(q, *svc)
		if err != nil {
			return err
		}
		svc.Routes[j] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Server) deleteRoute(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name + "/draft/services/" + q.vars["service"] + "/routes/" + q.vars["route"]
	return nil, s.editService(q, func(svc *deploy.Service) error {
		j, err := routeIndex(q, *svc)
		if err != nil {
			return err
		}
		svc.Routes = slices.Delete(svc.Routes, j, j+1)
		return nil
	})
}

func (s *Server) getGlobalPolicies(q *request) (any, error) {
	cfg, err := s.readDraft(q)
	if err != nil {
		return nil, err
	}
	if cfg.GlobalPolicies == nil {
		return []deploy.Policy{}, nil
	}
	return cfg.GlobalPolicies, nil
}

func (s *Server) putGlobalPolicies(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name + "/draft/global-policies"
	in, err := decodeResource(q, func(raw []byte) []byte {
		return []byte(`{"global_policies":` + string(raw) + `}`)
	})
	if err != nil {
		return nil, err
	}
	_, err = s.editDraft(q, func(cfg *deploy.Config) error {
		cfg.GlobalPolicies = in.GlobalPolicies
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.GlobalPolicies == nil {
		return []deploy.Policy{}, nil
	}
	return in.GlobalPolicies, nil
}
