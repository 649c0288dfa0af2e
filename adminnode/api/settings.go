package api

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// The domain's settings: environments (values and write-only secrets that
// placeholders of promoted configurations resolve to) and the other
// domains whose packages this one accepts.
//
// A secret's value goes one way: from a request body, sealed with the
// settings key, into the store. No answer, log line or audit entry holds
// it: audit entries name the environment and the secret, and errors about
// a secret's body never quote the body.

const (
	// maxSettingName bounds a value's or secret's name.
	maxSettingName = 128
	// maxSettingValue bounds a value or secret: room for a certificate
	// chain or a private key, which placeholders may stand for.
	maxSettingValue = 64 << 10
)

var (
	settingNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	// domainNameRE is the rule of domain names (adminnode.ValidateDomainName).
	domainNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

func settingsRoutes() []*route {
	env := apitypes.Environment{}
	return []*route{
		{method: "GET", path: "/environments", action: "environment.list", summary: "The domain's environments: values and the names of their secrets",
			perm: rbac.EnvironmentRead, scope: scopeDomain, out: []apitypes.Environment{}, handle: (*Server).listEnvironments},
		{method: "GET", path: "/environments/{env}", action: "environment.get", summary: "An environment: its values and the names of its secrets (ETag: its version)",
			perm: rbac.EnvironmentRead, scope: scopeDomain, out: env, handle: (*Server).getEnvironment},
		{method: "PUT", path: "/environments/{env}", action: "environment.replace", summary: "Create an environment or replace all its values (If-Match: its version)",
			perm: rbac.EnvironmentWrite, scope: scopeDomain, in: apitypes.EnvironmentValues{}, out: env, handle: (*Server).replaceEnvironment},
		{method: "PATCH", path: "/environments/{env}", action: "environment.update", summary: "Set and unset values of an environment in one change, creating it when missing",
			perm: rbac.EnvironmentWrite, scope: scopeDomain, in: apitypes.EnvironmentEdit{}, out: env, handle: (*Server).updateEnvironment},
		{method: "DELETE", path: "/environments/{env}", action: "environment.delete", summary: "Delete an environment with its values and secrets (secret:write too when it has secrets)",
			perm: rbac.EnvironmentWrite, scope: scopeDomain, handle: (*Server).deleteEnvironment},
		{method: "PUT", path: "/environments/{env}/values/{name}", action: "environment.value.set", summary: "Set one value of an environment, creating it when missing",
			perm: rbac.EnvironmentWrite, scope: scopeDomain, in: apitypes.SettingValue{}, out: env, handle: (*Server).setValue},
		{method: "DELETE", path: "/environments/{env}/values/{name}", action: "environment.value.unset", summary: "Remove one value of an environment",
			perm: rbac.EnvironmentWrite, scope: scopeDomain, handle: (*Server).unsetValue},
		{method: "GET", path: "/environments/{env}/secrets", action: "environment.secret.list", summary: "The secrets of an environment: names and when they were set, never values",
			perm: rbac.EnvironmentRead, scope: scopeDomain, out: []apitypes.Secret{}, handle: (*Server).listSecrets},
		{method: "PUT", path: "/environments/{env}/secrets/{name}", action: "environment.secret.set", summary: "Set a secret of an environment (write-only), creating the environment when missing",
			perm: rbac.SecretWrite, scope: scopeDomain, in: apitypes.SettingValue{}, out: apitypes.Secret{}, handle: (*Server).setSecret},
		{method: "DELETE", path: "/environments/{env}/secrets/{name}", action: "environment.secret.unset", summary: "Remove a secret of an environment",
			perm: rbac.SecretWrite, scope: scopeDomain, handle: (*Server).unsetSecret},

		{method: "GET", path: "/trusted-domains", action: "trust.list", summary: "The domains whose packages this one accepts, with their public keys",
			perm: rbac.TrustRead, scope: scopeDomain, out: []apitypes.TrustedDomain{}, handle: (*Server).listTrusted},
		{method: "GET", path: "/trusted-domains/{name}", action: "trust.get", summary: "A trusted domain",
			perm: rbac.TrustRead, scope: scopeDomain, out: apitypes.TrustedDomain{}, handle: (*Server).getTrusted},
		{method: "PUT", path: "/trusted-domains/{name}", action: "trust.add", summary: "Trust the packages of a domain signed by its public key, or replace its key",
			perm: rbac.TrustWrite, scope: scopeDomain, in: apitypes.TrustRequest{}, out: apitypes.TrustedDomain{}, handle: (*Server).putTrusted},
		{method: "DELETE", path: "/trusted-domains/{name}", action: "trust.remove", summary: "Stop trusting a domain's packages",
			perm: rbac.TrustWrite, scope: scopeDomain, handle: (*Server).deleteTrusted},
	}
}

// settingErrors is a request's invalid names and values, each with its
// field, all reported at once.
type settingErrors []apitypes.FieldError

func (errs *settingErrors) add(field, format string, args ...any) {
	*errs = append(*errs, apitypes.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// checkName adds the error of a value's or secret's name, if any.
func (errs *settingErrors) checkName(field, name string) {
	switch {
	case len(name) > maxSettingName:
		errs.add(field, "must be at most %d characters", maxSettingName)
	case !settingNameRE.MatchString(name):
		errs.add(field, `must be upper-case letters, digits and "_", starting with a letter`)
	}
}

// checkValue adds the error of a value or secret, if any. The value is
// never quoted: it may be a secret.
func (errs *settingErrors) checkValue(field, value string) {
	if len(value) > maxSettingValue {
		errs.add(field, "must be at most %d bytes, not %d", maxSettingValue, len(value))
	}
}

// checkValues checks a map of values, in the order of its names, under
// field ("values", "set").
func (errs *settingErrors) checkValues(field string, values map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(values)) {
		f := field + "." + name
		errs.checkName(f, name)
		errs.checkValue(f, values[name])
	}
}

// err is the answer to the errors, nil without any: 400, the first
// error's field, and every error listed.
func (errs settingErrors) err() error {
	if len(errs) == 0 {
		return nil
	}
	e := badRequest(errs[0].Field, "%s: %s", errs[0].Field, errs[0].Message)
	if len(errs) > 1 {
		e.body.Message = fmt.Sprintf("request has %d errors", len(errs))
	}
	e.body.Errors = errs
	return e
}

// envName is the path's environment, checked.
func envName(q *request) (string, error) {
	name := q.vars["env"]
	q.auditTarget = "environment/" + name
	if err := checkName("environment", name); err != nil {
		return "", err
	}
	return name, nil
}

// settingName is the path's value or secret name, checked.
func settingName(q *request) (string, error) {
	var errs settingErrors
	errs.checkName("name", q.vars["name"])
	return q.vars["name"], errs.err()
}

// settingPath is the path's environment and value or secret name, checked,
// with the audit target naming the setting under kind ("values",
// "secrets").
func settingPath(q *request, kind string) (env, name string, err error) {
	if env, err = envName(q); err != nil {
		return "", "", err
	}
	if name, err = settingName(q); err != nil {
		return "", "", err
	}
	q.auditTarget += "/" + kind + "/" + name
	return env, name, nil
}

// settingBody decodes the request's body and checks it with check, which
// adds the errors of what it holds.
func settingBody[T any](q *request, check func(in *T, errs *settingErrors)) (T, error) {
	var in T
	if err := decodeJSON(q, &in); err != nil {
		return in, err
	}
	var errs settingErrors
	check(&in, &errs)
	return in, errs.err()
}

// envBody is the path's environment, checked, and the request's body as
// settingBody decodes and checks it.
func envBody[T any](q *request, check func(in *T, errs *settingErrors)) (string, T, error) {
	var in T
	name, err := envName(q)
	if err != nil {
		return "", in, err
	}
	in, err = settingBody(q, check)
	return name, in, err
}

func (s *Server) secretOut(sec store.Secret) apitypes.Secret {
	_, err := s.secretKey.Open(sec.Environment, sec.Name, sec.Sealed)
	return apitypes.Secret{Name: sec.Name, SetAt: sec.SetAt, SetBy: sec.SetBy, Unreadable: err != nil}
}

func (s *Server) environmentOut(e store.Environment, secrets []store.Secret) apitypes.Environment {
	out := apitypes.Environment{Name: e.Name, Values: e.Values, Secrets: []apitypes.Secret{}, Version: e.Version,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, UpdatedBy: e.UpdatedBy}
	if out.Values == nil {
		out.Values = map[string]string{}
	}
	for _, sec := range secrets {
		out.Secrets = append(out.Secrets, s.secretOut(sec))
	}
	return out
}

// environment answers an environment as it is now, with its ETag.
func (s *Server) environment(q *request, e store.Environment) (any, error) {
	secrets, err := s.store.ListSecrets(q.ctx, e.Name)
	if err != nil {
		return nil, err
	}
	setETag(q, e.Version)
	return s.environmentOut(e, secrets), nil
}

func (s *Server) listEnvironments(q *request) (any, error) {
	envs, err := s.store.ListEnvironments(q.ctx)
	if err != nil {
		return nil, err
	}
	secrets, err := s.store.ListSecrets(q.ctx, "")
	if err != nil {
		return nil, err
	}
	byEnv := map[string][]store.Secret{}
	for _, sec := range secrets {
		byEnv[sec.Environment] = append(byEnv[sec.Environment], sec)
	}
	out := make([]apitypes.Environment, len(envs))
	for i, e := range envs {
		out[i] = s.environmentOut(e, byEnv[e.Name])
	}
	return out, nil
}

func (s *Server) getEnvironment(q *request) (any, error) {
	name, err := envName(q)
	if err != nil {
		return nil, err
	}
	e, err := s.store.GetEnvironment(q.ctx, name)
	if err != nil {
		return nil, err
	}
	return s.environment(q, e)
}

// valueChanges says which names an edit set (added or changed) and unset, for
// the audit entry: names only, as for secrets.
func valueChanges(before, after map[string]string) string {
	var set, unset []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok || v != after[k] {
			set = append(set, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			unset = append(unset, k)
		}
	}
	var parts []string
	if set != nil {
		parts = append(parts, "set "+strings.Join(set, ","))
	}
	if unset != nil {
		parts = append(parts, "unset "+strings.Join(unset, ","))
	}
	if parts == nil {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// editEnvironment applies edit to the environment's values in one store
// transaction, creating the environment when missing unless edit refuses,
// with a map of values ready for edit to set, notes the change for the audit entry and answers the environment.
func (s *Server) editEnvironment(q *request, name string, edit func(e *store.Environment) error) (any, error) {
	var detail string
	e, err := s.store.UpdateEnvironment(q.ctx, name, q.who.user, func(e *store.Environment) error {
		before := maps.Clone(e.Values)
		if e.Values == nil {
			e.Values = map[string]string{}
		}
		if err := edit(e); err != nil {
			return err
		}
		detail = valueChanges(before, e.Values)
		return nil
	})
	if err != nil {
		return nil, err
	}
	q.auditDetail = detail
	return s.environment(q, e)
}

func (s *Server) replaceEnvironment(q *request) (any, error) {
	name, in, err := envBody(q, func(in *apitypes.EnvironmentValues, errs *settingErrors) {
		errs.checkValues("values", in.Values)
	})
	if err != nil {
		return nil, err
	}
	// If-Match is optional: without it the values are replaced whatever
	// they are. "0" names an environment that does not exist yet.
	check := q.r.Header.Get("If-Match") != ""
	want, err := ifMatch(q, 0)
	if err != nil {
		return nil, err
	}
	return s.editEnvironment(q, name, func(e *store.Environment) error {
		if check && e.Version != want {
			return fmt.Errorf("environment %q is at version %d, not %d: %w", name, e.Version, want, store.ErrConflict)
		}
		e.Values = maps.Clone(in.Values)
		return nil
	})
}

func (s *Server) updateEnvironment(q *request) (any, error) {
	name, in, err := envBody(q, func(in *apitypes.EnvironmentEdit, errs *settingErrors) {
		errs.checkValues("set", in.Set)
		for i, n := range in.Unset {
			f := fmt.Sprintf("unset[%d]", i)
			errs.checkName(f, n)
			if _, ok := in.Set[n]; ok {
				errs.add(f, "%s is also in set", n)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	// An empty edit has no errors of its own above.
	if len(in.Set) == 0 && len(in.Unset) == 0 {
		return nil, badRequest("", "nothing to change: give names to set or unset")
	}
	return s.editEnvironment(q, name, func(e *store.Environment) error {
		if err := mustHave(e, in.Unset); err != nil {
			return err
		}
		maps.Copy(e.Values, in.Set)
		for _, n := range in.Unset {
			delete(e.Values, n)
		}
		return nil
	})
}

// mustHave refuses to unset names the environment does not have, naming
// them all: a misspelt name must not pass for done. A missing environment
// is not created by an unset.
func mustHave(e *store.Environment, names []string) error {
	if len(names) > 0 && e.Version == 0 {
		return fmt.Errorf("environment %q: %w", e.Name, store.ErrNotFound)
	}
	var missing []string
	for _, n := range names {
		if _, ok := e.Values[n]; !ok {
			missing = append(missing, n)
		}
	}
	if missing != nil {
		return notFound("environment %q has no value %s: nothing was changed", e.Name, strings.Join(missing, ", "))
	}
	return nil
}

func (s *Server) setValue(q *request) (any, error) {
	env, name, err := settingPath(q, "values")
	if err != nil {
		return nil, err
	}
	in, err := settingBody(q, func(in *apitypes.SettingValue, errs *settingErrors) {
		errs.checkValue("value", in.Value)
	})
	if err != nil {
		return nil, err
	}
	return s.editEnvironment(q, env, func(e *store.Environment) error {
		e.Values[name] = in.Value
		return nil
	})
}

func (s *Server) unsetValue(q *request) (any, error) {
	env, name, err := settingPath(q, "values")
	if err != nil {
		return nil, err
	}
	_, err = s.editEnvironment(q, env, func(e *store.Environment) error {
		if err := mustHave(e, []string{name}); err != nil {
			return err
		}
		delete(e.Values, name)
		return nil
	})
	return nil, err
}

// deleteEnvironment takes the environment's secrets with it, so that it
// needs secret:write as well when there are any: environment:write alone
// must not be a way to destroy secrets.
func (s *Server) deleteEnvironment(q *request) (any, error) {
	name, err := envName(q)
	if err != nil {
		return nil, err
	}
	secrets, err := s.store.ListSecrets(q.ctx, name)
	if err != nil {
		return nil, err
	}
	if len(secrets) > 0 {
		if err := q.need(rbac.SecretWrite, nil); err != nil {
			return nil, err
		}
		names := make([]string, len(secrets))
		for i, sec := range secrets {
			names[i] = sec.Name
		}
		q.auditDetail = "with secrets " + strings.Join(names, ",")
	}
	return nil, s.store.DeleteEnvironment(q.ctx, name)
}

func (s *Server) listSecrets(q *request) (any, error) {
	env, err := envName(q)
	if err != nil {
		return nil, err
	}
	secrets, err := s.store.ListSecrets(q.ctx, env)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Secret, len(secrets))
	for i, sec := range secrets {
		out[i] = s.secretOut(sec)
	}
	return out, nil
}

// secretBody decodes the body of a secret. Its errors say what is wrong
// with the body's form but never quote it: JSON errors can show the
// characters around the fault, which would be in the secret.
func secretBody(q *request) (string, error) {
	data, err := readBody(q)
	if err != nil {
		return "", err
	}
	var in apitypes.SettingValue
	if err := decodeJSONBytes(data, &in); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return "", err
		}
		return "", badRequest("", `the body must be a JSON object {"value": "..."} (what is wrong with it is not shown: it would quote the secret)`)
	}
	if in.Value == "" {
		return "", badRequest("value", "value: must not be empty")
	}
	var errs settingErrors
	errs.checkValue("value", in.Value)
	return in.Value, errs.err()
}

func (s *Server) setSecret(q *request) (any, error) {
	env, name, err := settingPath(q, "secrets")
	if err != nil {
		return nil, err
	}
	value, err := secretBody(q)
	if err != nil {
		return nil, err
	}
	sec, err := s.store.PutSecret(q.ctx, store.Secret{Environment: env, Name: name,
		Sealed: s.secretKey.Seal(env, name, []byte(value)), SetAt: s.now(), SetBy: q.who.user})
	if err != nil {
		return nil, err
	}
	return s.secretOut(sec), nil
}

func (s *Server) unsetSecret(q *request) (any, error) {
	env, name, err := settingPath(q, "secrets")
	if err != nil {
		return nil, err
	}
	return nil, s.store.DeleteSecret(q.ctx, env, name)
}

// trustedName is the path's trusted domain, named in the audit target.
func trustedName(q *request) string {
	name := q.vars["name"]
	q.auditTarget = "trusted-domain/" + name
	return name
}

func trustedOut(d store.TrustedDomain) apitypes.TrustedDomain {
	return apitypes.TrustedDomain{Name: d.Name, PublicKey: encodePublicKey(d.PublicKey), Fingerprint: keyFingerprint(d.PublicKey),
		AddedAt: d.AddedAt, AddedBy: d.AddedBy}
}

func (s *Server) listTrusted(q *request) (any, error) {
	ds, err := s.store.ListTrustedDomains(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.TrustedDomain, len(ds))
	for i, d := range ds {
		out[i] = trustedOut(d)
	}
	return out, nil
}

func (s *Server) getTrusted(q *request) (any, error) {
	d, err := s.store.GetTrustedDomain(q.ctx, q.vars["name"])
	if err != nil {
		return nil, err
	}
	return trustedOut(d), nil
}

// putTrusted trusts a domain's key, or replaces it. The domain's own name
// is refused: its own key is the one it signs with, and another key under
// its name would let someone else's packages pass for its own.
func (s *Server) putTrusted(q *request) (any, error) {
	name := trustedName(q)
	if !domainNameRE.MatchString(name) {
		return nil, badRequest("name", "name %q: must be a domain name, 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	if name == s.domain.Name {
		return nil, badRequest("name", "name %q: is this domain; its own key needs no trust entry", name)
	}
	var in apitypes.TrustRequest
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	pub, err := deploy.ParsePublicKey(in.PublicKey)
	if err != nil {
		return nil, badRequest("public_key", "public_key: %v", err)
	}
	old, err := s.store.GetTrustedDomain(q.ctx, name)
	switch {
	case err == nil && bytes.Equal(old.PublicKey, pub):
		q.auditDetail = "key " + deploy.KeyFingerprint(pub) + " (unchanged)"
		return trustedOut(old), nil
	case err == nil:
		q.auditDetail = "key " + deploy.KeyFingerprint(pub) + " replacing " + keyFingerprint(old.PublicKey)
	case errors.Is(err, store.ErrNotFound):
		q.auditDetail = "key " + deploy.KeyFingerprint(pub)
	default:
		return nil, err
	}
	d, err := s.store.PutTrustedDomain(q.ctx, store.TrustedDomain{Name: name, PublicKey: pub, AddedAt: s.now(), AddedBy: q.who.user})
	if err != nil {
		return nil, err
	}
	return trustedOut(d), nil
}

func (s *Server) deleteTrusted(q *request) (any, error) {
	return nil, s.store.DeleteTrustedDomain(q.ctx, trustedName(q))
}
