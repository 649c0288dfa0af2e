package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// The fleet's pages: creating, changing and deleting groups, rotating a
// group's gossip key, adding, restarting and deleting instances. Each is
// one API call, as the CLI's `gatehouse group` and `gatehouse instance`
// make it; a form is offered with the permission the API asks for, and
// the API refuses (403, audited) whoever posts without it.

// groupRights are the fleet actions the group page offers.
type groupRights struct {
	// CanWrite offers changing, rotating the gossip key of and deleting
	// the group (group:write), CanWriteInstances adding and deleting
	// instances (instance:write), CanOperate restarting them
	// (instance:operate).
	CanWrite, CanWriteInstances, CanOperate bool
	// EditLabels are the group's labels as the form takes them.
	EditLabels string
}

func rightsOn(authz *rbac.Authorizer, g *store.Group) groupRights {
	return groupRights{CanWrite: authz.Allowed(rbac.GroupWrite, g), CanWriteInstances: authz.Allowed(rbac.InstanceWrite, g),
		CanOperate: authz.Allowed(rbac.InstanceOperate, g), EditLabels: labelText(g.Labels)}
}

// instanceActions is what the instances table offers for one instance.
// Its buttons belong to the form #instance-action, outside the page's
// live part: the live part, gzipped, carries no CSRF token (BREACH).
type instanceActions struct {
	groupRights
	Instance string
	// Generation is the restart generation asked for; Restarting says
	// that the instance has not reported a process of it yet.
	Generation uint64
	Restarting bool
}

// For is the actions offered for in.
func (g groupRights) For(in apitypes.Instance) instanceActions {
	return instanceActions{groupRights: g, Instance: in.Name, Generation: in.RestartGeneration,
		Restarting: in.RestartGeneration > 0 && (in.Observed == nil || in.Observed.RestartGeneration < in.RestartGeneration)}
}

// Any says whether the table needs its actions column.
func (g groupRights) Any() bool { return g.CanWriteInstances || g.CanOperate }

// formError is the API's refusal of a form, shown next to it: Field is
// the form field it names (the API's field, label keys folded into
// "labels").
type formError struct {
	Field, Message string
}

// fleetView is one of the fleet's forms or confirmations, as Form says:
// "group-new", "group-edit", "instance-new" or "confirm".
type fleetView struct {
	Form string
	// Group and Labels are the group form's values, as typed; Current is
	// the group as it is now, shown after a concurrent change.
	Group   apitypes.Group
	Labels  string
	Current *apitypes.Group
	// Instance is the instance form's values; Hosts are those to pick
	// from, listed for a user who may read them (host:read on the
	// domain), who otherwise types a host's name.
	Instance    apitypes.Instance
	Hosts       []string
	HostsListed bool
	Err         *formError
	Confirm     *fleetConfirm
	CSRF        string
}

// Invalid says whether the API's refusal names the form field.
func (v fleetView) Invalid(field string) bool { return v.Err != nil && v.Err.Field == field }

// fleetConfirm asks before a destructive action: the form posts to
// Action with confirm=yes.
type fleetConfirm struct {
	Action, Question, Button, ButtonID, Cancel string
}

func (c *Console) showFleet(w http.ResponseWriter, r *http.Request, s *session, status int, title string, v fleetView) {
	v.CSRF = s.csrf
	c.render(w, r, status, "fleet", page{Title: title, Nav: "overview", User: s.user, CSRF: s.csrf, Data: v})
}

// refusedForm shows the form again with what was typed and the API's
// refusal of it (400, 409), or the error page for anything else.
func (c *Console) refusedForm(w http.ResponseWriter, r *http.Request, s *session, title string, v fleetView, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusBadRequest && ae.status != http.StatusConflict {
		c.failAPI(w, r, s, err)
		return
	}
	field := ae.body.Field
	if strings.HasPrefix(field, "labels.") {
		field = "labels"
	}
	v.Err = &formError{Field: field, Message: ae.body.Message}
	c.showFleet(w, r, s, ae.status, title, v)
}

// parseLabels reads labels typed as key=value pairs separated by commas
// or new lines, as `gatehouse group create --label` takes them one by one.
func parseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		labels[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return labels, nil
}

// labelText writes labels back as the form takes them.
func labelText(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ", ")
}

// canCreateGroup says whether to offer creating a group: the API checks
// group:write on the group as it will be, which a domain-wide or
// label-selector binding may grant, and a binding naming groups for those
// of its names no group has yet. A name taken by a group the user cannot
// read still counts as free: the API refuses that creation (409).
func (c *Console) canCreateGroup(r *http.Request, s *session) (bool, error) {
	authz, err := c.authz.Authorizer(r.Context(), s.user)
	if err != nil {
		return false, fmt.Errorf("permissions of %s: %w", s.user, err)
	}
	var groups []apitypes.Group
	if err := c.call(r, s.bearer, http.MethodGet, "/groups", nil, &groups); err != nil {
		return false, err
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	return authz.MayCreateGroup(rbac.GroupWrite, names), nil
}

// newGroupForm shows the form creating a group.
func (c *Console) newGroupForm(w http.ResponseWriter, r *http.Request, s *session) {
	c.showFleet(w, r, s, http.StatusOK, "New group", fleetView{Form: "group-new", Group: apitypes.Group{Type: store.GroupTypeGateway}})
}

// createGroup creates a group, as `gatehouse group create` does.
func (c *Console) createGroup(w http.ResponseWriter, r *http.Request, s *session) {
	v := fleetView{Form: "group-new", Labels: r.PostFormValue("labels"), Group: apitypes.Group{
		Name: strings.TrimSpace(r.PostFormValue("name")), Type: strings.TrimSpace(r.PostFormValue("type")),
		Description: strings.TrimSpace(r.PostFormValue("description"))}}
	var err error
	if v.Group.Labels, err = parseLabels(v.Labels); err != nil {
		v.Err = &formError{Field: "labels", Message: "labels: " + err.Error() + "."}
		c.showFleet(w, r, s, http.StatusBadRequest, "New group", v)
		return
	}
	var g apitypes.Group
	if err := c.call(r, s.bearer, http.MethodPost, "/groups", v.Group, &g); err != nil {
		c.refusedForm(w, r, s, "New group", v, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(g.Name), "group.created", g.Name)
}

// updateGroup replaces the group's labels, description and environment,
// If-Match the version the page showed: an edit made meanwhile by someone
// else is reported with the group as it is now, never overwritten.
func (c *Console) updateGroup(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	title := "Change group " + name
	v := fleetView{Form: "group-edit", Labels: r.PostFormValue("labels"), Group: apitypes.Group{Name: name,
		Type:        strings.TrimSpace(r.PostFormValue("type")),
		Description: strings.TrimSpace(r.PostFormValue("description")), Environment: strings.TrimSpace(r.PostFormValue("environment"))}}
	version, err := strconv.ParseUint(r.PostFormValue("version"), 10, 64)
	if err != nil || version == 0 {
		c.fail(w, r, s, http.StatusBadRequest, "version: the group's version the form was made from is required.")
		return
	}
	v.Group.Version = version
	if v.Group.Labels, err = parseLabels(v.Labels); err != nil {
		v.Err = &formError{Field: "labels", Message: "labels: " + err.Error() + "."}
		c.showFleet(w, r, s, http.StatusBadRequest, title, v)
		return
	}
	body, err := json.Marshal(v.Group)
	if err != nil {
		c.failAPI(w, r, s, fmt.Errorf("encode group %s: %w", name, err))
		return
	}
	header := http.Header{"Content-Type": {"application/json"}, "If-Match": {strconv.Quote(strconv.FormatUint(version, 10))}}
	err = c.send(r, s.bearer, http.MethodPut, groupPath(name), header, body, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusConflict {
		cur := &apitypes.Group{}
		if err := c.call(r, s.bearer, http.MethodGet, groupPath(name), nil, cur); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		v.Current = cur
		v.Err = &formError{Field: "version", Message: fmt.Sprintf("Group %s was changed by someone else after this form was shown (it is at version %d, the form at %d): nothing was saved. "+
			"Its values now are below; send the form again to replace them with yours.", name, cur.Version, version)}
		v.Group.Version = cur.Version
		c.showFleet(w, r, s, http.StatusConflict, title, v)
		return
	}
	if err != nil {
		c.refusedForm(w, r, s, title, v, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(name), "group.updated", name)
}

// deleteGroup deletes a group after a confirmation; the API refuses one
// that still has instances, which the page says with their names.
func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	if r.PostFormValue("confirm") != "yes" {
		c.showFleet(w, r, s, http.StatusOK, "Delete group "+name, fleetView{Form: "confirm", Confirm: &fleetConfirm{
			Action:   Prefix + "groups/" + url.PathEscape(name) + "/delete",
			Question: fmt.Sprintf("Delete group %s with its draft and all its deployments? This cannot be undone.", name),
			Button:   "Delete " + name, ButtonID: "confirm-delete-group", Cancel: Prefix + "groups/" + url.PathEscape(name)}})
		return
	}
	err := c.call(r, s.bearer, http.MethodDelete, groupPath(name), nil, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusConflict {
		var ins []apitypes.Instance
		if c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/instances", nil, &ins) == nil && len(ins) > 0 {
			names := make([]string, len(ins))
			for i, in := range ins {
				names[i] = in.Name
			}
			c.fail(w, r, s, http.StatusConflict, fmt.Sprintf("Group %s still has instances (%s): delete them first. The admin node said: %s",
				name, strings.Join(names, ", "), ae.body.Message))
			return
		}
	}
	if err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "", "group.deleted", name)
}

// rotateGossipKey makes a new primary gossip key for the group, after a
// confirmation. The keys are never shown.
func (c *Console) rotateGossipKey(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	if r.PostFormValue("confirm") != "yes" {
		c.showFleet(w, r, s, http.StatusOK, "Rotate the gossip key of "+name, fleetView{Form: "confirm", Confirm: &fleetConfirm{
			Action: Prefix + "groups/" + url.PathEscape(name) + "/gossip-key",
			Question: fmt.Sprintf("Make a new primary gossip key for the gateways of %s? They accept the previous key until the next rotation: "+
				"rotate again only once every gateway has the new one, or a gateway that missed it drops out of the gossip.", name),
			Button: "Rotate the key", ButtonID: "confirm-rotate", Cancel: Prefix + "groups/" + url.PathEscape(name)}})
		return
	}
	if err := c.call(r, s.bearer, http.MethodPost, groupPath(name)+"/gossip-key", nil, nil); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(name), "group.gossip-key", name)
}

// newInstanceForm shows the form adding an instance to the group.
func (c *Console) newInstanceForm(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	// The group must exist and be readable: the API says otherwise.
	var g apitypes.Group
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name), nil, &g); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	v := fleetView{Form: "instance-new", Instance: apitypes.Instance{Group: g.Name}}
	if err := c.listHosts(r, s, &v); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.showFleet(w, r, s, http.StatusOK, "New instance of "+g.Name, v)
}

// listHosts fills the host picker for a user who may read hosts.
func (c *Console) listHosts(r *http.Request, s *session, v *fleetView) error {
	ok, err := c.domainAllowed(r, s, rbac.HostRead)
	if err != nil || !ok {
		return err
	}
	var hosts []apitypes.Host
	if err := c.call(r, s.bearer, http.MethodGet, "/hosts", nil, &hosts); err != nil {
		return err
	}
	for _, h := range hosts {
		v.Hosts = append(v.Hosts, h.Name)
	}
	v.HostsListed = true
	return nil
}

// createInstance declares an instance of the group, as `gatehouse
// instance create` does.
func (c *Console) createInstance(w http.ResponseWriter, r *http.Request, s *session) {
	group := r.PathValue("group")
	field := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	in := apitypes.Instance{Name: field("name"), Group: group, Host: field("host"), Listen: field("listen"),
		TLSListen: field("tls_listen"), StatusListen: field("status_listen"), GossipListen: field("gossip_listen")}
	v := fleetView{Form: "instance-new", Instance: in}
	title := "New instance of " + group
	var out apitypes.Instance
	if err := c.call(r, s.bearer, http.MethodPost, "/instances", in, &out); err != nil {
		if lerr := c.listHosts(r, s, &v); lerr != nil {
			c.failAPI(w, r, s, lerr)
			return
		}
		c.refusedForm(w, r, s, title, v, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(group), "instance.created", out.Name)
}

// restartInstance has the instance's node manager restart its gateway
// (202): the new process starts beside the old one, which drains once
// the new one serves. The group page's live part shows it come.
func (c *Console) restartInstance(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("instance")
	var out apitypes.InstanceRestart
	if err := c.call(r, s.bearer, http.MethodPost, instancePath(name)+"/restart", nil, &out); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(out.Group), "instance.restarted", out.Instance)
}

// deleteInstance deletes an instance after a confirmation.
func (c *Console) deleteInstance(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("instance")
	var in apitypes.Instance
	if err := c.call(r, s.bearer, http.MethodGet, instancePath(name), nil, &in); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	back := Prefix + "groups/" + url.PathEscape(in.Group)
	if r.PostFormValue("confirm") != "yes" {
		c.showFleet(w, r, s, http.StatusOK, "Delete instance "+name, fleetView{Form: "confirm", Confirm: &fleetConfirm{
			Action:   Prefix + "instances/" + url.PathEscape(name) + "/delete",
			Question: fmt.Sprintf("Delete instance %s of group %s on host %s? Its node manager stops its gateway: the group serves on its other instances.", name, in.Group, in.Host),
			Button:   "Delete " + name, ButtonID: "confirm-delete-instance", Cancel: back}})
		return
	}
	if err := c.call(r, s.bearer, http.MethodDelete, instancePath(name), nil, nil); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	redirectDone(w, r, "groups/"+url.PathEscape(in.Group), "instance.deleted", name)
}
