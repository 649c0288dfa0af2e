package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/auth"
	"github.com/gatehouse/gatehouse/adminnode/rbac"
	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/deploy"
)

// Join tokens and node certificates.
const (
	defaultJoinTTL = time.Hour
	maxJoinTTL     = 7 * 24 * time.Hour
	// DefaultNodeCertTTL is the lifetime of node certificates; node
	// managers renew them in the last third.
	DefaultNodeCertTTL = 30 * 24 * time.Hour
	// Blocking queries wait 30 s by default and 5 min at most, plus up to
	// 1/16 of jitter so that a thousand node managers do not come back in
	// the same instant.
	defaultWait = 30 * time.Second
	maxWait     = 5 * time.Minute
)

// changes wakes blocking queries: every change that may concern a node
// manager (instances, hosts, deployments) closes the current channel and
// bumps the index.
type changes struct {
	mu    sync.Mutex
	index uint64
	ch    chan struct{}
}

func newChanges(start uint64) *changes {
	return &changes{index: start, ch: make(chan struct{})}
}

func (c *changes) bump() {
	c.mu.Lock()
	c.index++
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

func (c *changes) current() (uint64, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.index, c.ch
}

// wait parses the blocking query's wait, with jitter.
func waitOf(q *request) (time.Duration, error) {
	wait := defaultWait
	if s := q.r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, badRequest("wait", "wait must be a duration such as 30s, not %q", s)
		}
		wait = min(d, maxWait)
	}
	return wait + rand.N(wait/16+1), nil
}

// indexOf returns the caller's index; without one, the query answers at
// once.
func indexOf(q *request) (index uint64, blocking bool, err error) {
	v := q.r.URL.Query()
	if !v.Has("index") {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v.Get("index"), 10, 64)
	if err != nil {
		return 0, false, badRequest("index", "index must be a number, not %q", v.Get("index"))
	}
	return n, true, nil
}

// block answers a blocking query: read returns the resource's index and
// answer; it is called again after every change until the index differs
// from the caller's (a smaller one too: the admin node restarted) or the
// wait is over. Without an index the answer is immediate.
func (s *Server) block(q *request, read func() (uint64, any, error)) (any, error) {
	known, blocking, err := indexOf(q)
	if err != nil {
		return nil, err
	}
	wait, err := waitOf(q)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		_, changed := s.changes.current()
		index, out, err := read()
		if err != nil || !blocking || index != known {
			return out, err
		}
		select {
		case <-changed:
		case <-timer.C:
			return out, nil
		case <-q.ctx.Done():
			return nil, q.ctx.Err()
		}
	}
}

// authenticateNode resolves the client certificate of r to its host.
func (s *Server) authenticateNode(r *http.Request) (string, error) {
	a := s.authority.Load()
	if a == nil {
		return "", newError(http.StatusServiceUnavailable, apitypes.CodeInternal, "the agent API needs the domain CA (is the admin node serving plain HTTP?)")
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", unauthorized("the agent API needs the node manager's client certificate")
	}
	ctx := r.Context()
	cert := r.TLS.PeerCertificates[0]
	now := s.now()
	if host, ok := s.verified.get(cert, now); ok {
		// The chain, domain and role were checked on an earlier request;
		// revocation and the host are checked on every one.
		return host, s.nodeStillValid(ctx, cert.SerialNumber, host)
	}
	var lookupErr error
	host, err := a.VerifyNode(cert, now, func(serial *big.Int) bool {
		c, err := s.store.GetNodeCert(ctx, serial.Text(16))
		if err != nil {
			// An unknown serial was never issued by this admin node (or
			// its store was replaced): refuse it like a revoked one.
			if !errors.Is(err, store.ErrNotFound) {
				lookupErr = err
			}
			return true
		}
		return c.Revoked
	})
	if lookupErr != nil {
		return "", lookupErr
	}
	if err != nil {
		return "", newError(http.StatusForbidden, apitypes.CodeForbidden, "node certificate refused: %v", err)
	}
	if _, err := s.store.GetHost(ctx, host); errors.Is(err, store.ErrNotFound) {
		return "", newError(http.StatusForbidden, apitypes.CodeForbidden, "host %q is no longer in the domain", host)
	} else if err != nil {
		return "", err
	}
	s.verified.put(cert, host)
	return host, nil
}

// nodeStillValid checks what can change after a certificate was verified:
// its revocation and its host's existence.
func (s *Server) nodeStillValid(ctx context.Context, serial *big.Int, host string) error {
	// The index is read before the store, so that a change landing in
	// between leaves the answer at a stale index, checked again next time.
	index, _ := s.changes.current()
	key := serial.Text(16) + " " + host
	if s.stillValid.holds(index, key) {
		return nil
	}
	c, err := s.store.GetNodeCert(ctx, serial.Text(16))
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && c.Revoked:
		return newError(http.StatusForbidden, apitypes.CodeForbidden, "node certificate refused: revoked")
	case err != nil:
		return err
	}
	if _, err := s.store.GetHost(ctx, host); errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusForbidden, apitypes.CodeForbidden, "host %q is no longer in the domain", host)
	} else if err != nil {
		return err
	}
	s.stillValid.put(index, key)
	return nil
}

// stillValid remembers the certificates nodeStillValid passed at one
// change index. A certificate is revoked, and a host leaves the domain,
// only by an operator's change (deleting the host revokes its
// certificates), which moves the index: on this admin node at once, on
// the others when they follow it (Follow). Until the index moves, the
// answer stands: every heartbeat and blocking query of a thousand node
// managers made two store reads, round trips to the database on
// PostgreSQL.
type stillValid struct {
	mu    sync.Mutex
	index uint64
	// ok holds "serial host" of the certificates passed at index.
	ok map[string]bool
}

func (v *stillValid) holds(index uint64, key string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.index == index && v.ok[key]
}

// put records key passed at index; a newer index starts again empty, an
// older one (a request that read the index before a change) is dropped.
func (v *stillValid) put(index uint64, key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case index < v.index:
		return
	case index > v.index || v.ok == nil:
		v.index, v.ok = index, map[string]bool{}
	}
	v.ok[key] = true
}

// verifiedCerts remembers node certificates that passed VerifyNode, by
// their bytes: verifying the chain (an ECDSA check) on every heartbeat and
// blocking query of a thousand nodes was a quarter of the admin node's
// CPU. An entry lasts until the certificate expires.
type verifiedCerts struct {
	mu sync.Mutex
	m  map[string]verifiedCert
}

type verifiedCert struct {
	host     string
	notAfter time.Time
}

// maxVerified bounds the cache: beyond it, it starts again empty.
const maxVerified = 100_000

func (v *verifiedCerts) get(cert *x509.Certificate, now time.Time) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[string(cert.Raw)]
	if !ok || !now.Before(e.notAfter) {
		return "", false
	}
	return e.host, true
}

// reset forgets every certificate: a retired root's must be checked
// again, and refused.
func (v *verifiedCerts) reset() {
	v.mu.Lock()
	v.m = nil
	v.mu.Unlock()
}

func (v *verifiedCerts) put(cert *x509.Certificate, host string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = map[string]verifiedCert{}
	}
	v.m[string(cert.Raw)] = verifiedCert{host: host, notAfter: cert.NotAfter}
}

func joinTokenOut(t store.JoinToken) apitypes.JoinToken {
	out := apitypes.JoinToken{ID: t.ID, Host: t.Host, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	if !t.UsedAt.IsZero() {
		at := t.UsedAt
		out.UsedAt = &at
	}
	return out
}

func (s *Server) createJoinToken(q *request) (any, error) {
	var in apitypes.JoinTokenCreate
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "host/" + in.Host
	if err := checkName("host", in.Host); err != nil {
		return nil, err
	}
	ttl := defaultJoinTTL
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 || d > maxJoinTTL {
			return nil, badRequest("ttl", "ttl must be a duration from 1s to %s, not %q", maxJoinTTL, in.TTL)
		}
		ttl = d
	}
	if _, err := s.store.CreateHost(q.ctx, store.Host{Name: in.Host}); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	t, err := auth.NewToken()
	if err != nil {
		return nil, err
	}
	jt, err := s.store.CreateJoinToken(q.ctx, store.JoinToken{ID: t.ID, Host: in.Host, SecretHash: auth.HashSecret(t.Secret),
		CreatedBy: q.who.user, ExpiresAt: s.now().Add(ttl)})
	if err != nil {
		return nil, err
	}
	q.auditDetail = "join token " + jt.ID
	return apitypes.JoinTokenCreated{JoinToken: joinTokenOut(jt), Token: t.Bearer, CAFingerprint: s.caFingerprint()}, nil
}

func (s *Server) listJoinTokens(q *request) (any, error) {
	ts, err := s.store.ListJoinTokens(q.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.JoinToken, len(ts))
	for i, t := range ts {
		out[i] = joinTokenOut(t)
	}
	return out, nil
}

// join exchanges a join token and a CSR for a node certificate. Every
// refusal is 401 with its reason: the caller holds no other credential.
func (s *Server) join(q *request) (any, error) {
	if s.authority.Load() == nil {
		return nil, newError(http.StatusServiceUnavailable, apitypes.CodeInternal, "the agent API needs the domain CA")
	}
	var in apitypes.AgentJoinRequest
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	id, secret, err := auth.ParseBearer(in.Token)
	if err != nil {
		return nil, unauthorized("malformed join token")
	}
	q.auditUser, q.auditTarget = "node", "join-token/"+id
	now := s.now()
	tok, err := s.store.UseJoinToken(q.ctx, id, now, func(t store.JoinToken) error {
		switch {
		case !auth.SecretMatches(t.SecretHash, secret):
			return unauthorized("invalid join token")
		case !now.Before(t.ExpiresAt):
			return unauthorized("join token expired at %s", t.ExpiresAt.Format(time.RFC3339))
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, unauthorized("invalid join token")
	case errors.Is(err, store.ErrConflict):
		return nil, unauthorized("join token already used: make a new one (gatehouse token create --host %s)", tok.Host)
	case err != nil:
		return nil, err
	}
	q.auditUser, q.auditTarget = "node:"+tok.Host, "host/"+tok.Host
	// A node manager joins with a new data dir, so its traffic batches
	// are numbered from 1 again: an old sequence would have them taken
	// for retries and never stored.
	if err := s.store.ResetTrafficNode(q.ctx, tok.Host); err != nil {
		return nil, err
	}
	certPEM, err := s.issueNodeCert(q.ctx, []byte(in.CSR), tok.Host, now)
	if err != nil {
		return nil, err
	}
	return apitypes.AgentJoinResponse{Domain: s.domain.Name, Host: tok.Host, Certificate: string(certPEM),
		CA: string(s.authority.Load().BundlePEM()), SigningKey: encodePublicKey(s.domain.SigningPublicKey)}, nil
}

func (s *Server) issueNodeCert(ctx context.Context, csr []byte, host string, now time.Time) ([]byte, error) {
	certPEM, serial, err := s.authority.Load().SignCSR(csr, host, s.nodeTTL, now)
	if err != nil {
		return nil, badRequest("csr", "%v", err)
	}
	if err := s.store.AddNodeCert(ctx, store.NodeCert{Serial: serial.Text(16), Host: host, IssuedAt: now, NotAfter: now.Add(s.nodeTTL)}); err != nil {
		return nil, fmt.Errorf("record certificate of host %q: %w", host, err)
	}
	return certPEM, nil
}

func (s *Server) renew(q *request) (any, error) {
	var in apitypes.AgentRenewRequest
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	q.auditTarget = "host/" + q.node
	certPEM, err := s.issueNodeCert(q.ctx, []byte(in.CSR), q.node, s.now())
	if err != nil {
		return nil, err
	}
	return apitypes.AgentRenewResponse{Certificate: string(certPEM), CA: string(s.authority.Load().BundlePEM())}, nil
}

// heartbeat records the observed state of the host's instances; states of
// instances that are not the host's are ignored, so that a node manager
// cannot speak for another host.
func (s *Server) heartbeat(q *request) (any, error) {
	var in apitypes.AgentHeartbeat
	if err := decodeJSON(q, &in); err != nil {
		return nil, err
	}
	if err := s.noteAddress(q, in.Address); err != nil {
		return nil, err
	}
	if err := s.noteCapabilities(q, in.Capabilities); err != nil {
		return nil, err
	}
	mine, err := s.hostInstances(q.ctx, q.node, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	var sts []store.InstanceState
	for _, st := range in.Instances {
		if !slices.ContainsFunc(mine, func(i store.Instance) bool { return i.Name == st.Name }) {
			continue
		}
		state := store.InstanceState{Instance: st.Name, LastHeartbeat: now,
			AppliedDeployment: st.AppliedDeployment, AppliedChecksum: st.AppliedChecksum, Ready: st.Ready,
			Process: st.Process, PID: st.PID, Restarts: st.Restarts, LastError: st.LastError,
			GatewayVersion: st.GatewayVersion, FeatureLevel: st.FeatureLevel, Release: st.Release,
			RestartGeneration: st.RestartGeneration, Pending: st.Pending}
		if tr := st.Traffic; tr != nil {
			state.Boot, state.Requests, state.Errors = tr.Boot, tr.Requests, tr.Errors
		}
		if st.Settings != nil {
			rs := store.RunningSettings(*st.Settings)
			state.Settings = &rs
		}
		for _, p := range st.Peers {
			state.Peers = append(state.Peers, store.Peer{Name: p.Name, State: p.State, Deployment: p.Deployment, Checksum: p.Checksum, Since: p.Since})
		}
		sts = append(sts, state)
	}
	s.observe(sts)
	s.noteDrift(q.ctx, sts, now)
	s.noteHost(q, in.Version, now)
	a := s.authority.Load()
	return apitypes.AgentHeartbeatAnswer{ServerTime: now.UTC(), CATrust: a.TrustID(), CAIssuer: a.Issuer().Fingerprint()}, nil
}

func (s *Server) agentInstances(q *request) (any, error) {
	return s.block(q, func() (uint64, any, error) {
		index, _ := s.changes.current()
		all, byHost, addrs, err := s.hosts.snapshot(q.ctx, s)
		if err != nil {
			return 0, nil, err
		}
		ins := byHost[q.node]
		out := apitypes.AgentInstances{Index: index, Instances: make([]apitypes.AgentInstance, len(ins))}
		keys, err := s.storedPublishKeys(q.ctx)
		if err != nil {
			return 0, nil, err
		}
		for _, k := range keys {
			out.PublishKeys = append(out.PublishKeys, k.Bytes())
		}
		seen := map[string]*groupGossip{}
		releases := newReleaseCache()
		for i, in := range ins {
			gg, err := s.gossipOf(q.ctx, in.Group, all, seen)
			if err != nil {
				return 0, nil, err
			}
			rel, err := s.instanceRelease(q.ctx, in, releases)
			if err != nil {
				return 0, nil, err
			}
			out.Instances[i] = apitypes.AgentInstance{Name: in.Name, Group: in.Group, Listen: in.Listen,
				TLSListen: in.TLSListen, StatusListen: in.StatusListen, Gossip: s.agentGossip(in, gg, addrs),
				RestartGeneration: in.RestartGeneration, Settings: effectiveSettings(gg.settings, in.Settings, s.now()), Release: rel}
		}
		return index, out, nil
	})
}

// agentDeployment serves a group's current deployment, signed, to a node
// manager with an instance of that group.
func (s *Server) agentDeployment(q *request) (any, error) {
	group := q.vars["group"]
	ins, err := s.hostInstances(q.ctx, q.node, group)
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, newError(http.StatusForbidden, apitypes.CodeForbidden, "host %q has no instance of group %q", q.node, group)
	}
	return s.block(q, func() (uint64, any, error) {
		d, err := s.CurrentDeployment(q.ctx, group)
		if err != nil || d == nil {
			return 0, apitypes.AgentDeployment{}, err
		}
		return d.Number, apitypes.AgentDeployment{Index: d.Number, Deployment: d}, nil
	})
}

// CurrentDeployment returns a group's current deployment as node managers
// receive it, signed; nil when the group has none. The publisher of
// deployments to object storage sends the same, so that it verifies the
// same way.
func (s *Server) CurrentDeployment(ctx context.Context, group string) (*deploy.Deployment, error) {
	d, err := s.deps.LatestDeployment(ctx, group)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &deploy.Deployment{
		Domain: s.domain.Name, Group: group, Number: d.Number, Checksum: d.Checksum, Config: d.Config,
		Author: d.Author, Message: d.Message, CreatedAt: d.CreatedAt, Signature: d.Signature,
	}, nil
}

// Groups lists the names of the domain's groups.
func (s *Server) Groups(ctx context.Context) ([]string, error) {
	gs, err := s.store.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return names, nil
}

// Changed returns a channel closed at the next change committed to the
// store by this admin node or, on a shared store, by another: what wakes
// the node managers' blocking queries.
func (s *Server) Changed() <-chan struct{} {
	_, ch := s.changes.current()
	return ch
}

// agentRoutes are the routes of node managers (docs/node-manager.md).
func agentRoutes() []*route {
	return []*route{
		{method: "POST", path: "/join", action: "node.join", summary: "Exchange a join token and a CSR for a node certificate",
			agent: true, public: true, in: apitypes.AgentJoinRequest{}, out: apitypes.AgentJoinResponse{}, handle: (*Server).join},
		{method: "POST", path: "/renew", action: "node.renew", summary: "Renew the node certificate before it expires",
			agent: true, in: apitypes.AgentRenewRequest{}, out: apitypes.AgentRenewResponse{}, handle: (*Server).renew},
		{method: "PUT", path: "/heartbeat", action: "node.heartbeat", summary: "Report the state of the host's instances",
			agent: true, noAudit: true, in: apitypes.AgentHeartbeat{}, out: apitypes.AgentHeartbeatAnswer{}, handle: (*Server).heartbeat},
		{method: "GET", path: "/instances", action: "node.instances", summary: "The host's desired instances (blocking query)",
			agent: true, query: []string{"index", "wait"}, out: apitypes.AgentInstances{}, handle: (*Server).agentInstances},
		{method: "GET", path: "/releases/{version}", action: "node.release", summary: "A gateway release's binary, for the node manager to check and run",
			agent: true, noAudit: true, produces: releaseMediaType, handle: (*Server).agentRelease},
		{method: "GET", path: "/groups/{group}/deployment", action: "node.deployment", summary: "A group's current signed deployment (blocking query)",
			agent: true, query: []string{"index", "wait"}, out: apitypes.AgentDeployment{}, handle: (*Server).agentDeployment},
	}
}

// joinTokenRoutes are the operators' routes for join tokens.
func joinTokenRoutes() []*route {
	return []*route{
		{method: "POST", path: "/join-tokens", action: "join-token.create", summary: "Make a single-use, expiring token for a node manager to join as a host", status: http.StatusCreated,
			perm: rbac.HostWrite, scope: scopeDomain, in: apitypes.JoinTokenCreate{}, out: apitypes.JoinTokenCreated{}, handle: (*Server).createJoinToken},
		{method: "GET", path: "/join-tokens", action: "join-token.list", summary: "Join tokens, used and unused",
			perm: rbac.HostRead, scope: scopeDomain, out: []apitypes.JoinToken{}, handle: (*Server).listJoinTokens},
	}
}

// noteAddress records the address the host's gateways are reached at: the
// one the node manager advertises, else the one its heartbeat comes from.
// A new address changes every peer's seeds, so node managers are woken.
func (s *Server) noteAddress(q *request, advertised string) error {
	addr := advertised
	if addr == "" {
		addr = q.source
	}
	if net.ParseIP(addr) == nil {
		return badRequest("address", "address %q: must be an IP address", advertised)
	}
	_, _, addrs, err := s.hosts.snapshot(q.ctx, s)
	if err != nil {
		return err
	}
	if addrs[q.node] == addr {
		return nil
	}
	if err := s.store.SetHostAddress(q.ctx, q.node, addr); err != nil {
		return err
	}
	s.changes.bump()
	return nil
}
