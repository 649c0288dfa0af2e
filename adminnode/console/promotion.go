package console

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
)

// Promotion packages (docs/promotion.md): a deployment downloaded as a
// package, and a package imported into a group as `gatehouse import`
// does: a dry run first, showing the diff and what was verified, then,
// confirmed, the import that deploys it.

const (
	// maxPackageBytes is the API's default bound on a request body
	// (api.DefaultMaxBodyBytes), which a package is sent as.
	maxPackageBytes = 8 << 20
	// maxConfirmBytes bounds the confirmation's form, which carries the
	// package back in base64.
	maxConfirmBytes = maxPackageBytes/3*4 + 1<<20
	// packageMediaType is the media type of a package file (.ghpkg).
	packageMediaType = "application/vnd.gatehouse.package+json"
)

// limitBody bounds the body h reads to n bytes.
func limitBody(n int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h(w, r)
	}
}

// exportPackage answers a deployment as a package file to download
// (deployment:read), signed by this domain, placeholders unresolved.
func (c *Console) exportPackage(w http.ResponseWriter, r *http.Request, s *session) {
	n, err := strconv.ParseUint(r.PathValue("number"), 10, 64)
	if err != nil || n == 0 {
		c.fail(w, r, s, http.StatusBadRequest, "number: a deployment number is required.")
		return
	}
	resp, err := c.do(r, s.bearer, http.MethodGet, fmt.Sprintf("%s/deployments/%d/package", groupPath(r.PathValue("group")), n), http.Header{}, nil)
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	w.Header().Set("Content-Type", resp.header.Get("Content-Type"))
	w.Header().Set("Content-Disposition", resp.header.Get("Content-Disposition"))
	w.Header().Set("Content-Length", strconv.Itoa(resp.body.Len()))
	w.Write(resp.body.Bytes())
}

type importView struct {
	Group string
	// GroupEnv is the group's own environment, which resolves the
	// package when none is picked.
	GroupEnv string
	// Envs are the environments to pick from, listed for a user who may
	// read them (environment:read on the domain).
	Envs []string
	// Env and Filename are as picked.
	Env, Filename string
	// Result is the dry run's answer, Checks what it verified; Package
	// is the package in base64, sent again by the confirmation.
	Result  *apitypes.Import
	Checks  []importCheck
	Package string
	// Errors are the API's refusal by field path (a placeholder with no
	// value, an invalid configuration).
	Errors []apitypes.FieldError
}

// importCheck is one verification of a package and what it found.
type importCheck struct {
	What, Result string
}

// importForm offers importing a package into the group to who may deploy
// to it; the API refuses (403, audited) whoever posts without that.
func (c *Console) importForm(w http.ResponseWriter, r *http.Request, s *session) {
	v, ok := c.importPage(w, r, s)
	if ok {
		c.showImport(w, r, s, http.StatusOK, v, "")
	}
}

// importPage is the import page's view of the group, or false once it
// answered a failure.
func (c *Console) importPage(w http.ResponseWriter, r *http.Request, s *session) (importView, bool) {
	name := r.PathValue("group")
	v := importView{Group: name}
	var g apitypes.Group
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name), nil, &g); err != nil {
		c.failAPI(w, r, s, err)
		return v, false
	}
	v.GroupEnv = g.Environment
	can, err := c.allowed(r, s, rbac.DeploymentCreate, name)
	if err == nil && !can {
		c.fail(w, r, s, http.StatusForbidden, "You may not deploy to group "+name+": importing a package deploys it.")
		return v, false
	}
	listed := false
	if err == nil {
		listed, err = c.domainAllowed(r, s, rbac.EnvironmentRead)
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return v, false
	}
	if listed {
		var envs []apitypes.Environment
		if err := c.call(r, s.bearer, http.MethodGet, "/environments", nil, &envs); err != nil {
			c.failAPI(w, r, s, err)
			return v, false
		}
		for _, e := range envs {
			v.Envs = append(v.Envs, e.Name)
		}
	}
	return v, true
}

func (c *Console) showImport(w http.ResponseWriter, r *http.Request, s *session, status int, v importView, msg string) {
	c.render(w, r, status, "import", page{Title: "Import a package into " + v.Group, Nav: "overview", User: s.user, CSRF: s.csrf, Error: msg, Data: v})
}

func importPath(group, env string, dryRun bool) string {
	q := url.Values{}
	if env != "" {
		q.Set("env", env)
	}
	if dryRun {
		q.Set("dry_run", "true")
	}
	if len(q) == 0 {
		return groupPath(group) + "/import"
	}
	return groupPath(group) + "/import?" + q.Encode()
}

// importDryRun reads the form's package (after its env field) and asks
// the API for a dry run: the package opened, its signature and domain
// checked, resolved with the environment, validated and diffed. The page
// shows that, and a confirmation carrying the package.
func (c *Console) importDryRun(w http.ResponseWriter, r *http.Request, s *session, form *multipart.Reader) {
	v := importView{Group: r.PathValue("group")}
	file, fields, err := nextFile(form, "package")
	v.Env = strings.TrimSpace(fields.Get("env"))
	if err != nil {
		c.importFailed(w, r, s, http.StatusBadRequest, v, err.Error())
		return
	}
	defer file.Close()
	v.Filename = file.FileName()
	data, err := io.ReadAll(io.LimitReader(file, maxPackageBytes+1))
	switch {
	case err != nil:
		c.importFailed(w, r, s, http.StatusBadRequest, v, fmt.Sprintf("package: %v", err))
		return
	case len(data) == 0:
		c.importFailed(w, r, s, http.StatusBadRequest, v, "package: the chosen file is empty; choose a package file (.ghpkg).")
		return
	case len(data) > maxPackageBytes:
		c.importFailed(w, r, s, http.StatusRequestEntityTooLarge, v, fmt.Sprintf("package: larger than %d MiB.", maxPackageBytes>>20))
		return
	}
	// The API first: whoever may not deploy is refused there, audited.
	var out apitypes.Import
	if err := c.send(r, s.bearer, http.MethodPost, importPath(v.Group, v.Env, true), http.Header{"Content-Type": {packageMediaType}}, data, &out); err != nil {
		c.importRefused(w, r, s, v, err)
		return
	}
	pv, ok := c.importPage(w, r, s)
	if !ok {
		return
	}
	pv.Env, pv.Filename, pv.Result, pv.Package = v.Env, v.Filename, &out, base64.StdEncoding.EncodeToString(data)
	if pv.Checks, err = c.importChecks(r, s, pv.Env, pv.GroupEnv, out); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.showImport(w, r, s, http.StatusOK, pv, "")
}

// importFailed shows the import page, the picks of v kept, with msg.
func (c *Console) importFailed(w http.ResponseWriter, r *http.Request, s *session, status int, v importView, msg string) {
	pv, ok := c.importPage(w, r, s)
	if !ok {
		return
	}
	pv.Env, pv.Filename, pv.Errors = v.Env, v.Filename, v.Errors
	c.showImport(w, r, s, status, pv, msg)
}

// importChecks words what the API verified of a package it accepted.
func (c *Console) importChecks(r *http.Request, s *session, env, groupEnv string, out apitypes.Import) ([]importCheck, error) {
	src := out.Source
	trust := src.Domain + " is trusted by this domain, or is this domain."
	readable, err := c.domainAllowed(r, s, rbac.TrustRead)
	if err != nil {
		return nil, err
	}
	if readable {
		var domains []apitypes.TrustedDomain
		if err := c.call(r, s.bearer, http.MethodGet, "/trusted-domains", nil, &domains); err != nil {
			return nil, err
		}
		// The API accepts the trusted domains' packages and the domain's
		// own: one not in the list is this domain's.
		trust = src.Domain + " is this domain: its own key."
		for _, d := range domains {
			if d.Name == src.Domain {
				trust = fmt.Sprintf("%s is trusted, key %s, since %s", d.Name, d.Fingerprint, d.AddedAt.UTC().Format("2006-01-02 15:04 UTC"))
				if d.AddedBy != "" {
					trust += " (by " + d.AddedBy + ")"
				}
				trust += "."
			}
		}
	}
	resolved := "every placeholder has a value in environment " + env + "."
	switch {
	case env == "" && groupEnv != "":
		resolved = "every placeholder has a value in environment " + groupEnv + ", the group's."
	case env == "":
		resolved = "no environment: the package has no placeholder without a default."
	}
	return []importCheck{
		{"Signature", fmt.Sprintf("valid: signed by domain %s, the package is as exported from its group %s, deployment #%d.", src.Domain, src.Group, src.Deployment)},
		{"Signing domain", trust},
		{"Placeholders", resolved},
		{"Configuration", "valid, checksum " + out.Checksum + "."},
	}, nil
}

// importRefused shows the import page with the API's refusal: the
// package's (untrusted domain, altered, not a package), or the
// configuration's errors by field path.
func (c *Console) importRefused(w http.ResponseWriter, r *http.Request, s *session, v importView, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status == http.StatusUnauthorized || ae.status == http.StatusForbidden || ae.status >= 500 {
		c.failAPI(w, r, s, err)
		return
	}
	v.Errors = ae.body.Errors
	msg := ae.body.Message
	if len(v.Errors) == 0 {
		msg = fieldMessage(ae.body, "package")
	}
	c.importFailed(w, r, s, ae.status, v, msg)
}

// importPackage imports the package the dry run showed, sent back by its
// confirmation: the API verifies it again, writes it as the group's draft
// and deploys it. The group's page then shows the roll-out.
func (c *Console) importPackage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	env := strings.TrimSpace(r.PostFormValue("env"))
	data, err := base64.StdEncoding.DecodeString(r.PostFormValue("package"))
	if err != nil || len(data) == 0 {
		c.fail(w, r, s, http.StatusBadRequest, "package: the confirmation carries no package: import it again.")
		return
	}
	var out apitypes.Import
	if err := c.send(r, s.bearer, http.MethodPost, importPath(name, env, false), http.Header{"Content-Type": {packageMediaType}}, data, &out); err != nil {
		c.importRefused(w, r, s, importView{Group: name, Env: env}, err)
		return
	}
	if out.Deployment == nil {
		c.failAPI(w, r, s, fmt.Errorf("import into %s: the API answered no deployment", name))
		return
	}
	http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?deployed="+strconv.FormatUint(out.Deployment.Number, 10), http.StatusSeeOther)
}
