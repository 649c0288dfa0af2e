package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/deploy/placeholder"
	"github.com/gatehouse/gatehouse/policy/catalog"
	"github.com/gatehouse/gatehouse/promotion"
)

// packageMediaType is the media type of a package file (.ghpkg).
const packageMediaType = "application/vnd.gatehouse.package+json"

// settings are the values and secrets of an environment, secrets opened.
type settings struct {
	env           string
	vars, secrets placeholder.Values
}

// settingsOf reads environment env; "" is no environment, which resolves
// only placeholders with defaults.
func (s *Server) settingsOf(ctx context.Context, env string) (settings, error) {
	out := settings{env: env}
	if env == "" {
		return out, nil
	}
	e, err := s.store.GetEnvironment(ctx, env)
	if errors.Is(err, store.ErrNotFound) {
		return out, newError(http.StatusUnprocessableEntity, apitypes.CodeInvalidConfig, "environment %q does not exist", env)
	}
	if err != nil {
		return out, err
	}
	out.vars = e.Values
	secs, err := s.store.ListSecrets(ctx, env)
	if err != nil {
		return out, err
	}
	out.secrets = make(placeholder.Values, len(secs))
	for _, sec := range secs {
		v, err := s.secretKey.Open(sec.Environment, sec.Name, sec.Sealed)
		if err != nil {
			// Left out, the secret is reported missing by name, as one
			// that cannot be used; its sealed bytes are never quoted.
			s.log.Error("open secret", "environment", env, "name", sec.Name, "error", err)
			continue
		}
		out.secrets[sec.Name] = string(v)
	}
	return out, nil
}

// resolvePlaceholders replaces the placeholders of tmpl with st's values,
// every missing name in one 422 error listing the fields using it.
func resolvePlaceholders(tmpl *deploy.Config, st settings) (*deploy.Config, error) {
	cfg, err := placeholder.Resolve(tmpl, st.vars, st.secrets)
	var missing *placeholder.MissingError
	if errors.As(err, &missing) {
		e := newError(http.StatusUnprocessableEntity, apitypes.CodeInvalidConfig, "%s", missing.Error())
		if st.env == "" {
			e.body.Message += "\nthe group has no environment: set one with gatehouse group update GROUP --environment ENV"
		} else {
			e.body.Message += fmt.Sprintf("\nset them in environment %q", st.env)
		}
		for _, m := range missing.Missing {
			name := m.Name
			if m.Secret {
				name = "secret:" + name
			}
			for _, p := range m.Paths {
				e.body.Errors = append(e.body.Errors, apitypes.FieldError{Field: p, Message: "no value for " + name})
			}
		}
		if len(e.body.Errors) > 0 {
			e.body.Field = e.body.Errors[0].Field
		}
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// resolve is resolvePlaceholders and the configuration's validation: what
// a deployment of tmpl would be, or why there can be none.
func resolve(tmpl *deploy.Config, st settings) (*deploy.Config, error) {
	cfg, err := resolvePlaceholders(tmpl, st)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(catalog.Checker{}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// build makes the stored form of deployment number of group: resolved
// signed as gateways receive it, with tmpl kept beside it when it differs
// (it has placeholders), for exports.
func (s *Server) build(group string, number uint64, tmpl, resolved *deploy.Config, author, message string) (store.Deployment, error) {
	d, err := s.sign(group, number, resolved, author, message)
	if err != nil {
		return d, err
	}
	t, err := tmpl.Canonical()
	if err != nil {
		return d, err
	}
	if !bytes.Equal(t, d.Config) {
		d.Template = t
	}
	return d, nil
}

// template is the configuration of d as written, placeholders included.
func template(d store.Deployment) (*deploy.Config, error) {
	if len(d.Template) == 0 {
		return decodeDeployment(d)
	}
	cfg, err := deploy.DecodeCanonical(d.Template)
	if err != nil {
		return nil, fmt.Errorf("decode template of deployment %d of group %q: %w", d.Number, d.Group, err)
	}
	return cfg, nil
}

// hideResolvedSecrets returns resolved with every string that a
// ${secret:NAME} placeholder of tmpl stood for replaced by
// deploy.Redacted: the fields redact knows are not the only ones a secret
// placeholder may fill (a policy's Redis password, a header value).
// Resolving changes strings only, so both have the same shape.
func hideResolvedSecrets(resolved, tmpl []byte) (*deploy.Config, error) {
	var r, t any
	if err := json.Unmarshal(resolved, &r); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tmpl, &t); err != nil {
		return nil, err
	}
	r = hideLike(r, t)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var cfg deploy.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func hideLike(r, t any) any {
	switch tv := t.(type) {
	case string:
		if strings.Contains(tv, "${secret:") {
			return deploy.Redacted
		}
	case map[string]any:
		if rv, ok := r.(map[string]any); ok {
			for k, v := range tv {
				if _, ok := rv[k]; ok {
					rv[k] = hideLike(rv[k], v)
				}
			}
		}
	case []any:
		if rv, ok := r.([]any); ok {
			for i := range min(len(rv), len(tv)) {
				rv[i] = hideLike(rv[i], tv[i])
			}
		}
	}
	return r
}

// exportPackage answers the package file of a deployment: its template,
// signed with the domain's key. promotion.Export refuses secrets in clear.
func (s *Server) exportPackage(q *request) (any, error) {
	d, err := s.deployment(q.ctx, q.group.Name, "number", q.vars["number"])
	if err != nil {
		return nil, err
	}
	cfg, err := template(d)
	if err != nil {
		return nil, err
	}
	b, err := promotion.Export(promotion.Source{
		Domain: s.domain.Name, Group: d.Group, Deployment: d.Number,
		Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt, Config: cfg,
	}, ed25519.PrivateKey(s.key))
	if err != nil {
		var errs deploy.Errors
		if errors.As(err, &errs) {
			e := invalidConfig(errs)
			e.body.Message = fmt.Sprintf("deployment %d cannot be exported: %v", d.Number, err)
			return nil, e
		}
		return nil, err
	}
	name := fmt.Sprintf("%s-%d.ghpkg", d.Group, d.Number)
	return served{http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", packageMediaType)
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Write(b)
	})}, nil
}

// trusted returns the keys packages are accepted under: the trusted
// domains', and the domain's own for its own name, so that a domain can
// import what it exported.
func (s *Server) trusted(ctx context.Context) func(string) (ed25519.PublicKey, bool) {
	return func(domain string) (ed25519.PublicKey, bool) {
		if domain == s.domain.Name {
			return ed25519.PrivateKey(s.key).Public().(ed25519.PublicKey), true
		}
		d, err := s.store.GetTrustedDomain(ctx, domain)
		if err != nil {
			return nil, false
		}
		return ed25519.PublicKey(d.PublicKey), true
	}
}

// auditImportDryRun is the audit action of an import with dry_run=true.
const auditImportDryRun = "deployment.import.dry-run"

// importPackage opens a package, resolves it with an environment of this
// domain, validates it and answers the diff against the group's current
// deployment; unless it is a dry run, it then writes the template as the
// group's draft and deploys it, recording the package's source.
func (s *Server) importPackage(q *request) (any, error) {
	group := q.group.Name
	q.auditTarget = "group/" + group + "/deployments"
	query := q.r.URL.Query()
	env := query.Get("env")
	if env == "" {
		env = q.group.Environment
	}
	dryRun := false
	if v := query.Get("dry_run"); v != "" {
		var err error
		if dryRun, err = strconv.ParseBool(v); err != nil {
			return nil, badRequest("dry_run", "dry_run %q is not true or false", v)
		}
	}
	if dryRun {
		// Audited, since it reads the environment's settings, but as
		// what it is: nothing was deployed.
		q.auditAction = auditImportDryRun
	}
	data, err := readBody(q)
	if err != nil {
		return nil, err
	}
	pkg, err := promotion.Open(data, s.trusted(q.ctx))
	if err != nil {
		var errs deploy.Errors
		if errors.As(err, &errs) {
			e := invalidConfig(errs)
			e.body.Message = "package refused: " + err.Error()
			return nil, e
		}
		return nil, badRequest("", "package refused: %v", err)
	}
	src := apitypes.DeploymentSource{Domain: pkg.Domain, Group: pkg.Group, Deployment: pkg.Deployment, Checksum: pkg.Checksum}
	q.auditDetail = fmt.Sprintf("import of %s/%s deployment %d, %s, with environment %q", src.Domain, src.Group, src.Deployment, src.Checksum, env)
	tmpl, err := pkg.Decode()
	if err != nil {
		return nil, err
	}
	st, err := s.settingsOf(q.ctx, env)
	if err != nil {
		return nil, err
	}
	resolved, err := resolve(tmpl, st)
	if err != nil {
		return nil, err
	}
	sum, err := resolved.Checksum()
	if err != nil {
		return nil, err
	}
	from, label, err := s.latestConfig(q.ctx, group)
	if err != nil {
		return nil, err
	}
	out := apitypes.Import{DryRun: dryRun, Source: src, Checksum: sum,
		Diff: apitypes.Diff{Group: group, From: label, To: "package", Changes: diffChanges(from, resolved)}}
	if out.Warnings, err = s.runWarnings(q.ctx, group, resolved); err != nil {
		return nil, err
	}
	if dryRun {
		q.auditDetail = "dry run: " + q.auditDetail
		return out, nil
	}
	// An import deploys nowhere partially: a feature level some gateways
	// lack refuses it before anything is written.
	fl, err := s.fleetOf(q.ctx, group)
	if err != nil {
		return nil, err
	}
	if _, err := fl.partial(group, resolved, false); err != nil {
		return nil, err
	}
	cur, err := s.store.GetDraft(q.ctx, group)
	if err != nil {
		return nil, err
	}
	draft, err := s.store.PutDraft(q.ctx, group, *tmpl, cur.Version, q.who.user)
	if err != nil {
		return nil, err
	}
	message := fmt.Sprintf("import of %s/%s deployment %d", src.Domain, src.Group, src.Deployment)
	if err := s.flushForNumbering(q.ctx); err != nil {
		return nil, err
	}
	dep, err := s.deps.Freeze(q.ctx, group, draft.Version, func(d store.Draft, number uint64) (store.Deployment, error) {
		sd, err := s.build(group, number, &d.Config, resolved, q.who.user, message)
		if err != nil {
			return sd, err
		}
		sd.Source = &store.DeploymentSource{Domain: src.Domain, Group: src.Group, Deployment: src.Deployment, Checksum: src.Checksum}
		return sd, nil
	})
	if err != nil {
		return nil, err
	}
	q.auditTarget = fmt.Sprintf("group/%s/deployments/%d", group, dep.Number)
	q.auditDetail = fmt.Sprintf("deployment %d, %s: %s", dep.Number, dep.Checksum, q.auditDetail)
	q.status = http.StatusCreated
	o := deploymentOut(dep)
	out.Deployment = &o
	return out, nil
}
