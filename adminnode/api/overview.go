package api

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/status"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// caWarnWithin is how long before a domain CA root expires the overview
// warns at the latest: the CA is not renewed by itself, and a rotation
// takes planning.
const caWarnWithin = 90 * 24 * time.Hour

// Process states of a node manager's supervisor that the overview reads
// (nodemanager/supervisor).
const (
	processCrashLoop = "crash-loop"
	processBackoff   = "backoff"
)

// hostContact is what a host's node manager said in its last heartbeat.
// It is soft state, like heartbeats: a restarted admin node knows it again
// within one heartbeat period.
type hostContact struct {
	at           time.Time
	version      string
	certNotAfter time.Time
	// cert is the client certificate of the last heartbeat.
	cert *x509.Certificate
}

// noteHost records a heartbeat of q's node manager, with the client
// certificate it came with.
func (s *Server) noteHost(q *request, version string, now time.Time) {
	c := hostContact{at: now, version: version}
	if q.r.TLS != nil && len(q.r.TLS.PeerCertificates) > 0 {
		cert := q.r.TLS.PeerCertificates[0]
		c.certNotAfter = cert.NotAfter
		c.cert = cert
	}
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	if s.obs.hosts == nil {
		s.obs.hosts = map[string]hostContact{}
	}
	s.obs.hosts[q.node] = c
}

func (s *Server) hostContacts() map[string]hostContact {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return maps.Clone(s.obs.hosts)
}

func overviewRoutes() []*route {
	return []*route{
		{method: "GET", path: "/overview", action: "domain.overview",
			summary: "The domain on one screen: groups and their roll-out, hosts and their node managers, what needs attention (what the caller may read)",
			out:     apitypes.Overview{}, handle: (*Server).overview},
	}
}

// overview gathers groups the caller may read (group:read), their
// instances (instance:read) and the hosts (host:read, domain-wide); each
// part the caller may not read is left out, never refused, so that one
// screen serves every role.
func (s *Server) overview(q *request) (any, error) {
	now := s.now()
	out := apitypes.Overview{Domain: s.domain.Name, Time: now.UTC(),
		Groups: []apitypes.OverviewGroup{}, Hosts: []apitypes.OverviewHost{}, Attention: []apitypes.Attention{}}
	nodes, holder, err := s.coordination(q.ctx)
	if err != nil {
		return nil, err
	}
	out.AdminNodes, out.LeaseHolder = nodes, holder
	out.Database = apitypes.OverviewDatabase{Kind: "bbolt", Reachable: true}
	if c, ok := s.store.(store.Coordinator); ok && c.Shared() {
		// The only store that other admin nodes share is PostgreSQL.
		out.Database.Kind = "postgres"
	}
	if s.backups != nil && q.allowed(rbac.BackupCreate, nil) {
		b := s.backups()
		out.Backups = &b
		if b.LastError != "" {
			out.Attention = append(out.Attention, apitypes.Attention{Kind: apitypes.AttentionBackupFailing,
				Reason: fmt.Sprintf("scheduled backup to %s failed (%d failures, last success %s): %s",
					b.Location, b.Failures, lastSuccess(b.LastSuccess), b.LastError), Since: b.LastFailure})
		}
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	views, err := s.instanceViews(q.ctx, store.InstanceFilter{})
	if err != nil {
		return nil, err
	}
	byGroup := map[string][]apitypes.Instance{}
	for _, v := range views {
		byGroup[v.Group] = append(byGroup[v.Group], v)
	}
	seeInstances := map[string]bool{}
	for _, g := range q.who.authz.FilterGroups(rbac.InstanceRead, groups) {
		seeInstances[g.Name] = true
	}
	for _, g := range q.who.authz.FilterGroups(rbac.GroupRead, groups) {
		cur, err := s.current(q.ctx, g.Name)
		if err != nil {
			return nil, err
		}
		ins := byGroup[g.Name]
		sv := make([]status.InstanceView, len(ins))
		for i, v := range ins {
			sv[i] = status.InstanceView{Name: v.Name, Status: v.Status}
		}
		sum := status.Summarize(cur, sv)
		out.Groups = append(out.Groups, apitypes.OverviewGroup{Name: g.Name, CurrentDeployment: cur.Number,
			Instances: sum.Instances, ByStatus: sum.ByStatus, UpToDate: sum.UpToDate, Rollout: sum.Rollout, Complete: sum.Complete})
		if !seeInstances[g.Name] {
			continue
		}
		og := &out.Groups[len(out.Groups)-1]
		og.Versions, og.Skipped = versionMix(ins), cur.Skipped
		if g.Settings != nil {
			gs := settingsOut(g.Settings)
			og.Settings = &gs
		}
		for _, v := range ins {
			if v.Observed != nil && v.Observed.Settings != nil {
				og.Running = append(og.Running, apitypes.RunningSettings{Instance: v.Name, Settings: *v.Observed.Settings})
			}
		}
		for _, v := range ins {
			out.Attention = append(out.Attention, s.instanceAttention(v, cur, now)...)
		}
		for _, d := range s.drifting(ins, cur, now) {
			out.Attention = append(out.Attention, apitypes.Attention{Kind: apitypes.AttentionDrift, Group: g.Name, Instance: d.Instance,
				Reason: fmt.Sprintf("runs %s, the group's current deployment is #%d", deploymentName(d.Deployment), cur.Number), Since: d.Since})
		}
	}
	if q.allowed(rbac.HostRead, nil) {
		hosts, attention, err := s.overviewHosts(q.ctx, views, now)
		if err != nil {
			return nil, err
		}
		out.Hosts = hosts
		out.Attention = append(out.Attention, attention...)
	} else {
		out.HostsHidden = true
	}
	certs, err := s.certificates(q, now)
	if err != nil {
		return nil, err
	}
	out.Certificates = certs
	for _, c := range certs {
		switch {
		case c.State == apitypes.CertOK:
		case c.Kind == apitypes.CertListener:
			out.Attention = append(out.Attention, apitypes.Attention{Kind: apitypes.AttentionCertExpiry, Group: c.Group, Since: c.NotAfter,
				Reason: fmt.Sprintf("TLS certificate %q (%s) of the current deployment expires at %s", c.Name, c.Subject, c.NotAfter.Format(time.RFC3339))})
		case c.Kind == apitypes.CertAdminServer:
			out.Attention = append(out.Attention, apitypes.Attention{Kind: apitypes.AttentionCertExpiry, Since: c.NotAfter,
				Reason: fmt.Sprintf("the HTTPS certificate of admin node %s expires at %s and has not been renewed", c.Name, c.NotAfter.Format(time.RFC3339))})
		}
	}
	sortAttention(out.Attention)
	return out, nil
}

// instanceAttention says what about one instance needs an operator.
func (s *Server) instanceAttention(v apitypes.Instance, cur status.Current, now time.Time) []apitypes.Attention {
	at := func(kind, reason string, since time.Time) apitypes.Attention {
		return apitypes.Attention{Kind: kind, Group: v.Group, Instance: v.Name, Host: v.Host, Reason: reason, Since: since}
	}
	var out []apitypes.Attention
	obs := v.Observed
	switch v.Status {
	case status.Pending:
		out = append(out, at(apitypes.AttentionPending, fmt.Sprintf("no heartbeat yet: is the node manager of host %s running?", v.Host), time.Time{}))
	case status.Offline, status.LostConnection:
		kind := apitypes.AttentionLostConnection
		if v.Status == status.Offline {
			kind = apitypes.AttentionOffline
		}
		out = append(out, at(kind, fmt.Sprintf("no heartbeat for %s", now.Sub(obs.LastHeartbeat).Round(time.Second)), obs.LastHeartbeat))
	case status.OnlyHeartbeat:
		if obs.Process == processCrashLoop {
			out = append(out, at(apitypes.AttentionCrashLoop, withError(fmt.Sprintf("the gateway keeps exiting (%s)", plural(obs.Restarts, "restart")), obs.LastError), time.Time{}))
			break
		}
		out = append(out, at(apitypes.AttentionOnlyHeartbeat, onlyHeartbeatReason(obs, cur), time.Time{}))
	}
	if v.Unreachable {
		out = append(out, at(apitypes.AttentionUnreachable, "declared dead by the gossip of "+strings.Join(v.UnreachableBy, ", "), time.Time{}))
	}
	return out
}

// onlyHeartbeatReason says why an instance that heartbeats is not
// Healthy: the gateway's own error first, as it is the most precise.
func onlyHeartbeatReason(obs *apitypes.InstanceState, cur status.Current) string {
	switch {
	case obs.LastError != "":
		return obs.LastError
	case obs.Process == processBackoff:
		return fmt.Sprintf("the gateway exited and is being restarted (%s)", plural(obs.Restarts, "restart"))
	case !obs.Ready:
		return fmt.Sprintf("the gateway is not ready (process %s)", cmp.Or(obs.Process, "unknown"))
	case obs.AppliedDeployment != cur.Number:
		return fmt.Sprintf("runs %s, the group's current deployment is #%d", deploymentName(obs.AppliedDeployment), cur.Number)
	default:
		return fmt.Sprintf("runs deployment #%d with checksum %s, not the current one's", obs.AppliedDeployment, obs.AppliedChecksum)
	}
}

func withError(s, lastError string) string {
	if lastError == "" {
		return s
	}
	return s + ": " + lastError
}

func deploymentName(n uint64) string {
	if n == 0 {
		return "no deployment"
	}
	return fmt.Sprintf("deployment #%d", n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// overviewHosts lists the hosts with their node managers' last contact,
// and what about them needs attention: node certificates and the domain
// CA near expiry, traffic batches dropped or lost.
func (s *Server) overviewHosts(ctx context.Context, views []apitypes.Instance, now time.Time) ([]apitypes.OverviewHost, []apitypes.Attention, error) {
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	tr, err := s.hostTraffic(ctx)
	if err != nil {
		return nil, nil, err
	}
	count := map[string]int{}
	onHost := map[string][]apitypes.Instance{}
	// A host not heard from since the admin node started was last heard
	// from when its instances' stored states were.
	stored := map[string]time.Time{}
	for _, v := range views {
		count[v.Host]++
		onHost[v.Host] = append(onHost[v.Host], v)
		if v.Observed != nil && v.Observed.LastHeartbeat.After(stored[v.Host]) {
			stored[v.Host] = v.Observed.LastHeartbeat
		}
	}
	contacts := s.hostContacts()
	out := make([]apitypes.OverviewHost, 0, len(hosts))
	var attention []apitypes.Attention
	for _, h := range hosts {
		c, ok := contacts[h.Name]
		if !ok {
			c.at = stored[h.Name]
		}
		out = append(out, apitypes.OverviewHost{Name: h.Name, Address: h.Address, Instances: count[h.Name],
			LastContact: c.at.UTC(), Version: c.version, CertNotAfter: c.certNotAfter.UTC(), Traffic: tr[h.Name]})
		if h.Capabilities != nil {
			out[len(out)-1].GatewayBinary = h.Capabilities.GatewayVersion
		}
		if ins := onHost[h.Name]; len(ins) > 0 {
			out[len(out)-1].Gateways = versionMix(ins)
		}
		// Node managers renew in the last third of their certificate's
		// life: one in the warning state has failed to for a while.
		if c.cert != nil && expiry(apitypes.CertNode, h.Name, c.cert, s.certWarn, now).State != apitypes.CertOK {
			attention = append(attention, apitypes.Attention{Kind: apitypes.AttentionCertExpiry, Host: h.Name, Since: c.certNotAfter.UTC(),
				Reason: fmt.Sprintf("the node certificate expires at %s and has not been renewed", c.certNotAfter.UTC().Format(time.RFC3339))})
		}
		if t := tr[h.Name]; t != nil && (t.Dropped > 0 || t.Lost > 0) {
			attention = append(attention, apitypes.Attention{Kind: apitypes.AttentionSpoolDrops, Host: h.Name,
				Reason: fmt.Sprintf("traffic batches missing: %d dropped from the node manager's spool, %d lost on the way", t.Dropped, t.Lost)})
		}
	}
	if a := s.authority.Load(); a != nil {
		for _, r := range a.Roots() {
			if cert := r.Cert(); cert.NotAfter.Sub(now) < caWarnWithin || expiry(apitypes.CertCA, "", cert, s.certWarn, now).State != apitypes.CertOK {
				attention = append(attention, apitypes.Attention{Kind: apitypes.AttentionCertExpiry, Since: cert.NotAfter.UTC(),
					Reason: fmt.Sprintf("the domain CA root %s expires at %s: rotate it (gatehouse ca rotate)", r.Fingerprint(), cert.NotAfter.UTC().Format(time.RFC3339))})
			}
		}
	}
	return out, attention, nil
}

// sortAttention orders by kind, most severe first, then by group,
// instance and host.
func sortAttention(as []apitypes.Attention) {
	rank := map[string]int{}
	for i, k := range apitypes.AttentionKinds() {
		rank[k] = i
	}
	slices.SortStableFunc(as, func(a, b apitypes.Attention) int {
		return cmp.Or(cmp.Compare(rank[a.Kind], rank[b.Kind]), strings.Compare(a.Group, b.Group),
			strings.Compare(a.Instance, b.Instance), strings.Compare(a.Host, b.Host))
	})
}

func lastSuccess(t time.Time) string {
	if t.IsZero() {
		return "never since the admin node started"
	}
	return t.UTC().Format(time.RFC3339)
}
