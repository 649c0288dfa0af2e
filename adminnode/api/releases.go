package api

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// Gateway releases and the groups' rolling upgrades (docs/upgrades.md).

const (
	releaseMediaType = "application/octet-stream"
	// MaxReleaseBytes bounds an uploaded release.
	MaxReleaseBytes = 512 << 20
)

func releaseRoutes() []*route {
	return []*route{
		{method: "POST", path: "/releases", action: "release.upload", summary: "Store a gateway binary as a release, with its SHA-256, signed by the domain key (body: the binary)",
			status: http.StatusCreated, perm: rbac.HostWrite, scope: scopeDomain, query: []string{"version"}, maxBody: MaxReleaseBytes,
			out: apitypes.Release{}, handle: (*Server).uploadRelease},
		{method: "GET", path: "/releases", action: "release.list", summary: "The gateway releases, and the groups that use each",
			perm: rbac.HostRead, scope: scopeDomain, out: []apitypes.Release{}, handle: (*Server).listReleases},
		{method: "GET", path: "/releases/{version}", action: "release.get", summary: "A gateway release",
			perm: rbac.HostRead, scope: scopeDomain, out: apitypes.Release{}, handle: (*Server).getRelease},
		{method: "DELETE", path: "/releases/{version}", action: "release.delete", summary: "Delete a release no group runs or rolls out from or to",
			perm: rbac.HostWrite, scope: scopeDomain, handle: (*Server).deleteRelease},
		{method: "GET", path: "/groups/{group}/gateway", action: "group.gateway.get", summary: "The group's gateway release, its rollout and their history",
			perm: rbac.GroupRead, scope: scopeGroup, out: apitypes.GroupGateway{}, handle: (*Server).getGroupGateway},
		{method: "PUT", path: "/groups/{group}/gateway", action: "group.gateway.update", summary: "Move the group to another gateway release by a rolling upgrade",
			perm: rbac.GroupWrite, scope: scopeGroup, in: apitypes.GroupGatewayUpdate{}, out: apitypes.GroupGateway{}, handle: (*Server).putGroupGateway},
	}
}

func (s *Server) uploadRelease(q *request) (any, error) {
	version := q.r.URL.Query().Get("version")
	q.auditTarget = "release/" + version
	if err := store.ValidReleaseVersion(version); err != nil {
		return nil, badRequest("version", "%v", err)
	}
	data, err := readBody(q)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, badRequest("", "request body is empty: the release's binary is required")
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	r := store.Release{Version: version, SHA256: hexSum, Size: int64(len(data)),
		Signature: ed25519.Sign(ed25519.PrivateKey(s.key), apitypes.ReleaseMessage(version, hexSum)), UploadedBy: q.who.user}
	r, err = s.store.PutRelease(q.ctx, r, data)
	if err != nil {
		return nil, err
	}
	q.auditDetail = fmt.Sprintf("%d bytes, sha256 %s", r.Size, r.SHA256)
	return releaseOut(r, nil), nil
}

func releaseOut(r store.Release, groups []store.Group) apitypes.Release {
	out := apitypes.Release{Version: r.Version, SHA256: r.SHA256, Size: r.Size, Signature: r.Signature,
		UploadedAt: r.UploadedAt, UploadedBy: r.UploadedBy}
	for _, g := range groups {
		if store.PinnedBy([]store.Group{g}, r.Version) != "" {
			out.Groups = append(out.Groups, g.Name)
		}
	}
	return out
}

func (s *Server) listReleases(q *request) (any, error) {
	rs, err := s.store.ListReleases(q.ctx)
	if err != nil {
		return nil, err
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Release, len(rs))
	for i, r := range rs {
		out[i] = releaseOut(r, groups)
	}
	return out, nil
}

func (s *Server) getRelease(q *request) (any, error) {
	r, err := s.store.GetRelease(q.ctx, q.vars["version"])
	if err != nil {
		return nil, err
	}
	groups, err := s.store.ListGroups(q.ctx)
	if err != nil {
		return nil, err
	}
	return releaseOut(r, groups), nil
}

func (s *Server) deleteRelease(q *request) (any, error) {
	q.auditTarget = "release/" + q.vars["version"]
	return nil, s.store.DeleteRelease(q.ctx, q.vars["version"])
}

// agentRelease serves a release's binary to a node manager. Releases are
// no secret: any joined host may fetch any of them; what it runs is
// checked against the signature its desired instances carry.
func (s *Server) agentRelease(q *request) (any, error) {
	version := q.vars["version"]
	r, err := s.store.GetRelease(q.ctx, version)
	if err != nil {
		return nil, err
	}
	data, err := s.store.GetReleaseBinary(q.ctx, version)
	if err != nil {
		return nil, err
	}
	return served{http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", releaseMediaType)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set(apitypes.HeaderReleaseSHA256, r.SHA256)
		w.Write(data)
	})}, nil
}

// releaseCache holds what one answer of desired instances read: groups
// and releases, each once.
type releaseCache struct {
	groups   map[string]store.Group
	releases map[string]*apitypes.AgentRelease
}

func newReleaseCache() *releaseCache {
	return &releaseCache{groups: map[string]store.Group{}, releases: map[string]*apitypes.AgentRelease{}}
}

// instanceRelease is the release an instance is to run now.
func (s *Server) instanceRelease(ctx context.Context, in store.Instance, c *releaseCache) (*apitypes.AgentRelease, error) {
	g, ok := c.groups[in.Group]
	if !ok {
		var err error
		if g, err = s.store.GetGroup(ctx, in.Group); err != nil {
			return nil, err
		}
		c.groups[in.Group] = g
	}
	v := desiredRelease(g, in.Name)
	if v == "" {
		return nil, nil
	}
	if r, ok := c.releases[v]; ok {
		return r, nil
	}
	r, err := s.store.GetRelease(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("release of instance %s: %w", in.Name, err)
	}
	out := &apitypes.AgentRelease{Version: r.Version, SHA256: r.SHA256, Signature: r.Signature}
	c.releases[v] = out
	return out, nil
}

// desiredRelease is the release instance is to run: during a rollout, or
// paused, the new one once its batch came, the old one before; rolling
// back, the old one everywhere.
func desiredRelease(g store.Group, instance string) string {
	r := g.Gateway.Rollout
	if r == nil || (r.State != store.RolloutRunning && r.State != store.RolloutPaused) {
		return g.Gateway.Version
	}
	if slices.Contains(r.Done, instance) || slices.Contains(r.Batch, instance) {
		return r.To
	}
	return r.From
}

func (s *Server) getGroupGateway(q *request) (any, error) {
	return s.groupGatewayOut(q.ctx, *q.group)
}

func (s *Server) groupGatewayOut(ctx context.Context, g store.Group) (apitypes.GroupGateway, error) {
	out := apitypes.GroupGateway{Group: g.Name, Version: g.Gateway.Version, MaxUnavailable: max(g.Gateway.MaxUnavailable, 1)}
	if r := g.Gateway.Rollout; r != nil {
		ro := rolloutOut(*r)
		out.Rollout = &ro
	}
	for _, h := range g.Gateway.History {
		out.History = append(out.History, rolloutOut(h))
	}
	ins, err := s.store.ListInstances(ctx, store.InstanceFilter{Group: g.Name})
	if err != nil {
		return out, err
	}
	states := s.states()
	out.Instances = map[string]string{}
	for _, in := range ins {
		out.Instances[in.Name] = states[in.Name].Release
	}
	return out, nil
}

func rolloutOut(r store.ReleaseRollout) apitypes.ReleaseRollout {
	out := apitypes.ReleaseRollout{ID: r.ID, From: r.From, To: r.To, State: r.State, MaxUnavailable: r.MaxUnavailable,
		By: r.By, StartedAt: r.StartedAt, EndedAt: r.EndedAt, Done: r.Done, Batch: r.Batch, Error: r.Error,
		OnFailure: cmp.Or(r.OnFailure, store.OnFailureRollback)}
	for _, e := range r.Events {
		out.Events = append(out.Events, apitypes.RolloutEvent{At: e.At, Instance: e.Instance, What: e.What})
	}
	return out
}

// putGroupGateway starts the rolling upgrade of a group to a release. A
// group whose rollout is under way refuses another (409); the same
// release again changes nothing but MaxUnavailable. Of a paused rollout,
// its new release resumes it and its old one rolls it back; another is
// refused (409).
func (s *Server) putGroupGateway(q *request) (any, error) {
	var in apitypes.GroupGatewayUpdate
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	switch in.OnFailure {
	case "", store.OnFailureRollback, store.OnFailurePause:
	default:
		return nil, badRequest("on_failure", "on_failure must be %q or %q, not %q", store.OnFailureRollback, store.OnFailurePause, in.OnFailure)
	}
	q.auditTarget = "group/" + q.group.Name
	if in.Version != "" {
		if err := store.ValidReleaseVersion(in.Version); err != nil {
			return nil, badRequest("version", "%v", err)
		}
	}
	if in.MaxUnavailable < 0 {
		return nil, badRequest("max_unavailable", "max_unavailable must be at least 1, not %d", in.MaxUnavailable)
	}
	now := s.now().UTC()
	g, err := s.store.UpdateGroupGateway(q.ctx, q.group.Name, func(gw *store.GroupGateway) error {
		if in.MaxUnavailable > 0 {
			gw.MaxUnavailable = in.MaxUnavailable
		}
		if r := gw.Rollout; r != nil && (r.State == store.RolloutRunning || r.State == store.RolloutRollingBack) {
			return newError(http.StatusConflict, apitypes.CodeConflict, "group %s is %s from release %q to %q: wait until it ends", q.group.Name, r.State, r.From, r.To)
		}
		if r := gw.Rollout; r != nil && r.State == store.RolloutPaused {
			switch in.Version {
			case r.To:
				r.State, r.Error = store.RolloutRunning, ""
				if in.MaxUnavailable > 0 {
					r.MaxUnavailable = in.MaxUnavailable
				}
				if in.OnFailure != "" {
					r.OnFailure = in.OnFailure
				}
				r.Events = append(r.Events, store.RolloutEvent{At: now, What: fmt.Sprintf("resumed by %s", q.who.user)})
				q.auditDetail = fmt.Sprintf("resume rollout %d from %q to %q", r.ID, r.From, r.To)
			case r.From:
				r.State, r.Batch, r.BatchAt = store.RolloutRollingBack, nil, now
				gw.Version = r.From
				r.Events = append(r.Events, store.RolloutEvent{At: now, What: fmt.Sprintf("rolling back to %q, asked by %s", r.From, q.who.user)})
				q.auditDetail = fmt.Sprintf("roll back rollout %d from %q to %q", r.ID, r.To, r.From)
			default:
				return newError(http.StatusConflict, apitypes.CodeConflict,
					"rollout %d of group %s is paused between release %q and %q: resume it with version %q, or roll it back with %q",
					r.ID, q.group.Name, r.From, r.To, r.To, r.From)
			}
			return nil
		}
		if in.Version == gw.Version {
			return nil
		}
		id := uint64(1)
		if r := gw.Rollout; r != nil {
			id = r.ID + 1
			gw.History = append([]store.ReleaseRollout{*r}, gw.History...)
			if len(gw.History) > store.MaxRolloutHistory {
				gw.History = gw.History[:store.MaxRolloutHistory]
			}
		}
		gw.Rollout = &store.ReleaseRollout{ID: id, From: gw.Version, To: in.Version, State: store.RolloutRunning,
			MaxUnavailable: max(gw.MaxUnavailable, 1), By: q.who.user, StartedAt: now, OnFailure: in.OnFailure,
			Events: []store.RolloutEvent{{At: now, What: fmt.Sprintf("rollout %d from %q to %q started by %s", id, gw.Version, in.Version, q.who.user)}}}
		gw.Version = in.Version
		q.auditDetail = fmt.Sprintf("rollout %d from %q to %q, %d at a time", id, gw.Rollout.From, in.Version, gw.Rollout.MaxUnavailable)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.changes.bump()
	s.kickRollouts()
	return s.groupGatewayOut(q.ctx, g)
}
