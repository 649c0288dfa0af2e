package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// count is one status and how many instances have it.
type count struct {
	Status string
	N      int
}

func counts(by map[string]int) []count {
	var out []count
	for _, st := range status.Statuses() {
		if by[st] > 0 {
			out = append(out, count{st, by[st]})
		}
	}
	return out
}

type overviewGroup struct {
	apitypes.OverviewGroup
	Labels map[string]string
	Counts []count
}

type overviewView struct {
	Now       time.Time
	Selector  string
	Groups    []overviewGroup
	Hosts     []apitypes.OverviewHost
	Hidden    bool
	Attention []apitypes.Attention
	// Certificates are the CA roots, the admin node's and the groups'
	// listener certificates, and node certificates not in the ok state
	// (the hosts table shows the others' expiry).
	Certificates []apitypes.CertificateExpiry
	// CanCreateGroup offers the form creating a group; Done says what
	// the last action did (a group deleted).
	CanCreateGroup bool
	Done           string
}

// overview is the whole page: its live part, and what only the whole
// page offers (creating a group), left out of the part polled every
// second.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	c.show(w, r, s, "overview", func(r *http.Request, s *session) (page, error) {
		p, err := c.overviewData(r, s)
		if err != nil {
			return p, err
		}
		v := p.Data.(overviewView)
		if v.CanCreateGroup, err = c.canCreateGroup(r, s); err != nil {
			return page{}, err
		}
		v.Done = doneMessage(r.URL.Query())
		p.Data = v
		return p, nil
	})
}

// overviewData is the API's overview, its groups narrowed to those the
// label selector picks (the API's selector, so the same syntax and
// errors as `gatehouse group list --selector`).
func (c *Console) overviewData(r *http.Request, s *session) (page, error) {
	sel := strings.TrimSpace(r.URL.Query().Get("selector"))
	var o apitypes.Overview
	if err := c.call(r, s.bearer, http.MethodGet, "/overview", nil, &o); err != nil {
		return page{}, err
	}
	var groups []apitypes.Group
	if err := c.call(r, s.bearer, http.MethodGet, "/groups?selector="+url.QueryEscape(sel), nil, &groups); err != nil {
		return page{}, err
	}
	labels := map[string]map[string]string{}
	for _, g := range groups {
		labels[g.Name] = g.Labels
	}
	v := overviewView{Now: o.Time, Selector: sel, Hosts: o.Hosts, Hidden: o.HostsHidden}
	for _, g := range o.Groups {
		if l, ok := labels[g.Name]; ok {
			v.Groups = append(v.Groups, overviewGroup{OverviewGroup: g, Labels: l, Counts: counts(g.ByStatus)})
		}
	}
	for _, a := range o.Attention {
		if _, ok := labels[a.Group]; ok || a.Group == "" && sel == "" {
			v.Attention = append(v.Attention, a)
		}
	}
	for _, cert := range o.Certificates {
		if _, ok := labels[cert.Group]; (ok || cert.Group == "" && sel == "") && (cert.Kind != apitypes.CertNode || cert.State != apitypes.CertOK) {
			v.Certificates = append(v.Certificates, cert)
		}
	}
	live := Prefix + "live/overview"
	if sel != "" {
		live += "?selector=" + url.QueryEscape(sel)
	}
	return page{Title: "Overview", Nav: "overview", User: s.user, CSRF: s.csrf, Live: live, Data: v}, nil
}

// cell is the instances of one group on one host.
type cell struct {
	Instances []apitypes.Instance
}

type topologyRow struct {
	Host  string
	Cells []cell
}

type topologyView struct {
	Groups []string
	Rows   []topologyRow
}

func (c *Console) topology(w http.ResponseWriter, r *http.Request, s *session) {
	c.show(w, r, s, "topology", c.topologyData)
}

// topologyData lays the instances the caller may read out by host and
// group.
func (c *Console) topologyData(r *http.Request, s *session) (page, error) {
	var o apitypes.Overview
	if err := c.call(r, s.bearer, http.MethodGet, "/overview", nil, &o); err != nil {
		return page{}, err
	}
	// The cells show no gossip view.
	var ins []apitypes.Instance
	if err := c.call(r, s.bearer, http.MethodGet, "/instances?peers=false", nil, &ins); err != nil {
		return page{}, err
	}
	var v topologyView
	col := map[string]int{}
	for _, g := range o.Groups {
		col[g.Name] = len(v.Groups)
		v.Groups = append(v.Groups, g.Name)
	}
	hosts := map[string]bool{}
	for _, h := range o.Hosts {
		hosts[h.Name] = true
	}
	for _, in := range ins {
		hosts[in.Host] = true
	}
	row := map[string]int{}
	for _, h := range slices.Sorted(func(yield func(string) bool) {
		for h := range hosts {
			if !yield(h) {
				return
			}
		}
	}) {
		row[h] = len(v.Rows)
		v.Rows = append(v.Rows, topologyRow{Host: h, Cells: make([]cell, len(v.Groups))})
	}
	for _, in := range ins {
		j, ok := col[in.Group]
		if !ok {
			continue
		}
		cl := &v.Rows[row[in.Host]].Cells[j]
		cl.Instances = append(cl.Instances, in)
	}
	return page{Title: "Topology", Nav: "topology", User: s.user, CSRF: s.csrf, Live: Prefix + "live/topology", Data: v}, nil
}

type groupView struct {
	Group     apitypes.Group
	Summary   apitypes.GroupSummary
	Counts    []count
	Instances []apitypes.Instance
	// Rollout is the current deployment's roll-out, instance by
	// instance; nil when nothing is deployed.
	Rollout *apitypes.Rollout
	// Gateway is the group's gateway release with its rolling upgrade
	// under way or last (docs/upgrades.md).
	Gateway     apitypes.GroupGateway
	Deployments []apitypes.Deployment
	CanDeploy   bool
	// CanUpgrade offers starting a rolling upgrade (group:write);
	// Releases are those to pick from, listed for a user who may read
	// them (host:read on the domain), who otherwise types a version.
	CanUpgrade     bool
	Releases       []apitypes.Release
	ReleasesListed bool
	// DraftDiff is what deploying the draft would change; nil for a
	// user who may not read the draft.
	DraftDiff *apitypes.Diff
	// Settings are the group's dynamic settings and their form.
	Settings groupSettings
	// Done says what the last action did, from the redirect after it.
	Done string
	// Rights are the group's and its instances' actions offered.
	Rights groupRights
}

func (c *Console) group(w http.ResponseWriter, r *http.Request, s *session) {
	c.show(w, r, s, "group", c.groupData)
}

func groupPath(name string) string { return "/groups/" + url.PathEscape(name) }

func instancePath(name string) string { return "/instances/" + url.PathEscape(name) }

// groupData is the whole group page; groupLive its live part only.
func (c *Console) groupData(r *http.Request, s *session) (page, error) {
	return c.groupPage(r, s, true)
}

func (c *Console) groupLive(r *http.Request, s *session) (page, error) {
	return c.groupPage(r, s, false)
}

func (c *Console) groupPage(r *http.Request, s *session, whole bool) (page, error) {
	name := r.PathValue("group")
	var v groupView
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name), nil, &v.Group); err != nil {
		return page{}, err
	}
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/summary", nil, &v.Summary); err != nil {
		return page{}, err
	}
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/instances", nil, &v.Instances); err != nil {
		return page{}, err
	}
	// group:read, as the group itself: whoever sees the page may see it.
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/gateway", nil, &v.Gateway); err != nil {
		return page{}, err
	}
	v.Counts = counts(v.Summary.ByStatus)
	authz, err := c.authz.Authorizer(r.Context(), s.user)
	if err != nil {
		return page{}, fmt.Errorf("permissions of %s: %w", s.user, err)
	}
	g := &store.Group{Name: v.Group.Name, Labels: v.Group.Labels}
	v.Rights = rightsOn(authz, g)
	// Left out for a user who may not read deployments, as the API
	// leaves out what one may not read (asking would audit a refusal
	// every second).
	if n := v.Summary.CurrentDeployment; n > 0 && authz.Allowed(rbac.DeploymentRead, g) {
		// At once (no index): the page's script asks again every second.
		v.Rollout = &apitypes.Rollout{}
		if err := c.call(r, s.bearer, http.MethodGet, fmt.Sprintf("%s/deployments/%d/rollout", groupPath(name), n), nil, v.Rollout); err != nil {
			return page{}, err
		}
	}
	if !whole {
		return page{Data: v}, nil
	}
	if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/deployments", nil, &v.Deployments); err != nil {
		return page{}, err
	}
	v.CanDeploy = authz.Allowed(rbac.DeploymentCreate, g)
	if v.CanDeploy && authz.Allowed(rbac.DraftRead, g) {
		v.DraftDiff = &apitypes.Diff{}
		if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/draft/diff", nil, v.DraftDiff); err != nil {
			return page{}, err
		}
	}
	v.CanUpgrade = authz.Allowed(rbac.GroupWrite, g)
	if v.CanUpgrade && authz.Allowed(rbac.HostRead, nil) {
		if err := c.call(r, s.bearer, http.MethodGet, "/releases", nil, &v.Releases); err != nil {
			return page{}, err
		}
		v.ReleasesListed = true
	}
	if v.Settings, err = c.groupSettingsOf(r, s, name, authz.Allowed(rbac.SettingsWrite, g)); err != nil {
		return page{}, err
	}
	switch q := r.URL.Query(); {
	case q.Get("upgrading") != "":
		v.Done = "Rolling upgrade to " + releaseName(q.Get("upgrading")) + " started."
	case q.Get("deployed") != "":
		v.Done = "Deployed #" + q.Get("deployed") + "."
	case q.Get("rolledback") != "":
		v.Done = "Rolled back: deployed #" + q.Get("rolledback") + "."
	case q.Get("saved") != "":
		v.Done = "Draft saved."
	case q.Get("settings") == "saved":
		v.Done = "Dynamic settings saved."
	default:
		v.Done = doneMessage(q)
	}
	return page{Title: "Group " + v.Group.Name, Nav: "overview", User: s.user, CSRF: s.csrf,
		Live: Prefix + "live" + groupPath(v.Group.Name), Data: v}, nil
}

// deploy deploys the group's draft with a message. The button is offered
// only to who may deploy; the API refuses (403, audited) anyone else.
func (c *Console) deploy(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	var d apitypes.Deployment
	in := apitypes.DeployRequest{Message: strings.TrimSpace(r.PostFormValue("message"))}
	if err := c.call(r, s.bearer, http.MethodPost, groupPath(name)+"/deployments", in, &d); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?deployed="+strconv.FormatUint(d.Number, 10), http.StatusSeeOther)
}

type confirmView struct {
	Group   string
	Number  uint64
	Message string
}

// rollback asks for confirmation first: a form with confirm=yes does it.
func (c *Console) rollback(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	n, err := strconv.ParseUint(r.PostFormValue("number"), 10, 64)
	if err != nil || n == 0 {
		c.fail(w, r, s, http.StatusBadRequest, "number: a deployment number is required.")
		return
	}
	msg := strings.TrimSpace(r.PostFormValue("message"))
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, http.StatusOK, "confirm", page{Title: "Roll back " + name, Nav: "overview", User: s.user, CSRF: s.csrf,
			Data: confirmView{Group: name, Number: n, Message: msg}})
		return
	}
	var d apitypes.Deployment
	in := apitypes.RollbackRequest{Message: msg}
	if err := c.call(r, s.bearer, http.MethodPost, groupPath(name)+"/deployments/"+strconv.FormatUint(n, 10)+"/rollback", in, &d); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?rolledback="+strconv.FormatUint(d.Number, 10), http.StatusSeeOther)
}

// releaseName names a gateway release; "" is the binary the node
// managers run themselves.
func releaseName(v string) string {
	if v == "" {
		return "the node manager's own binary"
	}
	return v
}

type upgradeView struct {
	Group          string
	From, To       string
	MaxUnavailable int
}

// upgrade starts a rolling upgrade of the group to another gateway
// release, after a confirmation page (confirm=yes does it). The form is
// offered only to who may change the group; the API refuses (403,
// audited) anyone else, and audits the upgrade.
func (c *Console) upgrade(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	in := apitypes.GroupGatewayUpdate{Version: strings.TrimSpace(r.PostFormValue("version"))}
	if m := strings.TrimSpace(r.PostFormValue("max_unavailable")); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			c.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("max_unavailable: how many instances are replaced at once, at least 1, not %q.", m))
			return
		}
		in.MaxUnavailable = n
	}
	if r.PostFormValue("confirm") != "yes" {
		var gw apitypes.GroupGateway
		if err := c.call(r, s.bearer, http.MethodGet, groupPath(name)+"/gateway", nil, &gw); err != nil {
			c.failAPI(w, r, s, err)
			return
		}
		v := upgradeView{Group: name, From: gw.Version, To: in.Version, MaxUnavailable: cmp.Or(in.MaxUnavailable, gw.MaxUnavailable)}
		c.render(w, r, http.StatusOK, "upgrade", page{Title: "Rolling upgrade of " + name, Nav: "overview", User: s.user, CSRF: s.csrf, Data: v})
		return
	}
	if err := c.call(r, s.bearer, http.MethodPut, groupPath(name)+"/gateway", in, nil); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"groups/"+url.PathEscape(name)+"?"+url.Values{"upgrading": {in.Version}}.Encode(), http.StatusSeeOther)
}

// diff shows what changed from one deployment of a group to another.
func (c *Console) diff(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("group")
	q := r.URL.Query()
	from, err1 := strconv.ParseUint(q.Get("from"), 10, 64)
	to, err2 := strconv.ParseUint(q.Get("to"), 10, 64)
	if err1 != nil || err2 != nil {
		c.fail(w, r, s, http.StatusBadRequest, "from and to: two deployment numbers are required.")
		return
	}
	var d apitypes.Diff
	path := fmt.Sprintf("%s/deployments/%d/diff/%d", groupPath(name), from, to)
	if err := c.call(r, s.bearer, http.MethodGet, path, nil, &d); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "diff", page{Title: fmt.Sprintf("%s: #%d → #%d", name, from, to), Nav: "overview",
		User: s.user, CSRF: s.csrf, Data: d})
}

type auditView struct {
	User, Action, Group string
	// From and To are the time range as the form shows them.
	From, To string
	Limit    int
	// Before is the cursor of this page (0 for the newest), Older that
	// of the next page (0 when this one is the last).
	Before, Older uint64
	Entries       []apitypes.AuditEntry
}

// auditLimit is how many entries a page of the audit log shows unless
// the address asks for another number (1 to maxAuditLimit, the API's).
const (
	auditLimit    = 200
	maxAuditLimit = 1000
)

// formTime is a datetime-local field's value, read as UTC.
const formTime = "2006-01-02T15:04"

// parseFormTime reads a time of the filter: as the form's field sends it
// (UTC), or RFC 3339.
func parseFormTime(field, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(formTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not a time such as 2026-11-23T10:00 (UTC)", field, s)
	}
	return t, nil
}

// audit shows the audit log, filtered by the API (audit:read), a page at
// a time from the newest back, within a time range.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := auditView{User: strings.TrimSpace(q.Get("user")), Action: strings.TrimSpace(q.Get("action")),
		Group: strings.TrimSpace(q.Get("group")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Limit: auditLimit}
	params := url.Values{}
	for k, val := range map[string]string{"user": v.User, "action": v.Action, "group": v.Group} {
		if val != "" {
			params.Set(k, val)
		}
	}
	for _, t := range []struct{ field, param, val string }{{"from", "since", v.From}, {"to", "until", v.To}} {
		if t.val == "" {
			continue
		}
		at, err := parseFormTime(t.field, t.val)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, err.Error())
			return
		}
		params.Set(t.param, at.UTC().Format(time.RFC3339))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxAuditLimit {
			c.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("limit: 1 to %d entries, not %q.", maxAuditLimit, l))
			return
		}
		v.Limit = n
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("before: an entry's sequence number, not %q.", b))
			return
		}
		v.Before = n
		params.Set("before", b)
	}
	// One more than shown says whether an older page exists.
	params.Set("limit", strconv.Itoa(v.Limit+1))
	if err := c.call(r, s.bearer, http.MethodGet, "/audit?"+params.Encode(), nil, &v.Entries); err != nil {
		c.failAPI(w, r, s, err)
		return
	}
	if len(v.Entries) > v.Limit {
		v.Entries = v.Entries[:v.Limit]
		v.Older = v.Entries[v.Limit-1].Seq
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Nav: "audit", User: s.user, CSRF: s.csrf, Data: v})
}

// PageLink is the address of another page of the audit log: the same
// filters, from cursor before (0: the newest).
func (v auditView) PageLink(before uint64) string {
	q := url.Values{}
	for k, val := range map[string]string{"user": v.User, "action": v.Action, "group": v.Group, "from": v.From, "to": v.To} {
		if val != "" {
			q.Set(k, val)
		}
	}
	if v.Limit != auditLimit {
		q.Set("limit", strconv.Itoa(v.Limit))
	}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	if len(q) == 0 {
		return Prefix + "audit"
	}
	return Prefix + "audit?" + q.Encode()
}
