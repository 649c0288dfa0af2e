package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Names of groups, hosts, instances, users and roles appear in URLs, file
// names and metrics labels, so they are kept to a safe alphabet.
var (
	nameRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	labelKeyRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9._-]{0,63}$`)
)

func checkName(field, name string) error {
	if !nameRE.MatchString(name) {
		return badRequest(field, "%s %q: must be 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", field, name)
	}
	return nil
}

func checkLabels(field string, labels map[string]string) error {
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			return badRequest(field+"."+k, "label key %q: must be 1 to 63 letters, digits, '.', '_', '/' or '-'", k)
		}
		if !labelValueRE.MatchString(v) {
			return badRequest(field+"."+k, "label value %q: must be at most 63 letters, digits, '.', '_' or '-'", v)
		}
	}
	return nil
}

func groupOut(g store.Group) apitypes.Group {
	return apitypes.Group{Name: g.Name, Type: g.Type, Labels: g.Labels, Description: g.Description,
		Environment: g.Environment, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, Version: g.Version}
}

func checkGroup(g apitypes.Group) error {
	if err := checkName("name", g.Name); err != nil {
		return err
	}
	if g.Type != "" && g.Type != store.GroupTypeGateway {
		return badRequest("type", "type %q: the only group type is %q", g.Type, store.GroupTypeGateway)
	}
	if g.Environment != "" {
		if err := checkName("environment", g.Environment); err != nil {
			return err
		}
	}
	return checkLabels("labels", g.Labels)
}

func (s *Server) listGroups(q *request) (any, error) {
	var sel map[string]string
	if v := q.r.URL.Query().Get("selector"); v != "" {
		var err error
		if sel, err = rbac.ParseSelector(v); err != nil {
			return nil, badRequest("selector", "%v", err)
		}
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	out := []apitypes.Group{}
	for _, g := range q.who.authz.FilterGroups(rbac.GroupRead, groups) {
		if sel == nil || rbac.ScopeMatches(store.Scope{Selector: sel}, g) {
			out = append(out, groupOut(g))
		}
	}
	return out, nil
}

func (s *Server) createGroup(q *request) (any, error) {
	var in apitypes.Group
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget, q.auditGroup = "group/"+in.Name, in.Name
	key, err := newGossipKey()
	if err != nil {
		return nil, err
	}
	g := store.Group{Name: in.Name, Type: in.Type, Labels: in.Labels, Description: in.Description, Environment: in.Environment, GossipKeys: s.sealGossipKeys(in.Name, [][]byte{key})}
	// The permission is checked on the group as it will be, so that a
	// binding on env=dev cannot create a group labelled env=prod.
	if err := q.need(rbac.GroupWrite, &g); err != nil {
		return nil, err
	}
	if err := checkGroup(in); err != nil {
		return nil, err
	}
	if err := s.checkEnvironmentExists(q.ctx, in.Environment); err != nil {
		return nil, err
	}
	created, err := s.store.CreateGroup(q.ctx, g)
	if err != nil {
		return nil, err
	}
	return groupOut(created), nil
}

func (s *Server) getGroup(q *request) (any, error) {
	setETag(q, q.group.Version)
	return groupOut(*q.group), nil
}

func (s *Server) updateGroup(q *request) (any, error) {
	var in apitypes.Group
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	cur := *q.group
	q.auditTarget = "group/" + cur.Name
	if in.Name != "" && in.Name != cur.Name {
		return nil, badRequest("name", "name %q differs from the group in the path %q: groups cannot be renamed", in.Name, cur.Name)
	}
	in.Name = cur.Name
	if err := checkGroup(in); err != nil {
		return nil, err
	}
	// An environment deleted since it was set stays until it is changed.
	if in.Environment != cur.Environment {
		if err := s.checkEnvironmentExists(q.ctx, in.Environment); err != nil {
			return nil, err
		}
	}
	next := store.Group{Name: cur.Name, Type: in.Type, Labels: in.Labels, Description: in.Description, Environment: in.Environment}
	if next.Type == "" {
		next.Type = cur.Type
	}
	// Relabelling must not move a group out of or into reach.
	if err := q.need(rbac.GroupWrite, &next); err != nil {
		return nil, err
	}
	version, err := ifMatch(q, cur.Version)
	if err != nil {
		return nil, err
	}
	updated, err := s.store.UpdateGroup(q.ctx, next, version)
	if err != nil {
		return nil, err
	}
	setETag(q, updated.Version)
	return groupOut(updated), nil
}

func (s *Server) deleteGroup(q *request) (any, error) {
	q.auditTarget = "group/" + q.group.Name
	return nil, s.store.DeleteGroup(q.ctx, q.group.Name)
}

// ifMatch returns the version If-Match names, or current without one.
func ifMatch(q *request, current uint64) (uint64, error) {
	h := q.r.Header.Get("If-Match")
	if h == "" {
		return current, nil
	}
	v, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil {
		return 0, badRequest("If-Match", "If-Match must be the version from the ETag, such as \"3\", not %q", h)
	}
	return v, nil
}

func setETag(q *request, version uint64) {
	q.w.Header().Set("ETag", fmt.Sprintf(`"%d"`, version))
}

func (s *Server) groupSummary(q *request) (any, error) {
	views, err := s.instanceViews(q.ctx, store.InstanceFilter{Group: q.group.Name})
	if err != nil {
		return nil, err
	}
	cur, err := s.current(q.ctx, q.group.Name)
	if err != nil {
		return nil, err
	}
	sv := make([]status.InstanceView, len(views))
	for i, v := range views {
		sv[i] = status.InstanceView{Name: v.Name, Status: v.Status}
		if v.Observed != nil {
			sv[i].AppliedDeployment = v.Observed.AppliedDeployment
		}
	}
	sum := status.Summarize(cur, sv)
	out := apitypes.GroupSummary{
		Group: q.group.Name, CurrentDeployment: cur.Number, CurrentChecksum: cur.Checksum,
		Instances: sum.Instances, ByStatus: sum.ByStatus, UpToDate: sum.UpToDate,
		Rollout: sum.Rollout, Complete: sum.Complete, Deployments: map[string][]string{},
	}
	for n, names := range sum.Deployments {
		out.Deployments[strconv.FormatUint(n, 10)] = names
	}
	out.Drift = s.drifting(views, cur, s.now())
	out.Unreachable = []string{}
	for _, v := range views {
		if v.Unreachable {
			out.Unreachable = append(out.Unreachable, v.Name)
		}
	}
	out.Versions, out.Skipped = versionMix(views), cur.Skipped
	return out, nil
}

// instanceViews lists the instances f selects with their derived status.
func (s *Server) instanceViews(ctx context.Context, f store.InstanceFilter) ([]apitypes.Instance, error) {
	ins, err := s.instances(ctx, f)
	if err != nil {
		return nil, err
	}
	byName := s.states()
	currents := map[string]status.Current{}
	now := s.now()
	unreachable := s.unreachable(byName, now)
	out := make([]apitypes.Instance, 0, len(ins))
	for _, in := range ins {
		cur, ok := currents[in.Group]
		if !ok {
			if cur, err = s.current(ctx, in.Group); err != nil {
				return nil, err
			}
			currents[in.Group] = cur
		}
		v := s.instanceOut(in, byName[in.Name], cur, now)
		v.UnreachableBy = unreachable[in.Name]
		v.Unreachable = len(v.UnreachableBy) > 0
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) instanceOut(in store.Instance, st store.InstanceState, cur status.Current, now time.Time) apitypes.Instance {
	out := apitypes.Instance{
		Name: in.Name, Group: in.Group, Host: in.Host,
		Listen: in.Listen, TLSListen: in.TLSListen, StatusListen: in.StatusListen, GossipListen: in.GossipListen,
		RestartGeneration: in.RestartGeneration, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
	obs := status.Observation{LastHeartbeat: st.LastHeartbeat, AppliedDeployment: st.AppliedDeployment,
		AppliedChecksum: st.AppliedChecksum, Ready: st.Ready, LastError: st.LastError}
	out.Status = s.thresholds.Derive(obs, cur, now)
	if !st.LastHeartbeat.IsZero() {
		out.Observed = &apitypes.InstanceState{
			LastHeartbeat: st.LastHeartbeat, AppliedDeployment: st.AppliedDeployment,
			AppliedChecksum: st.AppliedChecksum, Ready: st.Ready, Process: st.Process,
			PID: st.PID, Restarts: st.Restarts, LastError: st.LastError,
			GatewayVersion: st.GatewayVersion, FeatureLevel: st.FeatureLevel,
			Release: st.Release, RestartGeneration: st.RestartGeneration, Pending: st.Pending,
		}
		if st.Settings != nil {
			a := apitypes.AgentGatewaySettings(*st.Settings)
			out.Observed.Settings = &a
		}
		for _, p := range st.Peers {
			out.Observed.Peers = append(out.Observed.Peers, apitypes.GossipPeer{Name: p.Name, State: p.State,
				Deployment: p.Deployment, Checksum: p.Checksum, Since: p.Since})
		}
	}
	return out
}

func (s *Server) groupInstances(q *request) (any, error) {
	return s.instanceViews(q.ctx, store.InstanceFilter{Group: q.group.Name})
}

func hostOut(h store.Host) apitypes.Host {
	return apitypes.Host{Name: h.Name, Labels: h.Labels, CreatedAt: h.CreatedAt, Capabilities: capabilitiesOut(h.Capabilities)}
}

func (s *Server) listHosts(q *request) (any, error) {
	hosts, err := s.store.ListHosts(q.ctx)
	if err != nil {
		return nil, err
	}
	tr, err := s.hostTraffic(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Host, len(hosts))
	for i, h := range hosts {
		out[i] = hostOut(h)
		out[i].Traffic = tr[h.Name]
	}
	return out, nil
}

func (s *Server) createHost(q *request) (any, error) {
	var in apitypes.Host
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "host/" + in.Name
	if err := checkName("name", in.Name); err != nil {
		return nil, err
	}
	if err := checkLabels("labels", in.Labels); err != nil {
		return nil, err
	}
	h, err := s.store.CreateHost(q.ctx, store.Host{Name: in.Name, Labels: maps.Clone(in.Labels)})
	if err != nil {
		return nil, err
	}
	return hostOut(h), nil
}

func (s *Server) getHost(q *request) (any, error) {
	h, err := s.store.GetHost(q.ctx, q.vars["host"])
	if err != nil {
		return nil, err
	}
	tr, err := s.hostTraffic(q.ctx)
	if err != nil {
		return nil, err
	}
	out := hostOut(h)
	out.Traffic = tr[h.Name]
	return out, nil
}

func (s *Server) deleteHost(q *request) (any, error) {
	q.auditTarget = "host/" + q.vars["host"]
	return nil, s.store.DeleteHost(q.ctx, q.vars["host"])
}

func (s *Server) listInstances(q *request) (any, error) {
	qv := q.r.URL.Query()
	want := qv.Get("status")
	if want != "" && !slices.Contains(status.Statuses(), want) {
		return nil, badRequest("status", "status %q: must be one of %s", want, strings.Join(status.Statuses(), ", "))
	}
	// peers=false leaves each gossip view out: a group of n instances
	// has n×(n-1) peers, most of the answer of a large domain, which a
	// caller listing where instances run (the console's topology) need
	// not encode nor decode.
	peers := true
	switch p := qv.Get("peers"); p {
	case "", "true":
	case "false":
		peers = false
	default:
		return nil, badRequest("peers", "peers %q: must be true or false", p)
	}
	views, err := s.instanceViews(q.ctx, store.InstanceFilter{Group: qv.Get("group"), Host: qv.Get("host")})
	if err != nil {
		return nil, err
	}
	groups, err := s.readableGroups(q, rbac.InstanceRead)
	if err != nil {
		return nil, err
	}
	out := []apitypes.Instance{}
	for _, v := range views {
		if groups[v.Group] && (want == "" || v.Status == want) {
			if !peers && v.Observed != nil {
				o := *v.Observed
				o.Peers = nil
				v.Observed = &o
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// readableGroups returns the names of the groups on which the caller holds
// perm.
func (s *Server) readableGroups(q *request, perm string) (map[string]bool, error) {
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, g := range q.who.authz.FilterGroups(perm, groups) {
		out[g.Name] = true
	}
	return out, nil
}

// instanceAccess loads an instance and checks perm on its group, refusing
// without saying whether an instance the caller may not see exists.
func (s *Server) instanceAccess(q *request, perm string) (store.Instance, error) {
	name := q.vars["instance"]
	q.auditTarget = "instance/" + name
	in, err := s.store.GetInstance(q.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if !q.allowed(perm, nil) {
			return store.Instance{}, forbidden(perm)
		}
		return store.Instance{}, notFound("instance %q not found", name)
	}
	if err != nil {
		return store.Instance{}, err
	}
	q.auditGroup = in.Group
	if err := s.needOnGroup(q, perm, in.Group); err != nil {
		return store.Instance{}, err
	}
	return in, nil
}

// needOnGroup checks perm on the named group; a missing group is checked
// as a group without labels.
func (s *Server) needOnGroup(q *request, perm, name string) error {
	g, err := s.store.GetGroup(q.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		g = store.Group{Name: name}
	} else if err != nil {
		return err
	}
	return q.need(perm, &g)
}

func (s *Server) getInstance(q *request) (any, error) {
	in, err := s.instanceAccess(q, rbac.InstanceRead)
	if err != nil {
		return nil, err
	}
	return s.instanceView(q.ctx, in)
}

// instanceView is one instance with its status.
func (s *Server) instanceView(ctx context.Context, in store.Instance) (apitypes.Instance, error) {
	states := s.states()
	st := states[in.Name]
	cur, err := s.current(ctx, in.Group)
	if err != nil {
		return apitypes.Instance{}, err
	}
	v := s.instanceOut(in, st, cur, s.now())
	v.UnreachableBy = s.unreachable(states, s.now())[in.Name]
	v.Unreachable = len(v.UnreachableBy) > 0
	return v, nil
}

// Defaults of an instance's addresses: the gateway's own.
const (
	defaultListen       = ":8080"
	defaultStatusListen = ":8085"
)

// checkInstance validates in and fills defaults; addresses must not clash
// with another instance's on the same host.
func (s *Server) checkInstance(q *request, in *apitypes.Instance) error {
	if err := checkName("name", in.Name); err != nil {
		return err
	}
	if in.Group == "" {
		return badRequest("group", "group is required: an instance belongs to exactly one group")
	}
	if in.Host == "" {
		return badRequest("host", "host is required")
	}
	// The store refuses it too, as "not found": named here, the field is
	// what the caller got wrong, not the path it called.
	if _, err := s.store.GetHost(q.ctx, in.Host); errors.Is(err, store.ErrNotFound) {
		return badRequest("host", "host %q: no such host in the domain (gatehouse host create, or its node manager joining, adds it)", in.Host)
	} else if err != nil {
		return err
	}
	if in.Listen == "" {
		in.Listen = defaultListen
	}
	if in.StatusListen == "" {
		in.StatusListen = defaultStatusListen
	}
	others, err := s.store.ListInstances(q.ctx, store.InstanceFilter{Host: in.Host})
	if err != nil {
		return err
	}
	// used maps the ports the host's other instances hold to them.
	used := map[string]string{}
	for _, o := range others {
		if o.Name == in.Name {
			continue
		}
		for _, addr := range []string{o.Listen, o.TLSListen, o.StatusListen, o.GossipListen} {
			if _, port, err := net.SplitHostPort(addr); err == nil {
				used[port] = o.Name
			}
		}
	}
	if in.GossipListen == "" {
		in.GossipListen = freeGossipPort(used, in)
	}
	ports := map[string]string{}
	for _, a := range []struct{ field, addr string }{
		{"listen", in.Listen}, {"tls_listen", in.TLSListen}, {"status_listen", in.StatusListen}, {"gossip_listen", in.GossipListen},
	} {
		if a.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.addr)
		if err != nil || port == "" {
			return badRequest(a.field, "%s %q: must be host:port or :port", a.field, a.addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return badRequest(a.field, "%s %q: port must be 1 to 65535", a.field, a.addr)
		}
		if other, ok := ports[port]; ok {
			return badRequest(a.field, "%s %q: port %s is also %s", a.field, a.addr, port, other)
		}
		if o, ok := used[port]; ok {
			return conflict("%s: port %s is already used by instance %q on host %q", a.field, port, o, in.Host).withField(a.field)
		}
		ports[port] = a.field
	}
	return nil
}

// freeGossipPort picks the first port from DefaultGossipPort up that no
// instance of the host, this one included, uses.
func freeGossipPort(used map[string]string, in *apitypes.Instance) string {
	mine := map[string]bool{}
	for _, addr := range []string{in.Listen, in.TLSListen, in.StatusListen} {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			mine[port] = true
		}
	}
	for p := DefaultGossipPort; ; p++ {
		port := strconv.Itoa(p)
		if _, taken := used[port]; !taken && !mine[port] {
			return ":" + port
		}
	}
}

func instanceIn(in apitypes.Instance) store.Instance {
	return store.Instance{Name: in.Name, Group: in.Group, Host: in.Host,
		Listen: in.Listen, TLSListen: in.TLSListen, StatusListen: in.StatusListen, GossipListen: in.GossipListen}
}

func (s *Server) createInstance(q *request) (any, error) {
	var in apitypes.Instance
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget, q.auditGroup = "instance/"+in.Name, in.Group
	if err := s.needOnGroup(q, rbac.InstanceWrite, in.Group); err != nil {
		return nil, err
	}
	if err := s.checkInstance(q, &in); err != nil {
		return nil, err
	}
	created, err := s.store.CreateInstance(q.ctx, instanceIn(in))
	if err != nil {
		return nil, err
	}
	return s.instanceView(q.ctx, created)
}

func (s *Server) updateInstance(q *request) (any, error) {
	cur, err := s.instanceAccess(q, rbac.InstanceWrite)
	if err != nil {
		return nil, err
	}
	var in apitypes.Instance
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	if in.Name != "" && in.Name != cur.Name {
		return nil, badRequest("name", "name %q differs from the instance in the path %q: instances cannot be renamed", in.Name, cur.Name)
	}
	in.Name = cur.Name
	if in.Group != cur.Group {
		// Moving an instance needs the permission on both groups.
		if err := s.needOnGroup(q, rbac.InstanceWrite, in.Group); err != nil {
			return nil, err
		}
	}
	if err := s.checkInstance(q, &in); err != nil {
		return nil, err
	}
	updated, err := s.store.UpdateInstance(q.ctx, instanceIn(in))
	if err != nil {
		return nil, err
	}
	return s.instanceView(q.ctx, updated)
}

func (s *Server) deleteInstance(q *request) (any, error) {
	in, err := s.instanceAccess(q, rbac.InstanceWrite)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteInstance(q.ctx, in.Name); err != nil {
		return nil, err
	}
	s.forget(in.Name)
	return nil, nil
}

// checkEnvironmentExists refuses a group's environment that the domain
// does not have: placeholders would only fail to resolve at the next
// deploy, far from the typo.
func (s *Server) checkEnvironmentExists(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if _, err := s.store.GetEnvironment(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("environment", "environment %q does not exist (gatehouse env list; create it with gatehouse env set %s NAME=value)", name, name)
		}
		return fmt.Errorf("read environment %q: %w", name, err)
	}
	return nil
}
