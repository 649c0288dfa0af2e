package console

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/api"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/promotion"
)

// part is one part of a multipart form: a field, or a file when file is
// set.
type part struct {
	name, file, value string
}

// postMultipart sends a multipart form, its parts in order, and answers
// the status and the page (after a redirect, the page it leads to).
func (f *fixture) postMultipart(t *testing.T, c *http.Client, path string, parts ...part) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		var err error
		if p.file != "" {
			w, e := mw.CreateFormFile(p.name, p.file)
			if e == nil {
				_, e = w.Write([]byte(p.value))
			}
			err = e
		} else {
			err = mw.WriteField(p.name, p.value)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", f.srv.URL+path, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		_, page := do(t, c, "GET", f.srv.URL+resp.Header.Get("Location"), nil)
		return resp.StatusCode, page
	}
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(page)
}

// deniedOnce checks that the audit log holds one refusal of action to
// user.
func (f *fixture) deniedOnce(t *testing.T, user, action string) {
	t.Helper()
	entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{Action: action, User: user})
	if err != nil || len(entries) != 1 || entries[0].Result != "denied" {
		t.Errorf("audit of %s's %s: %+v, %v, want one denied", user, action, entries, err)
	}
}

// The console's limits are the API's: a form the console takes is one
// the API takes.
func TestConsoleLimitsAreTheAPIs(t *testing.T) {
	if maxReleaseBytes != api.MaxReleaseBytes || maxPackageBytes != api.DefaultMaxBodyBytes {
		t.Errorf("console limits %d and %d, the API's %d and %d", maxReleaseBytes, maxPackageBytes, api.MaxReleaseBytes, api.DefaultMaxBodyBytes)
	}
}

func TestReleasesUploadAndDelete(t *testing.T) {
	f := newFixture(t)
	admin, csrf := f.signedIn(t, "admin")
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/admin/releases", nil)
	if !strings.Contains(page, `id="upload-form"`) {
		t.Fatalf("the admin is not offered uploading:\n%s", page)
	}
	binary := strings.Repeat("a gateway binary ", 10000)
	code, page := f.postMultipart(t, admin, "/ui/admin/releases", part{name: "csrf", value: csrf}, part{name: "version", value: "2.0.0"},
		part{name: "file", file: "gatehouse", value: binary})
	if code != http.StatusSeeOther || !strings.Contains(page, `<p class="done" id="done">Release 2.0.0 uploaded.</p>`) || !strings.Contains(page, `<tr data-version="2.0.0">`) {
		t.Fatalf("upload: %d\n%s", code, page)
	}
	if got, err := f.store.GetReleaseBinary(context.Background(), "2.0.0"); err != nil || string(got) != binary {
		t.Errorf("stored binary: %d bytes, %v; want the %d uploaded", len(got), err, len(binary))
	}

	// Bad input: the field named, the version typed kept.
	for _, tt := range []struct {
		name  string
		parts []part
		code  int
		want  string
	}{
		{"a bad version", []part{{name: "version", value: "2.0/x"}, {name: "file", file: "g", value: "x"}}, http.StatusBadRequest, `version: release version &#34;2.0/x&#34; must match`},
		{"no version", []part{{name: "file", file: "g", value: "x"}}, http.StatusBadRequest, "version: the release&#39;s version is required"},
		{"no file", []part{{name: "version", value: "2.0.1"}}, http.StatusBadRequest, "file: choose a file"},
		{"an empty file", []part{{name: "version", value: "2.0.1"}, {name: "file", file: "g"}}, http.StatusBadRequest, "file: the chosen file is empty"},
		{"a version uploaded", []part{{name: "version", value: "2.0.0"}, {name: "file", file: "g", value: "x"}}, http.StatusConflict, "version: "},
	} {
		code, page := f.postMultipart(t, admin, "/ui/admin/releases", append([]part{{name: "csrf", value: csrf}}, tt.parts...)...)
		if code != tt.code || !strings.Contains(page, tt.want) || !strings.Contains(page, `id="upload-form"`) {
			t.Errorf("%s: %d, want %d with %q on the releases page\n%s", tt.name, code, tt.code, tt.want, page)
		}
	}

	// A release in use: the deletion is refused with the API's reason.
	if code, page := f.post(t, admin, csrf, "/ui/groups/shown/upgrade", url.Values{"version": {"2.0.0"}, "confirm": {"yes"}}); code != http.StatusSeeOther {
		t.Fatalf("move shown to 2.0.0: %d\n%s", code, page)
	}
	code, page = f.post(t, admin, csrf, "/ui/admin/releases/delete", url.Values{"version": {"2.0.0"}})
	if code != http.StatusOK || !strings.Contains(page, `id="confirm-delete"`) || !strings.Contains(page, "Delete release 2.0.0?") {
		t.Fatalf("delete, unconfirmed: %d, want the confirmation\n%s", code, page)
	}
	code, page = f.post(t, admin, csrf, "/ui/admin/releases/delete", url.Values{"version": {"2.0.0"}, "confirm": {"yes"}})
	if code != http.StatusConflict || !strings.Contains(page, `version: release &#34;2.0.0&#34; is the gateway release of group &#34;shown&#34;`) {
		t.Fatalf("delete a release in use: %d, want 409 naming the group\n%s", code, page)
	}
	if code, page := f.postMultipart(t, admin, "/ui/admin/releases", part{name: "csrf", value: csrf}, part{name: "version", value: "2.0.1"},
		part{name: "file", file: "gatehouse", value: binary}); code != http.StatusSeeOther {
		t.Fatalf("upload 2.0.1: %d\n%s", code, page)
	}
	code, page = f.post(t, admin, csrf, "/ui/admin/releases/delete", url.Values{"version": {"2.0.1"}, "confirm": {"yes"}})
	if code != http.StatusSeeOther || !strings.Contains(page, "Release 2.0.1 deleted.") || strings.Contains(page, `<tr data-version="2.0.1">`) {
		t.Errorf("delete: %d\n%s", code, page)
	}

	// A viewer of the domain reads the releases, and is offered neither
	// uploading nor deleting.
	ctx := context.Background()
	u, err := f.store.GetUser(ctx, "viewer")
	if err != nil {
		t.Fatal(err)
	}
	u.Name = "reader"
	if _, err := f.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateRoleBinding(ctx, store.RoleBinding{User: "reader", Role: rbac.RoleViewer, Scope: store.Scope{Domain: true}}); err != nil {
		t.Fatal(err)
	}
	reader, _ := f.signedIn(t, "reader")
	if _, page := do(t, reader, "GET", f.srv.URL+"/ui/admin/releases", nil); !strings.Contains(page, `<tr data-version="2.0.0">`) ||
		!strings.Contains(page, `id="no-upload"`) || strings.Contains(page, `id="upload-form"`) || strings.Contains(page, `class="delete"`) {
		t.Errorf("the domain's viewer's releases page:\n%s", page)
	}

	// A viewer is refused by the API, audited; a form without the CSRF
	// token never reaches it.
	viewer, vcsrf := f.signedIn(t, "viewer")
	upload := []part{{name: "version", value: "3.0.0"}, {name: "file", file: "g", value: "x"}}
	if code, _ := f.postMultipart(t, viewer, "/ui/admin/releases", upload...); code != http.StatusForbidden {
		t.Errorf("the viewer's upload without the CSRF token: %d, want 403", code)
	}
	if code, _ := f.post(t, viewer, "", "/ui/admin/releases/delete", url.Values{"version": {"2.0.0"}, "confirm": {"yes"}}); code != http.StatusForbidden {
		t.Errorf("the viewer's deletion without the CSRF token: %d, want 403", code)
	}
	if code, _ := f.postMultipart(t, viewer, "/ui/admin/releases", append([]part{{name: "csrf", value: vcsrf}}, upload...)...); code != http.StatusForbidden {
		t.Errorf("the viewer's upload: %d, want 403", code)
	}
	if code, _ := f.post(t, viewer, vcsrf, "/ui/admin/releases/delete", url.Values{"version": {"2.0.0"}, "confirm": {"yes"}}); code != http.StatusForbidden {
		t.Errorf("the viewer's deletion: %d, want 403", code)
	}
	f.deniedOnce(t, "viewer", "release.upload")
	f.deniedOnce(t, "viewer", "release.delete")
	if _, err := f.store.GetRelease(context.Background(), "3.0.0"); err == nil {
		t.Error("the viewer's release was stored")
	}
}

func TestExportAndImportPackages(t *testing.T) {
	f := newFixture(t)
	admin, csrf := f.signedIn(t, "admin")
	if _, err := f.store.PutDraft(context.Background(), "shown", deploy.Config{}, 0, "admin"); err != nil {
		t.Fatal(err)
	}
	if code, page := f.post(t, admin, csrf, "/ui/groups/shown/deploy", url.Values{"message": {"first"}}); code != http.StatusSeeOther {
		t.Fatalf("deploy: %d\n%s", code, page)
	}
	_, page := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown", nil)
	for _, w := range []string{`<a href="/ui/groups/shown/deployments/1/package" class="export" download>`, `<a href="/ui/groups/shown/import" id="import-link">`} {
		if !strings.Contains(page, w) {
			t.Errorf("the group page has no %q", w)
		}
	}
	resp, pkg := do(t, admin, "GET", f.srv.URL+"/ui/groups/shown/deployments/1/package", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != packageMediaType ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="shown-1.ghpkg"` || !strings.Contains(pkg, `"domain": "test"`) {
		t.Fatalf("export: %d %v\n%s", resp.StatusCode, resp.Header, pkg)
	}

	_, page = do(t, admin, "GET", f.srv.URL+"/ui/groups/hidden/import", nil)
	if !strings.Contains(page, `id="import-form"`) || !strings.Contains(page, `<select name="env" id="import-env">`) {
		t.Fatalf("the import form:\n%s", page)
	}
	// The dry run: what was verified, the diff, and a confirmation.
	dryRun := func(c *http.Client, csrf, group, pkg string) (int, string) {
		return f.postMultipart(t, c, "/ui/groups/"+group+"/import", part{name: "csrf", value: csrf}, part{name: "env"},
			part{name: "package", file: "shown-1.ghpkg", value: pkg})
	}
	code, page := dryRun(admin, csrf, "hidden", pkg)
	for _, w := range []string{"valid: signed by domain test, the package is as exported from its group shown, deployment #1.",
		"test is this domain: its own key.", `id="import-diff"`, `id="confirm-import"`} {
		if code != http.StatusOK || !strings.Contains(page, w) {
			t.Fatalf("dry run: %d, the page has no %q\n%s", code, w, page)
		}
	}
	if ds, err := f.store.ListDeployments(context.Background(), "hidden"); err != nil || len(ds) != 0 {
		t.Fatalf("the dry run deployed: %+v, %v", ds, err)
	}
	confirm := url.Values{"env": {""}, "package": {valueOf(t, page, "package")}}
	code, page = f.post(t, admin, csrf, "/ui/groups/hidden/import/confirm", confirm)
	if code != http.StatusSeeOther || !strings.Contains(page, "Deployed #1.") || !strings.Contains(page, "promoted from test shown #1") {
		t.Fatalf("confirmed import: %d\n%s", code, page)
	}

	// Refusals, with the API's reason.
	tampered := strings.Replace(pkg, `"author": "admin"`, `"author": "mallory"`, 1)
	if tampered == pkg {
		t.Fatalf("no author in the package:\n%s", pkg)
	}
	pub, key, err := deploy.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := promotion.Export(promotion.Source{Domain: "other", Group: "api", Deployment: 4, Author: "ann", CreatedAt: time.Now(),
		Config: &deploy.Config{Upstreams: []deploy.Upstream{{Name: "u", Targets: []deploy.Target{{Address: "${HOST}:80"}}}}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, pkg string
		code      int
		want      string
	}{
		{"a tampered package", tampered, http.StatusBadRequest, "package: package refused"},
		{"an untrusted domain's", string(foreign), http.StatusBadRequest, "other"},
		{"not a package", "hello", http.StatusBadRequest, "package: package refused"},
	} {
		code, page := dryRun(admin, csrf, "hidden", tt.pkg)
		if code != tt.code || !strings.Contains(page, tt.want) || !strings.Contains(page, `id="import-form"`) {
			t.Errorf("%s: %d, want %d with %q and the form again\n%s", tt.name, code, tt.code, tt.want, page)
		}
	}
	if code, page := f.post(t, admin, csrf, "/ui/admin/trust", url.Values{"op": {"add"}, "name": {"other"}, "public_key": {deploy.EncodePublicKey(pub)}}); code != http.StatusSeeOther {
		t.Fatalf("trust other: %d\n%s", code, page)
	}
	code, page = dryRun(admin, csrf, "hidden", string(foreign))
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, `<li data-field="upstreams[0].targets[0].address"><code>upstreams[0].targets[0].address</code>: no value for HOST</li>`) {
		t.Errorf("a placeholder without a value: %d, want 422 naming the field\n%s", code, page)
	}

	// Bad input.
	for _, tt := range []struct {
		name  string
		parts []part
		want  string
	}{
		{"no package", []part{{name: "env", value: "prod"}}, "package: choose a file"},
		{"an empty package", []part{{name: "package", file: "p.ghpkg"}}, "package: the chosen file is empty"},
	} {
		code, page := f.postMultipart(t, admin, "/ui/groups/hidden/import", append([]part{{name: "csrf", value: csrf}}, tt.parts...)...)
		if code != http.StatusBadRequest || !strings.Contains(page, tt.want) {
			t.Errorf("%s: %d, want 400 with %q\n%s", tt.name, code, tt.want, page)
		}
	}
	if code, page := f.post(t, admin, csrf, "/ui/groups/hidden/import/confirm", url.Values{"package": {"not base64!"}}); code != http.StatusBadRequest || !strings.Contains(page, "package: ") {
		t.Errorf("a confirmation without a package: %d\n%s", code, page)
	}

	// The viewer of shown: offered no import, refused by the API (403,
	// audited); without the CSRF token, refused before.
	viewer, vcsrf := f.signedIn(t, "viewer")
	_, page = do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown", nil)
	if strings.Contains(page, "import-link") {
		t.Error("the viewer is offered importing")
	}
	if resp, _ := do(t, viewer, "GET", f.srv.URL+"/ui/groups/shown/import", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the viewer's import form: %d, want 403", resp.StatusCode)
	}
	if code, _ := dryRun(viewer, "", "shown", pkg); code != http.StatusForbidden {
		t.Errorf("the viewer's dry run without the CSRF token: %d, want 403", code)
	}
	if code, _ := dryRun(viewer, vcsrf, "shown", pkg); code != http.StatusForbidden {
		t.Errorf("the viewer's dry run: %d, want 403", code)
	}
	f.deniedOnce(t, "viewer", "deployment.import")
	if code, _ := f.post(t, viewer, vcsrf, "/ui/groups/shown/import/confirm", confirm); code != http.StatusForbidden {
		t.Errorf("the viewer's import: %d, want 403", code)
	}
	entries, err := f.store.ListAudit(context.Background(), store.AuditFilter{Action: "deployment.import", User: "viewer"})
	if err != nil || len(entries) != 2 {
		t.Errorf("audit of the viewer's imports: %+v, %v, want two denied", entries, err)
	}
}

// valueOf is the value of the hidden field name in page, unescaped.
func valueOf(t *testing.T, page, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="`+name+`" value="`)
	v, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		t.Fatalf("no field %s in:\n%s", name, page)
	}
	return strings.NewReplacer("&#43;", "+", "&#61;", "=", "&#47;", "/").Replace(v)
}
