package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// A secret placeholder fills fields redact does not know, such as a
// policy's password: GET of a deployment must hide those too.
func TestHideResolvedSecrets(t *testing.T) {
	tmpl := `{"global_policies":[{"name":"rate-limit","config":{"redis":{"password":"${secret:REDIS}","address":"${REDIS_HOST}"}}}],` +
		`"upstreams":[{"name":"u","targets":[{"address":"${HOST}:80"}]}]}`
	resolved := `{"global_policies":[{"name":"rate-limit","config":{"redis":{"password":"s3cret-value","address":"10.0.0.9:6379"}}}],` +
		`"upstreams":[{"name":"u","targets":[{"address":"10.0.0.1:80"}]}]}`
	cfg, err := hideResolvedSecrets([]byte(resolved), []byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "s3cret-value") || !strings.Contains(out, deploy.Redacted) {
		t.Errorf("secret not hidden: %s", out)
	}
	if !strings.Contains(out, "10.0.0.9:6379") || !strings.Contains(out, "10.0.0.1:80") {
		t.Errorf("settings hidden too: %s", out)
	}
}

// Deploying resolves the draft with the group's environment: without one,
// or with names missing, one 422 lists every field; with them, the
// deployment runs the values and keeps the draft as its template.
func TestDeployResolvesPlaceholders(t *testing.T) {
	e := newEnv(t)
	e.group("g", nil)
	e.addToDraft("g", func(c *deploy.Config) {
		c.Upstreams[0].Targets[0].Address = "${HOST}:80"
		c.Consumers = []deploy.Consumer{{Name: "app", Credentials: []deploy.Credential{{Type: "key", Key: "${secret:KEY}"}}}}
	})
	var fail apitypes.ErrorBody
	e.do(e.admin, "POST", "/groups/g/deployments", map[string]string{}).expect(t, http.StatusUnprocessableEntity, "deploy without an environment").decode(t, &fail)
	if len(fail.Error.Errors) != 2 || fail.Error.Errors[0].Field != "upstreams[0].targets[0].address" || fail.Error.Errors[1].Field != "consumers[0].credentials[0].key" {
		t.Errorf("errors %+v, want the address and the key", fail.Error.Errors)
	}
	must[store.Environment](t)(e.store.UpdateEnvironment(bg, "prod", "admin", func(env *store.Environment) error {
		env.Values = map[string]string{"HOST": "10.0.0.7"}
		return nil
	}))
	must[store.Secret](t)(e.store.PutSecret(bg, store.Secret{Environment: "prod", Name: "KEY", Sealed: e.srv.secretKey.Seal("prod", "KEY", []byte("k-secret-1")), SetBy: "admin"}))
	e.do(e.admin, "PUT", "/groups/g", apitypes.Group{Environment: "prod"}).expect(t, http.StatusOK, "set the environment")
	var dep apitypes.Deployment
	e.do(e.admin, "POST", "/groups/g/deployments", map[string]string{}).expect(t, http.StatusCreated, "deploy").decode(t, &dep)
	r := e.do(e.admin, "GET", "/groups/g/deployments/latest", nil).expect(t, http.StatusOK, "get")
	if strings.Contains(string(r.body), "k-secret-1") {
		t.Errorf("GET of the deployment shows the secret: %s", r.body)
	}
	r.decode(t, &dep)
	if dep.Config.Upstreams[0].Targets[0].Address != "10.0.0.7:80" || dep.Template == nil || dep.Template.Upstreams[0].Targets[0].Address != "${HOST}:80" {
		t.Errorf("config %+v, template %+v", dep.Config.Upstreams, dep.Template)
	}
	// The store holds the resolved configuration sealed; the API opens it
	// to the signed one, secret included, that gateways get.
	stored := must[store.Deployment](t)(e.store.LatestDeployment(bg, "g"))
	if strings.Contains(string(stored.Config), "k-secret-1") || strings.Contains(string(stored.Config), "10.0.0.7") {
		t.Errorf("the store holds the resolved configuration in clear: %s", stored.Config)
	}
	opened := must[store.Deployment](t)(e.srv.deps.LatestDeployment(bg, "g"))
	if !strings.Contains(string(opened.Config), "k-secret-1") {
		t.Errorf("the signed configuration does not hold the resolved secret")
	}
}

// An import with dry_run=true is audited as a dry run, under its own
// action, so that the audit log never shows a deployment that was not
// made; a real import keeps deployment.import.
func TestImportDryRunAudit(t *testing.T) {
	e := newEnv(t)
	e.group("dev", map[string]string{"env": "dev"})
	src := e.exportable("dev")
	pkg := e.pkg(src)
	into := e.freshGroup("dev")
	var plan apitypes.Import
	e.do(e.admin, "POST", "/groups/"+into+"/import?dry_run=true", pkg).expect(t, http.StatusOK, "dry run").decode(t, &plan)
	if !plan.DryRun {
		t.Fatalf("dry run answered %+v", plan)
	}
	a := e.lastAudit(auditImportDryRun)
	if a.Group != into || a.Result != store.AuditOK || !strings.HasPrefix(a.Detail, "dry run: import of test/"+src) {
		t.Errorf("audit of the dry run %+v", a)
	}
	var entries []apitypes.AuditEntry
	e.do(e.admin, "GET", "/audit?action=deployment.import", nil).expect(t, http.StatusOK, "audit").decode(t, &entries)
	if len(entries) != 0 {
		t.Errorf("a dry run audited as an import: %+v", entries)
	}
	// A refused dry run is a dry run too.
	e.do(e.admin, "POST", "/groups/"+into+"/import?dry_run=true", []byte("not a package")).expect(t, http.StatusBadRequest, "bad package")
	if a := e.lastAudit(auditImportDryRun); a.Result != store.AuditError {
		t.Errorf("audit of the refused dry run %+v", a)
	}

	e.do(e.admin, "POST", "/groups/"+into+"/import", pkg).expect(t, http.StatusCreated, "import")
	if a := e.lastAudit("deployment.import"); a.Group != into || a.Result != store.AuditOK || strings.Contains(a.Detail, "dry run") {
		t.Errorf("audit of the import %+v", a)
	}
}

// A group's environment must exist when it is set, on create and update,
// with the field named; one deleted since it was set does not block other
// changes to the group.
func TestGroupEnvironmentMustExist(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path string }{{"POST", "/groups"}, {"PUT", "/groups/g"}} {
		if c.method == "PUT" {
			e.group("g", nil)
		}
		var fail apitypes.ErrorBody
		e.do(e.admin, c.method, c.path, apitypes.Group{Name: "g", Environment: "prdo"}).expect(t, http.StatusBadRequest, c.method+" with a missing environment").decode(t, &fail)
		if fail.Error.Field != "environment" || !strings.Contains(fail.Error.Message, `"prdo" does not exist`) {
			t.Errorf("%s %s: error %+v, want field environment and the name", c.method, c.path, fail.Error)
		}
	}
	must[store.Environment](t)(e.store.UpdateEnvironment(bg, "prod", "admin", func(env *store.Environment) error {
		env.Values = map[string]string{"HOST": "10.0.0.7"}
		return nil
	}))
	e.do(e.admin, "PUT", "/groups/g", apitypes.Group{Environment: "prod"}).expect(t, http.StatusOK, "set an existing environment")
	if err := e.store.DeleteEnvironment(bg, "prod"); err != nil {
		t.Fatal(err)
	}
	e.do(e.admin, "PUT", "/groups/g", apitypes.Group{Environment: "prod", Description: "kept"}).expect(t, http.StatusOK, "update with the environment unchanged")
}
