package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
)

// Gateway releases: listed, uploaded and deleted as `gatehouse release`
// does (docs/upgrades.md).

// maxReleaseBytes is the API's bound on a release (api.MaxReleaseBytes):
// the console refuses a larger form before the API reads it.
const maxReleaseBytes = 512 << 20

// maxFieldBytes bounds a form field read from a streamed form.
const maxFieldBytes = 4 << 10

// releaseDone are what the releases page says after an action.
var releaseDone = map[string]string{
	"uploaded": "Release %s uploaded.",
	"deleted":  "Release %s deleted.",
}

type releasesView struct {
	Releases []apitypes.Release
	// CanWrite offers uploading and deleting (host:write on the domain).
	CanWrite bool
	// Version is the version field as sent, after a refused upload.
	Version string
	Done    string
	// Delete is the release the confirmation asks about; "" otherwise.
	Delete string
}

// releases lists the gateway releases the admin node keeps and the groups
// that run each (host:read, as `gatehouse release list`).
func (c *Console) releases(w http.ResponseWriter, r *http.Request, s *session) {
	v := releasesView{}
	q := r.URL.Query()
	if f, ok := releaseDone[q.Get("done")]; ok {
		v.Done = fmt.Sprintf(f, q.Get("version"))
	}
	c.showReleases(w, r, s, http.StatusOK, v, "")
}

// showReleases renders the releases page with v, the list read again, and
// msg as its error ("" for none).
func (c *Console) showReleases(w http.ResponseWriter, r *http.Request, s *session, status int, v releasesView, msg string) {
	if err := c.call(r, s.bearer, http.MethodGet, "/releases", nil, &v.Releases); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	var err error
	if v.CanWrite, err = c.domainAllowed(r, s, rbac.HostWrite); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, status, "releases", page{Title: "Gateway releases", Nav: "releases", User: s.user, CSRF: s.csrf, Error: msg, Data: v})
}

// releaseRefused shows the releases page with the API's refusal of an
// upload or a deletion (a bad version, a version taken, a binary too
// large, a release in use), the field it names first: the API's, else the
// file for a body too large and the version otherwise. Other failures
// (403, 401, the store away) are failAPI's.
func (c *Console) releaseRefused(w http.ResponseWriter, r *http.Request, s *session, v releasesView, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status == http.StatusUnauthorized || ae.status == http.StatusForbidden || ae.status >= 500 {
		c.failAPI(w, r, s, err)
		return
	}
	field := "version"
	if ae.status == http.StatusRequestEntityTooLarge {
		field = "file"
	}
	c.showReleases(w, r, s, ae.status, v, fieldMessage(ae.body, field))
}

// fieldMessage is an API error as "field: message", the field the API
// names or else def ("" for none).
func fieldMessage(e apitypes.Error, def string) string {
	field := e.Field
	if field == "" {
		field = def
	}
	if field == "" || strings.HasPrefix(e.Message, field+":") {
		return e.Message
	}
	return field + ": " + e.Message
}

// streamedForm serves a multipart form whose file is streamed, never
// parsed whole: its parts are read in order by h, the first being the
// CSRF token, which signedIn checks as the header the script sends.
func (c *Console) streamedForm(limit int64, h func(w http.ResponseWriter, r *http.Request, s *session, form *multipart.Reader)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		form, err := r.MultipartReader()
		if err != nil {
			c.fail(w, r, nil, http.StatusBadRequest, "The form must be sent as multipart/form-data.")
			return
		}
		// A script may send the token as the header; a form sends it as
		// its first field.
		if r.Header.Get(csrfHeader) == "" {
			if name, token, err := nextField(form); err == nil && name == csrfField {
				r.Header.Set(csrfHeader, token)
			}
		}
		c.signedIn(func(w http.ResponseWriter, r *http.Request, s *session) { h(w, r, s, form) })(w, r)
	}
}

// nextField reads the next part of form as a field: its name and value.
func nextField(form *multipart.Reader) (string, string, error) {
	p, err := form.NextPart()
	if err != nil {
		return "", "", err
	}
	defer p.Close()
	b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
	if err != nil {
		return "", "", err
	}
	if len(b) > maxFieldBytes {
		return "", "", fmt.Errorf("%s: longer than %d bytes", p.FormName(), maxFieldBytes)
	}
	return p.FormName(), string(b), nil
}

// nextFile reads form up to its part named name, a file, after the fields
// before it, whose values it answers by name.
func nextFile(form *multipart.Reader, name string) (*multipart.Part, url.Values, error) {
	fields := url.Values{}
	for {
		p, err := form.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, fields, fmt.Errorf("%s: choose a file", name)
		}
		if err != nil {
			return nil, fields, fmt.Errorf("read the form: %w", err)
		}
		if p.FormName() == name {
			return p, fields, nil
		}
		b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
		p.Close()
		if err != nil {
			return nil, fields, fmt.Errorf("read the form: %w", err)
		}
		if len(b) > maxFieldBytes {
			return nil, fields, fmt.Errorf("%s: longer than %d bytes", p.FormName(), maxFieldBytes)
		}
		fields.Add(p.FormName(), string(b))
	}
}

// uploadRelease stores the form's file as a release (host:write on the
// domain), as `gatehouse release upload FILE --version V`: the file is
// streamed to the API, which alone holds it whole; the version field
// comes before it.
func (c *Console) uploadRelease(w http.ResponseWriter, r *http.Request, s *session, form *multipart.Reader) {
	file, fields, err := nextFile(form, "file")
	v := releasesView{Version: strings.TrimSpace(fields.Get("version"))}
	if err != nil {
		c.showReleases(w, r, s, http.StatusBadRequest, v, err.Error())
		return
	}
	defer file.Close()
	if v.Version == "" {
		c.showReleases(w, r, s, http.StatusBadRequest, v, "version: the release's version is required, such as 1.4.2.")
		return
	}
	body := bufio.NewReader(file)
	if _, err := body.Peek(1); errors.Is(err, io.EOF) {
		c.showReleases(w, r, s, http.StatusBadRequest, v, "file: the chosen file is empty; choose the gateway's binary.")
		return
	}
	var rel apitypes.Release
	path := "/releases?" + url.Values{"version": {v.Version}}.Encode()
	resp, err := c.do(r, s.bearer, http.MethodPost, path, http.Header{"Content-Type": {"application/octet-stream"}}, body)
	if err != nil {
		c.releaseRefused(w, r, s, v, err)
		return
	}
	if err := decodeAnswer(resp, &rel); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"admin/releases?"+url.Values{"done": {"uploaded"}, "version": {rel.Version}}.Encode(), http.StatusSeeOther)
}

// decodeAnswer decodes the JSON answer of an API call made with do.
func decodeAnswer(resp *response, out any) error {
	if err := json.Unmarshal(resp.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode the API's answer: %w", err)
	}
	return nil
}

// deleteRelease deletes a release, after a confirmation page
// (confirm=yes does it); the API refuses one a group runs or rolls out
// from or to, saying which.
func (c *Console) deleteRelease(w http.ResponseWriter, r *http.Request, s *session) {
	version := strings.TrimSpace(r.PostFormValue("version"))
	if version == "" {
		c.showReleases(w, r, s, http.StatusBadRequest, releasesView{}, "version: the release to delete is required.")
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.showReleases(w, r, s, http.StatusOK, releasesView{Delete: version}, "")
		return
	}
	if err := c.call(r, s.bearer, http.MethodDelete, "/releases/"+url.PathEscape(version), nil, nil); err != nil {
		c.releaseRefused(w, r, s, releasesView{}, err)
		return
	}
	http.Redirect(w, r, Prefix+"admin/releases?"+url.Values{"done": {"deleted"}, "version": {version}}.Encode(), http.StatusSeeOther)
}
