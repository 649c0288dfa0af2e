package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// maxDraftBytes bounds a draft sent from the editor.
const maxDraftBytes = 4 << 20

type draftView struct {
	Group    string
	Version  uint64
	YAML     string
	CanWrite bool
	// Checked is set after a validation: Valid and Checksum, or Errors.
	Checked  bool
	Valid    bool
	Checksum string
	Errors   []apitypes.FieldError
	Warnings []apitypes.Warning
}

// draft shows the group's draft as YAML (secrets redacted) in an editor.
func (c *Console) draft(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	var d apitypes.Draft
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/draft", nil, &d); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	text, err := deploy.EncodeYAML(&d.Config)
	if err != nil {
		c.failAPI(w, r, s, fmt.Errorf("draft of %s as YAML: %w", name, err))
		return
	}
	v := draftView{Group: name, Version: d.Version, YAML: string(text)}
	if v.CanWrite, err = c.allowed(r, s, rbac.DraftWrite, name); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.showDraft(w, r, s, http.StatusOK, v)
}

func (c *Console) showDraft(w http.ResponseWriter, r *http.Request, s *session, status int, v draftView) {
	c.render(w, r, status, "draft", page{Title: "Draft of " + v.Group, Nav: "overview", User: s.user, CSRF: s.csrf, Data: v})
}

// allowed says whether the user has perm on the group, as the API would.
func (c *Console) allowed(r *http.Request, s *session, perm, group string) (bool, error) {
	var g apitypes.Group
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(group), nil, &g); err != nil {
		return false, err
	}
	authz, err := c.authz.Authorizer(r.Context(), s.user)
	if err != nil {
		return false, fmt.Errorf("permissions of %s: %w", s.user, err)
	}
	return authz.Allowed(perm, &store.Group{Name: g.Name, Labels: g.Labels}), nil
}

// saveDraft validates the edited document (op=validate) or saves it as
// the draft (op=save, If-Match the version it was based on). Either way
// every error is listed with its field path and line, the text kept.
func (c *Console) saveDraft(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, maxDraftBytes)
	name := r.PathValue("group")
	v := draftView{Group: name, YAML: r.PostFormValue("config")}
	v.Version, _ = strconv.ParseUint(r.PostFormValue("version"), 10, 64)
	var err error
	if v.CanWrite, err = c.allowed(r, s, rbac.DraftWrite, name); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	header := http.Header{"Content-Type": {"application/yaml"}}
	switch r.PostFormValue("op") {
	case "validate":
		var out apitypes.Validation
		if err := c.send(r, s.bearer, http.MethodPost, groupPath(name)+"/draft/validate", header, []byte(v.YAML), &out); err != nil {
			c.draftRefused(w, r, s, v, err)
			return
		}
		v.Checked, v.Valid, v.Checksum, v.Errors, v.Warnings = true, out.Valid, out.Checksum, out.Errors, out.Warnings
		c.showDraft(w, r, s, http.StatusOK, v)
	case "save":
		header.Set("If-Match", strconv.Quote(strconv.FormatUint(v.Version, 10)))
		if err := c.send(r, s.bearer, http.MethodPut, groupPath(name)+"/draft", header, []byte(v.YAML), nil); err != nil {
			c.draftRefused(w, r, s, v, err)
			return
		}
		http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?saved=1", http.StatusSeeOther)
	default:
		c.fail(w, r, s, http.StatusBadRequest, "op: validate or save.")
	}
}

// draftRefused shows the editor again with the API's refusal: the
// document's errors, or its message.
func (c *Console) draftRefused(w http.ResponseWriter, r *http.Request, s *session, v draftView, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status == http.StatusUnauthorized || ae.status >= 500 {
		c.failAPI(w, r, s, err)
		return
	}
	v.Checked, v.Errors = true, ae.body.Errors
	if len(v.Errors) == 0 {
		v.Errors = []apitypes.FieldError{{Field: ae.body.Field, Message: ae.body.Message}}
	}
	c.showDraft(w, r, s, ae.status, v)
}
