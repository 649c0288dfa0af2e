package api

import (
	"bytes"
	"crypto/ed25519"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// environment makes a fresh environment with values, directly in the
// store, and returns its name.
func (e *env) environment(values map[string]string) string {
	e.t.Helper()
	name := e.name("env")
	must[store.Environment](e.t)(e.store.UpdateEnvironment(bg, name, "admin", func(env *store.Environment) error {
		env.Values = maps.Clone(values)
		return nil
	}))
	return name
}

// secret sets a secret directly in the store, sealed as the API seals.
func (e *env) secret(envName, name, value string) {
	e.t.Helper()
	must[store.Secret](e.t)(e.store.PutSecret(bg, store.Secret{Environment: envName, Name: name,
		Sealed: e.settingsKey.Seal(envName, name, []byte(value)), SetBy: "admin"}))
}

// publicKey returns a new domain public key in its text form.
func (e *env) publicKey() string {
	e.t.Helper()
	pub, _, err := deploy.GenerateSigningKey()
	if err != nil {
		e.t.Fatal(err)
	}
	return deploy.EncodePublicKey(pub)
}

// trusted registers a fresh trusted domain directly in the store and
// returns its name.
func (e *env) trusted() string {
	e.t.Helper()
	name := e.name("dom")
	pub, _, err := deploy.GenerateSigningKey()
	if err != nil {
		e.t.Fatal(err)
	}
	must[store.TrustedDomain](e.t)(e.store.PutTrustedDomain(bg, store.TrustedDomain{Name: name, PublicKey: pub}))
	return name
}

// fresh decodes r into a zero Environment: decoding into a used one
// would merge the maps.
func fresh(t *testing.T, r reply) apitypes.Environment {
	t.Helper()
	var env apitypes.Environment
	r.decode(t, &env)
	return env
}

// lastAudit returns the newest audit entry of action.
func (e *env) lastAudit(action string) apitypes.AuditEntry {
	e.t.Helper()
	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?limit=1&action="+action, nil).expect(e.t, http.StatusOK, "audit").decode(e.t, &entries)
	if len(entries) != 1 {
		e.t.Fatalf("no audit entry of %s", action)
	}
	return entries[0]
}

func TestEnvironments(t *testing.T) {
	e := newEnv(t)
	var list []apitypes.Environment
	r := e.do(e.admin, "GET", "/environments", nil).expect(t, http.StatusOK, "list")
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("environments of a new domain: %s", r.body)
	}

	var prod apitypes.Environment
	r = e.do(e.admin, "PUT", "/environments/prod", apitypes.EnvironmentValues{Values: map[string]string{
		"ORDERS_UPSTREAM": "10.0.0.5:8080", "API_HOST": "api.example.com"}}).expect(t, http.StatusOK, "create by PUT")
	r.decode(t, &prod)
	if prod.Name != "prod" || prod.Version != 1 || len(prod.Values) != 2 || prod.UpdatedBy != "admin" || prod.Secrets == nil || r.header.Get("ETag") != `"1"` {
		t.Fatalf("created %+v, ETag %s", prod, r.header.Get("ETag"))
	}
	if a := e.lastAudit("environment.replace"); a.Target != "environment/prod" || a.Detail != "set API_HOST,ORDERS_UPSTREAM" || a.Result != store.AuditOK {
		t.Errorf("audit of the create %+v", a)
	}

	// PATCH sets and unsets in one change.
	r = e.do(e.admin, "PATCH", "/environments/prod", apitypes.EnvironmentEdit{Set: map[string]string{"ORDERS_UPSTREAM": "10.0.0.6:8080", "TIMEOUT": "5s"},
		Unset: []string{"API_HOST"}}).expect(t, http.StatusOK, "patch")
	prod = fresh(t, r)
	if want := map[string]string{"ORDERS_UPSTREAM": "10.0.0.6:8080", "TIMEOUT": "5s"}; !maps.Equal(prod.Values, want) || prod.Version != 2 {
		t.Fatalf("after PATCH %+v", prod)
	}
	if a := e.lastAudit("environment.update"); a.Detail != "set ORDERS_UPSTREAM,TIMEOUT; unset API_HOST" {
		t.Errorf("audit of the PATCH %+v", a)
	}
	// Unsetting a name the environment does not have changes nothing,
	// and says which.
	r = e.do(e.admin, "PATCH", "/environments/prod", apitypes.EnvironmentEdit{Set: map[string]string{"A": "1"}, Unset: []string{"NOPE", "TIMEOUT", "NADA"}}).
		expect(t, http.StatusNotFound, "unset of missing names")
	if !strings.Contains(string(r.body), "has no value NOPE, NADA: nothing was changed") {
		t.Errorf("unset of missing names: %s", r.body)
	}
	e.do(e.admin, "DELETE", "/environments/prod/values/NOPE", nil).expect(t, http.StatusNotFound, "unset one missing name")
	e.do(e.admin, "DELETE", "/environments/uat/values/A", nil).expect(t, http.StatusNotFound, "unset in a missing environment")
	e.do(e.admin, "GET", "/environments/uat", nil).expect(t, http.StatusNotFound, "an unset does not create the environment")

	// One name at a time.
	r = e.do(e.admin, "PUT", "/environments/prod/values/API_HOST", apitypes.SettingValue{Value: "api.example.org"}).expect(t, http.StatusOK, "set one")
	prod = fresh(t, r)
	if prod.Values["API_HOST"] != "api.example.org" || len(prod.Values) != 3 || prod.Version != 3 {
		t.Fatalf("after setting one %+v", prod)
	}
	if a := e.lastAudit("environment.value.set"); a.Target != "environment/prod/values/API_HOST" || a.Detail != "set API_HOST" {
		t.Errorf("audit of a value set %+v", a)
	}
	e.do(e.admin, "DELETE", "/environments/prod/values/TIMEOUT", nil).expect(t, http.StatusNoContent, "unset one")

	// If-Match guards the whole replacement.
	e.do(e.admin, "PUT", "/environments/prod", apitypes.EnvironmentValues{}, "If-Match", `"3"`).expect(t, http.StatusConflict, "stale If-Match")
	e.do(e.admin, "PUT", "/environments/prod", apitypes.EnvironmentValues{}, "If-Match", `"0"`).expect(t, http.StatusConflict, "create-only If-Match")
	e.do(e.admin, "PUT", "/environments/prod", apitypes.EnvironmentValues{}, "If-Match", "x").expect(t, http.StatusBadRequest, "bad If-Match")
	e.do(e.admin, "PUT", "/environments/uat", apitypes.EnvironmentValues{Values: map[string]string{"A": "1"}}, "If-Match", `"0"`).expect(t, http.StatusOK, "create-only")
	r = e.do(e.admin, "GET", "/environments/prod", nil).expect(t, http.StatusOK, "get")
	prod = fresh(t, r)
	if r.header.Get("ETag") != `"4"` || !maps.Equal(prod.Values, map[string]string{"ORDERS_UPSTREAM": "10.0.0.6:8080", "API_HOST": "api.example.org"}) {
		t.Fatalf("get %+v, ETag %s", prod, r.header.Get("ETag"))
	}
	r = e.do(e.admin, "PUT", "/environments/prod", apitypes.EnvironmentValues{}, "If-Match", `"4"`).expect(t, http.StatusOK, "replace by none")
	prod = fresh(t, r)
	if len(prod.Values) != 0 || prod.Values == nil {
		t.Errorf("emptied environment %+v", prod)
	}

	// A secret creates its environment too; lists show secrets by name.
	e.do(e.admin, "PUT", "/environments/dev/secrets/DB_PASSWORD", apitypes.SettingValue{Value: "dev-password"}).expect(t, http.StatusOK, "secret in a new environment")
	e.do(e.admin, "GET", "/environments", nil).expect(t, http.StatusOK, "list").decode(t, &list)
	var names []string
	for _, env := range list {
		names = append(names, env.Name)
	}
	if !slices.Equal(names, []string{"dev", "prod", "uat"}) || len(list[0].Secrets) != 1 || list[0].Secrets[0].Name != "DB_PASSWORD" || list[0].Secrets[0].SetBy != "admin" {
		t.Fatalf("list %+v", list)
	}

	e.do(e.admin, "DELETE", "/environments/dev", nil).expect(t, http.StatusNoContent, "delete")
	if a := e.lastAudit("environment.delete"); a.Detail != "with secrets DB_PASSWORD" {
		t.Errorf("audit of the delete %+v", a)
	}
	e.do(e.admin, "GET", "/environments/dev", nil).expect(t, http.StatusNotFound, "deleted")
	e.do(e.admin, "GET", "/environments/dev/secrets", nil).expect(t, http.StatusNotFound, "secrets of a deleted environment")
	e.do(e.admin, "DELETE", "/environments/dev", nil).expect(t, http.StatusNotFound, "delete again")
}

// Every invalid name and value is reported with its field, at once.
func TestEnvironmentValidation(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		what, method, path string
		body               any
		field, message     string
		errors             int
	}{
		{"lower-case name", "PUT", "/environments/prod", apitypes.EnvironmentValues{Values: map[string]string{"order_host": "x"}},
			"values.order_host", `values.order_host: must be upper-case letters, digits and "_", starting with a letter`, 1},
		{"every error", "PUT", "/environments/prod", apitypes.EnvironmentValues{Values: map[string]string{"1A": "x", "OK": "x", "B-C": "x", "LONG": strings.Repeat("x", maxSettingValue+1)}},
			"values.1A", "request has 3 errors", 3},
		{"digit first", "PATCH", "/environments/prod", apitypes.EnvironmentEdit{Set: map[string]string{"9LIVES": "x"}},
			"set.9LIVES", `set.9LIVES: must be upper-case letters`, 1},
		{"bad unset", "PATCH", "/environments/prod", apitypes.EnvironmentEdit{Unset: []string{"OK", "a b"}},
			"unset[1]", `unset[1]: must be upper-case letters`, 1},
		{"set and unset", "PATCH", "/environments/prod", apitypes.EnvironmentEdit{Set: map[string]string{"A": "1"}, Unset: []string{"A"}},
			"unset[0]", "unset[0]: A is also in set", 1},
		{"nothing to do", "PATCH", "/environments/prod", apitypes.EnvironmentEdit{}, "", "nothing to change", 0},
		{"too long a name", "PUT", "/environments/prod/values/" + strings.Repeat("A", maxSettingName+1), apitypes.SettingValue{Value: "x"},
			"name", "name: must be at most 128 characters", 1},
		{"path name", "PUT", "/environments/prod/values/lower", apitypes.SettingValue{Value: "x"}, "name", "name: must be upper-case", 1},
		{"environment name", "PUT", "/environments/Prod", apitypes.EnvironmentValues{}, "environment", `environment "Prod": must be 1 to 63 lowercase`, 0},
		{"unknown field", "PUT", "/environments/prod", map[string]any{"vals": map[string]string{}}, "vals", `unknown field "vals"`, 0},
		{"empty secret", "PUT", "/environments/prod/secrets/S", apitypes.SettingValue{}, "value", "value: must not be empty", 0},
		{"secret name", "PUT", "/environments/prod/secrets/s", apitypes.SettingValue{Value: "x"}, "name", "name: must be upper-case", 1},
		{"too long a secret", "PUT", "/environments/prod/secrets/S", apitypes.SettingValue{Value: strings.Repeat("x", maxSettingValue+1)},
			"value", "value: must be at most 65536 bytes", 1},
	} {
		r := e.do(e.admin, tt.method, tt.path, tt.body).expect(t, http.StatusBadRequest, tt.what)
		var body apitypes.ErrorBody
		r.decode(t, &body)
		if body.Error.Field != tt.field || !strings.HasPrefix(body.Error.Message, tt.message) || len(body.Error.Errors) != tt.errors {
			t.Errorf("%s: field %q, message %q, %d errors; want %q, %q…, %d", tt.what, body.Error.Field, body.Error.Message, len(body.Error.Errors), tt.field, tt.message, tt.errors)
		}
	}
	e.do(e.admin, "GET", "/environments/prod", nil).expect(t, http.StatusNotFound, "refused requests create nothing")
	// The audit entry of a refused call says what was wrong, once.
	if a := e.lastAudit("environment.value.set"); a.Detail != `name: must be upper-case letters, digits and "_", starting with a letter` || a.Result != store.AuditError {
		t.Errorf("audit of a refused call %+v", a)
	}
}

// A secret's value is never in an answer, the audit log or the log, not
// even when its request is refused; the store holds it sealed.
func TestSecretNeverShown(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	e.srv.log = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	const secret = "tr0ub4dor-and-3"
	viewer := e.user("vera", rbac.RoleViewer, store.Scope{Domain: true})
	operator := e.user("otto", rbac.RoleOperator, store.Scope{Domain: true})

	var sec apitypes.Secret
	e.do(e.admin, "PUT", "/environments/prod/secrets/DB_PASSWORD", apitypes.SettingValue{Value: secret}).expect(t, http.StatusOK, "set").decode(t, &sec)
	if sec.Name != "DB_PASSWORD" || sec.SetBy != "admin" || sec.SetAt.IsZero() || sec.Unreadable {
		t.Errorf("set answered %+v", sec)
	}
	e.do(e.admin, "PUT", "/environments/prod/secrets/OTHER", apitypes.SettingValue{Value: "other-" + secret}).expect(t, http.StatusOK, "set another")
	// Refused attempts, whose bodies hold the secret.
	e.do(operator, "PUT", "/environments/prod/secrets/DB_PASSWORD", apitypes.SettingValue{Value: secret}).expect(t, http.StatusForbidden, "operator")
	e.do(viewer, "PUT", "/environments/prod/secrets/DB_PASSWORD", apitypes.SettingValue{Value: secret}).expect(t, http.StatusForbidden, "viewer")
	for _, body := range []string{`{"value": "` + secret + `\q"}`, `{"value": "` + secret + `", "x": 1}`, `{"value": ` + secret + `}`, `"` + secret + `"`} {
		r := e.do(e.admin, "PUT", "/environments/prod/secrets/DB_PASSWORD", body).expect(t, http.StatusBadRequest, "malformed body")
		if bytes.Contains(r.body, []byte(secret)) || bytes.Contains(r.body, []byte("tr0")) {
			t.Errorf("error answer quotes the body: %s", r.body)
		}
	}
	e.do(e.admin, "PUT", "/environments/Prod/secrets/DB_PASSWORD", apitypes.SettingValue{Value: secret}).expect(t, http.StatusBadRequest, "bad environment")

	for _, tok := range []string{e.admin, viewer, operator} {
		for _, path := range []string{"/environments", "/environments/prod", "/environments/prod/secrets", "/audit?limit=1000"} {
			r := e.do(tok, "GET", path, nil)
			if r.status == http.StatusOK && bytes.Contains(r.body, []byte(secret)) {
				t.Errorf("GET %s shows the secret: %s", path, r.body)
			}
		}
	}
	var secrets []apitypes.Secret
	e.do(viewer, "GET", "/environments/prod/secrets", nil).expect(t, http.StatusOK, "viewer lists names").decode(t, &secrets)
	if len(secrets) != 2 || secrets[0].Name != "DB_PASSWORD" || secrets[1].Name != "OTHER" {
		t.Errorf("secrets %+v", secrets)
	}
	var audit []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=environment.secret.set", nil).expect(t, http.StatusOK, "audit").decode(t, &audit)
	if len(audit) != 9 || audit[len(audit)-1].Target != "environment/prod/secrets/DB_PASSWORD" || audit[len(audit)-1].Detail != "" {
		t.Errorf("audit of secrets %+v", audit)
	}
	if bytes.Contains(logs.Bytes(), []byte(secret)) {
		t.Errorf("the log holds the secret:\n%s", logs.String())
	}

	// Stored sealed, opening with the settings key to the value.
	stored := must[[]store.Secret](t)(e.store.ListSecrets(bg, "prod"))
	if bytes.Contains(stored[0].Sealed, []byte(secret)) {
		t.Fatal("the store holds the secret in clear")
	}
	if v, err := e.settingsKey.Open("prod", "DB_PASSWORD", stored[0].Sealed); err != nil || string(v) != secret {
		t.Fatalf("sealed secret opens to %q, %v", v, err)
	}

	// Unset; again is 404.
	e.do(e.admin, "DELETE", "/environments/prod/secrets/OTHER", nil).expect(t, http.StatusNoContent, "unset")
	e.do(e.admin, "DELETE", "/environments/prod/secrets/OTHER", nil).expect(t, http.StatusNotFound, "unset again")
	if a := e.lastAudit("environment.secret.unset"); a.Target != "environment/prod/secrets/OTHER" {
		t.Errorf("audit of the unset %+v", a)
	}
}

// A secret the settings key does not open (settings.key replaced) is
// listed as unreadable, so that it can be set again.
func TestUnreadableSecret(t *testing.T) {
	e := newEnv(t)
	other := must[*seal.Key](t)(seal.Parse(seal.NewKeyFile()))
	must[store.Secret](t)(e.store.PutSecret(bg, store.Secret{Environment: "prod", Name: "OLD", Sealed: other.Seal("prod", "OLD", []byte("x"))}))
	e.secret("prod", "NEW", "y")
	var env apitypes.Environment
	e.do(e.admin, "GET", "/environments/prod", nil).expect(t, http.StatusOK, "get").decode(t, &env)
	if len(env.Secrets) != 2 || !env.Secrets[1].Unreadable || env.Secrets[0].Unreadable {
		t.Errorf("secrets %+v", env.Secrets)
	}
	e.do(e.admin, "PUT", "/environments/prod/secrets/OLD", apitypes.SettingValue{Value: "x"}).expect(t, http.StatusOK, "set again")
	var secrets []apitypes.Secret
	e.do(e.admin, "GET", "/environments/prod/secrets", nil).expect(t, http.StatusOK, "list").decode(t, &secrets)
	if secrets[1].Unreadable {
		t.Errorf("secret set again %+v", secrets[1])
	}
}

// Deleting an environment takes its secrets, so it needs secret:write
// too when it has any.
func TestDeleteEnvironmentWithSecrets(t *testing.T) {
	e := newEnv(t)
	operator := e.user("otto", rbac.RoleOperator, store.Scope{Domain: true})
	withSecrets := e.environment(map[string]string{"A": "1"})
	e.secret(withSecrets, "S", "x")
	e.do(operator, "DELETE", "/environments/"+withSecrets, nil).expect(t, http.StatusForbidden, "operator, secrets")
	e.do(operator, "GET", "/environments/"+withSecrets, nil).expect(t, http.StatusOK, "still there")
	e.do(operator, "DELETE", "/environments/"+e.environment(map[string]string{"A": "1"}), nil).expect(t, http.StatusNoContent, "operator, no secrets")
	e.do(e.admin, "DELETE", "/environments/"+withSecrets, nil).expect(t, http.StatusNoContent, "admin")
	// Domain permissions: a binding on groups grants none of them.
	scoped := e.user("gina", rbac.RoleOperator, store.Scope{Groups: []string{"dev"}})
	e.do(scoped, "GET", "/environments", nil).expect(t, http.StatusForbidden, "group-scoped operator")
}

func TestTrustedDomains(t *testing.T) {
	e := newEnv(t)
	key1, key2 := e.publicKey(), e.publicKey()
	var d apitypes.TrustedDomain
	e.do(e.admin, "PUT", "/trusted-domains/dev", apitypes.TrustRequest{PublicKey: key1}).expect(t, http.StatusOK, "add").decode(t, &d)
	pub1 := must[ed25519.PublicKey](t)(deploy.ParsePublicKey(key1))
	if d.Name != "dev" || d.PublicKey != key1 || d.Fingerprint != deploy.KeyFingerprint(pub1) || d.AddedBy != "admin" || d.AddedAt.IsZero() {
		t.Fatalf("added %+v", d)
	}
	if a := e.lastAudit("trust.add"); a.Target != "trusted-domain/dev" || a.Detail != "key "+d.Fingerprint {
		t.Errorf("audit of the add %+v", a)
	}
	added := d.AddedAt
	e.advance(time.Minute)
	e.do(e.admin, "PUT", "/trusted-domains/dev", apitypes.TrustRequest{PublicKey: key1}).expect(t, http.StatusOK, "add again").decode(t, &d)
	if !d.AddedAt.Equal(added) {
		t.Errorf("the same key again changed the entry: %+v", d)
	}
	e.do(e.admin, "PUT", "/trusted-domains/dev", apitypes.TrustRequest{PublicKey: key2}).expect(t, http.StatusOK, "replace").decode(t, &d)
	if d.PublicKey != key2 {
		t.Errorf("replaced %+v", d)
	}
	if a := e.lastAudit("trust.add"); a.Detail != "key "+d.Fingerprint+" replacing "+deploy.KeyFingerprint(pub1) {
		t.Errorf("audit of the replacement %+v", a)
	}
	e.do(e.admin, "PUT", "/trusted-domains/uat", apitypes.TrustRequest{PublicKey: key1}).expect(t, http.StatusOK, "add uat")
	var list []apitypes.TrustedDomain
	e.do(e.admin, "GET", "/trusted-domains", nil).expect(t, http.StatusOK, "list").decode(t, &list)
	if len(list) != 2 || list[0].Name != "dev" || list[1].Name != "uat" {
		t.Errorf("list %+v", list)
	}
	e.do(e.admin, "GET", "/trusted-domains/uat", nil).expect(t, http.StatusOK, "get")

	for _, tt := range []struct {
		what, name string
		body       any
		field, msg string
	}{
		{"no prefix", "qa", apitypes.TrustRequest{PublicKey: strings.TrimPrefix(key1, "ed25519:")}, "public_key", `public_key: parse public key: must start with "ed25519:"`},
		{"short key", "qa", apitypes.TrustRequest{PublicKey: "ed25519:AAAA"}, "public_key", "public_key: parse public key: 3 bytes, want 32"},
		{"no key", "qa", apitypes.TrustRequest{}, "public_key", "public_key: parse public key"},
		{"bad name", "QA_1", apitypes.TrustRequest{PublicKey: key1}, "name", `name "QA_1": must be a domain name`},
		{"this domain", "test", apitypes.TrustRequest{PublicKey: key1}, "name", `name "test": is this domain`},
	} {
		var body apitypes.ErrorBody
		e.do(e.admin, "PUT", "/trusted-domains/"+tt.name, tt.body).expect(t, http.StatusBadRequest, tt.what).decode(t, &body)
		if body.Error.Field != tt.field || !strings.HasPrefix(body.Error.Message, tt.msg) {
			t.Errorf("%s: %+v", tt.what, body.Error)
		}
	}

	e.do(e.admin, "DELETE", "/trusted-domains/uat", nil).expect(t, http.StatusNoContent, "remove")
	e.do(e.admin, "DELETE", "/trusted-domains/uat", nil).expect(t, http.StatusNotFound, "remove again")
	e.do(e.admin, "GET", "/trusted-domains/uat", nil).expect(t, http.StatusNotFound, "get removed")

	// Only admins trust; the others read.
	for _, role := range []string{rbac.RoleOperator, rbac.RoleDeployer, rbac.RoleViewer} {
		tok := e.user(e.name(role), role, store.Scope{Domain: true})
		e.do(tok, "PUT", "/trusted-domains/qa", apitypes.TrustRequest{PublicKey: key1}).expect(t, http.StatusForbidden, role+" adds")
		e.do(tok, "DELETE", "/trusted-domains/dev", nil).expect(t, http.StatusForbidden, role+" removes")
		e.do(tok, "GET", "/trusted-domains", nil).expect(t, http.StatusOK, role+" lists")
	}

	// This domain's own key, as others register it.
	var dom apitypes.Domain
	e.do(e.admin, "GET", "/domain", nil).expect(t, http.StatusOK, "domain").decode(t, &dom)
	if pub, err := deploy.ParsePublicKey(dom.SigningKey); err != nil || !bytes.Equal(pub, e.pub) {
		t.Errorf("domain signing key %q: %v", dom.SigningKey, err)
	}
}
