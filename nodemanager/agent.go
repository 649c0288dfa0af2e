package nodemanager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/metrics"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/state"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
	"github.com/gatehouse/gatehouse/objstore"
	"github.com/gatehouse/gatehouse/pki"
)

// Supervisor is what the agent needs of nodemanager/supervisor.
type Supervisor interface {
	Reconcile(ctx context.Context, desired []supervisor.Spec) error
	Restart(ctx context.Context, name string) error
	States() []supervisor.State
}

// agent is a running node manager: it follows the admin node's desired
// state into its own store and the supervisor, relays deployments to the
// gateways and reports their state back.
type agent struct {
	id    Identity
	log   hclog.Logger
	admin *client.Client
	certs *certs
	trust *trust
	// renewKick wakes the renewal loop: the admin node's CA changed.
	renewKick chan struct{}
	state     *state.Store
	sup       Supervisor
	binary    string
	// gatewayDataDir is an instance's gateway's data dir (--data-dir):
	// the driver's choice, since a gateway run by systemd as its own user
	// cannot enter the node manager's data dir.
	gatewayDataDir func(instance string) string
	// version is the node manager's, reported in heartbeats.
	version string
	// local is the local API's base URL, given to the gateways.
	local string
	// localToken is the operator token of the local API's state-changing
	// calls (local-api.token); never logged.
	localToken string
	wait       time.Duration
	now        func() time.Time
	// started is when this node manager started.
	started time.Time
	// advertise is the IP address the host's gateways are reached at by
	// their peers; empty lets the admin node use the heartbeats' source.
	advertise string
	// pluginDir holds the external policy binaries of every gateway of
	// the host; probe tells the gateway binary's version and feature
	// level. Both go into the heartbeats' capabilities.
	pluginDir string
	probe     *gatewayProbe
	// fallback is where the admin nodes publish the groups' current
	// deployments (fallback.go); nil without one.
	fallback objstore.Bucket
	// releases keeps the gateway releases the instances run
	// (releases.go).
	releases *releases
	// notes says what each spec runs (release, restart generation), for
	// the heartbeats.
	notes *specNotes

	// changed wakes the local API's blocking queries when a deployment is
	// stored, and localIndex counts those stores: it is the index of the
	// local API, rather than the deployment's number, so that a gateway
	// that refused a damaged copy still sees the good one with the same
	// number. It starts at the start time, so that it differs after a
	// restart.
	changed    *broadcast
	localIndex atomic.Uint64
	// answers keeps the index of each instance's last answer, so that a
	// change of the local index that leaves it the same wakes no gateway.
	answers answerIndexes
	// kick asks for a heartbeat now: a gateway's report changed what the
	// admin node shows (a deployment applied), which should not wait for
	// the next beat.
	kick chan struct{}
	// settingsKick asks for a delivery of dynamic settings now
	// (dynamic.go): the desired ones changed.
	settingsKick chan struct{}
	metrics      *metrics.Node
	// traffic collects the gateways' traffic counts for the admin node.
	traffic *collector
	// stopping is closed when the node manager shuts down, to answer the
	// blocking queries it holds.
	stopping chan struct{}

	mu      sync.Mutex
	reports map[string]report
	// watching maps a group to the cancel of its deployment watch.
	watching map[string]context.CancelFunc
}

// broadcast wakes every waiter at once.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// envRestartGeneration carries an instance's restart generation
// (apitypes.AgentInstance.RestartGeneration) into its gateway's
// environment.
const envRestartGeneration = "GATEHOUSE_RESTART_GENERATION"

// specs turns the desired instances into what the supervisor runs, with
// the note of each spec's hash.
func (a *agent) specs(ctx context.Context, ins []apitypes.AgentInstance) ([]supervisor.Spec, map[string]specNote, error) {
	out := make([]supervisor.Spec, 0, len(ins))
	notes := make(map[string]specNote, len(ins))
	var binaries []string
	for _, in := range ins {
		binary, version := a.binary, ""
		if in.Release != nil {
			p, err := a.releases.ensure(ctx, in.Release)
			if err != nil {
				return nil, nil, fmt.Errorf("instance %s: %w", in.Name, err)
			}
			binary, version = p, in.Release.Version
			binaries = append(binaries, p)
		}
		secret, err := a.state.Secret(in.Name)
		if err != nil {
			return nil, nil, err
		}
		args := []string{"gateway",
			"--instance", in.Name,
			"--group", in.Group,
			"--listen", orDefault(in.Listen, ":8080"),
			// An instance without HTTPS must not take the gateway's
			// default :8443, which another instance may hold. One word,
			// because systemd cannot pass an empty argument.
			"--tls-listen=" + in.TLSListen,
			"--status-listen", orDefault(in.StatusListen, ":8085"),
			"--data-dir", a.gatewayDataDir(in.Name),
			"--gossip-listen=" + a.gossipListen(in),
			"--gossip-advertise=" + a.gossipAdvertise(in),
			"--node-manager", a.local,
			"--plugin-dir", a.pluginDir,
			"--domain-key", a.id.SigningKey,
		}
		env := []string{localapi.EnvInstanceSecret + "=" + secret}
		if in.RestartGeneration > 0 {
			// The generation is part of the spec's hash, so the
			// supervisor restarts a gateway started with an older one:
			// a restart asked of the admin node happens once, even
			// across reconnects and node manager restarts. The gateway
			// ignores the variable.
			env = append(env, envRestartGeneration+"="+strconv.FormatUint(in.RestartGeneration, 10))
		}
		sp := supervisor.Spec{Name: in.Name, Group: in.Group, Binary: binary, Args: args, Env: env}
		notes[sp.Hash()] = specNote{release: version, restartGeneration: in.RestartGeneration}
		out = append(out, sp)
	}
	a.releases.want(binaries)
	return out, notes, nil
}

// gossipListen is where an instance gossips with its group.
func (a *agent) gossipListen(in apitypes.AgentInstance) string {
	if in.Gossip == nil {
		return ""
	}
	return in.Gossip.Listen
}

// gossipAdvertise is the address peers reach an instance at: the node's
// advertised IP with the instance's gossip port, when the node has one.
func (a *agent) gossipAdvertise(in apitypes.AgentInstance) string {
	if in.Gossip == nil || a.advertise == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(in.Gossip.Listen)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(a.advertise, port)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// apply makes the stored desired instances real: the supervisor runs them
// and a watch follows each of their groups' deployments.
func (a *agent) apply(ctx context.Context) error {
	_, ins, err := a.state.Instances()
	if err != nil {
		return err
	}
	specs, notes, err := a.specs(ctx, ins)
	if err != nil {
		return err
	}
	var running []string
	for _, st := range a.sup.States() {
		running = append(running, st.SpecHash)
	}
	a.notes.set(notes, running)
	if err := a.sup.Reconcile(ctx, specs); err != nil {
		return fmt.Errorf("reconcile instances: %w", err)
	}
	groups := map[string]bool{}
	for _, in := range ins {
		groups[in.Group] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for g, cancel := range a.watching {
		if !groups[g] {
			cancel()
			delete(a.watching, g)
		}
	}
	for g := range groups {
		if _, ok := a.watching[g]; !ok {
			wctx, cancel := context.WithCancel(ctx)
			a.watching[g] = cancel
			go a.watchDeployment(wctx, g)
		}
	}
	for name := range a.reports {
		if !slices.ContainsFunc(ins, func(in apitypes.AgentInstance) bool { return in.Name == name }) {
			delete(a.reports, name)
		}
	}
	return nil
}

// backoff returns the pause after the n-th consecutive failure: 100 ms
// doubling to 10 s, with jitter.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 7)
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

// watchInstances follows the host's desired instances with blocking
// queries, from the index stored last.
func (a *agent) watchInstances(ctx context.Context) {
	index, _, err := a.state.Instances()
	if err != nil {
		a.log.Error("read desired instances", "error", err)
	}
	var known *uint64
	if index != 0 {
		known = &index
	}
	for failures := 0; ctx.Err() == nil; {
		ans, err := a.admin.WatchInstances(ctx, known, a.wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			a.logUnreachable("watch instances", err, failures)
			pause.For(ctx, backoff(failures))
			continue
		}
		failures = 0
		if known != nil && ans.Index == *known {
			continue
		}
		// Kept before the index that says this answer was taken: an
		// answer of an older admin node, without keys, leaves them.
		if len(ans.PublishKeys) > 0 {
			if err := a.state.PutPublishKeys(ans.PublishKeys); err != nil {
				a.log.Error("store publish keys", "error", err)
				pause.For(ctx, time.Second)
				continue
			}
		}
		if err := a.state.PutInstances(ans.Index, ans.Instances); err != nil {
			a.log.Error("store desired instances", "error", err)
			pause.For(ctx, time.Second)
			continue
		}
		idx := ans.Index
		known = &idx
		a.log.Info("desired instances", "count", len(ans.Instances), "index", ans.Index)
		if err := a.apply(ctx); err != nil {
			a.log.Error("apply desired instances", "error", err)
		}
		a.answers.forget(func(name string) bool {
			return slices.ContainsFunc(ans.Instances, func(in apitypes.AgentInstance) bool { return in.Name == name })
		})
		// Peers and keys come with the instances: the gateways' next
		// answer carries them.
		a.localIndex.Add(1)
		a.changed.notify()
		a.kickSettings()
	}
}

func (a *agent) logUnreachable(what string, err error, failures int) {
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.Status == 401 || apiErr.Status == 403):
		a.log.Error(what+": the admin node refuses this node", "error", err)
	case failures == 1 || failures%20 == 0:
		a.log.Warn(what+": admin node unreachable; serving what this node has", "error", err, "failures", failures)
	}
}

// watchDeployment follows a group's current deployment into the store,
// from which the local API serves it. It does not verify signatures: the
// gateways do, with the domain key, so that a node manager is never a
// party that must be trusted.
func (a *agent) watchDeployment(ctx context.Context, group string) {
	var known *uint64
	if d, err := a.state.Deployment(group); err == nil && d != nil {
		n := d.Number
		known = &n
	}
	var fallbackErr string
	for failures := 0; ctx.Err() == nil; {
		ans, err := a.admin.WatchDeployment(ctx, group, known, a.wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			a.logUnreachable("watch deployment of group "+group, err, failures)
			if unreachable(err) {
				if n := a.tryFallback(ctx, group, &fallbackErr); n != 0 {
					// The admin node, once back, answers at once if it
					// has another deployment.
					known = &n
				}
			}
			pause.For(ctx, backoff(failures))
			continue
		}
		failures = 0
		idx := ans.Index
		known = &idx
		if ans.Deployment == nil {
			continue
		}
		stored, err := a.state.PutDeployment(ans.Deployment)
		if err != nil {
			a.log.Error("store deployment", "group", group, "error", err)
			continue
		}
		if stored {
			a.log.Info("deployment received", "group", group, "number", ans.Deployment.Number, "checksum", ans.Deployment.Checksum)
			a.localIndex.Add(1)
			a.changed.notify()
		}
	}
}

// reportGrace is how long after the node manager's start a running
// gateway that has not reported yet is left out of heartbeats: gateways
// report within a second of the node manager answering again.
const reportGrace = 15 * time.Second

// heartbeatTimeout bounds a heartbeat: an admin node that does not answer
// one in time is left for the next (client.Config.Addresses), and with it
// the blocking queries waiting on it.
const heartbeatTimeout = 10 * time.Second

// heartbeats reports every instance's state every interval, and at once
// when kicked.
func (a *agent) heartbeats(ctx context.Context, every time.Duration) {
	timer := time.NewTimer(every)
	defer timer.Stop()
	for failures := 0; ; {
		hb := a.heartbeat()
		hb.Capabilities = a.capabilities(ctx)
		hctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		ans, err := a.admin.Heartbeat(hctx, hb)
		cancel()
		if err == nil {
			a.noteCA(ans)
		}
		if ctx.Err() == nil {
			a.metrics.Heartbeat(err == nil)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			a.logUnreachable("heartbeat", err, failures)
		default:
			failures = 0
		}
		timer.Reset(every)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-a.kick:
		}
	}
}

// kickHeartbeat asks for a heartbeat without waiting; kicks while one is
// pending are one.
func (a *agent) kickHeartbeat() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *agent) heartbeat() apitypes.AgentHeartbeat {
	hb := apitypes.AgentHeartbeat{Address: a.advertise, Version: a.version, Instances: []apitypes.AgentInstanceState{}}
	totals := a.trafficTotals()
	young := a.now().Sub(a.started) < reportGrace
	sups := map[string]supervisor.State{}
	for _, st := range a.sup.States() {
		sups[st.Name] = st
	}
	for _, v := range a.views() {
		if young && v.ReportedAt.IsZero() && v.Process == localapi.ProcessRunning {
			// Just started (or adopted) and not heard from yet: what it
			// runs is unknown, and saying "nothing" would show a healthy
			// gateway as Only Heartbeat until it reports. The admin node
			// keeps its last state meanwhile.
			continue
		}
		st := apitypes.AgentInstanceState{Name: v.Name, Process: string(v.Process), PID: v.PID,
			Restarts: v.Restarts, AppliedDeployment: v.AppliedDeployment, AppliedChecksum: v.AppliedChecksum,
			Ready: v.Ready, LastError: v.LastError, GatewayVersion: v.GatewayVersion, FeatureLevel: v.FeatureLevel,
			Traffic: totals[v.Name]}
		if sst, ok := sups[v.Name]; ok {
			note := a.notes.of(sst.SpecHash)
			st.Release, st.RestartGeneration = note.release, note.restartGeneration
			// Running, but not with the spec last given: a replacement
			// under way, or one that failed (the old process serves on).
			st.Pending = sst.Process == supervisor.StateRunning && sst.WantHash != "" && sst.WantHash != sst.SpecHash
		}
		if v.Settings != nil {
			s := apitypes.AgentGatewaySettings(*v.Settings)
			st.Settings = &s
		}
		for _, p := range v.Peers {
			st.Peers = append(st.Peers, apitypes.GossipPeer{Name: p.Name, State: p.State, Deployment: p.Deployment, Checksum: p.Checksum, Since: p.Since})
		}
		hb.Instances = append(hb.Instances, st)
	}
	return hb
}

// views joins the supervisor's view of each instance with its gateway's
// last report.
func (a *agent) views() []localapi.InstanceView {
	_, ins, err := a.state.Instances()
	if err != nil {
		a.log.Error("read desired instances", "error", err)
	}
	states := map[string]supervisor.State{}
	for _, st := range a.sup.States() {
		states[st.Name] = st
	}
	desired := map[string]uint64{}
	for _, in := range ins {
		if _, ok := desired[in.Group]; !ok {
			if d, err := a.state.Deployment(in.Group); err == nil && d != nil {
				desired[in.Group] = d.Number
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []localapi.InstanceView{}
	for _, in := range ins {
		st := states[in.Name]
		r := a.reports[in.Name]
		if r.at.Before(st.StartedAt) {
			// A report of the process this one replaced.
			r = report{}
		}
		v := localapi.InstanceView{Name: in.Name, Group: in.Group, Process: localapi.ProcessState(st.Process), PID: st.PID,
			Restarts: st.Restarts, StartedAt: st.StartedAt, LastExit: st.LastExit, NextStartAt: st.NextStartAt,
			DesiredDeployment: desired[in.Group],
			AppliedDeployment: r.AppliedDeployment, AppliedChecksum: r.AppliedChecksum,
			Ready: r.Ready && st.Process == supervisor.StateRunning, LastError: st.LastError, ReportedAt: r.at,
			Peers: r.Peers, GatewayVersion: r.GatewayVersion, FeatureLevel: r.FeatureLevel, Settings: r.Settings}
		if in.Settings != nil {
			d := desiredSettings(in)
			v.DesiredSettings = &d
		}
		if r.LastError != "" {
			v.LastError = r.LastError
		}
		out = append(out, v)
	}
	return out
}

func (a *agent) metricInstances() []metrics.NodeInstance {
	views := a.views()
	out := make([]metrics.NodeInstance, len(views))
	for i, v := range views {
		out[i] = metrics.NodeInstance{Name: v.Name, Group: v.Group, Process: string(v.Process), Restarts: v.Restarts,
			Ready: v.Ready, Applied: v.AppliedDeployment}
	}
	return out
}

// noteCA follows what a heartbeat answer says of the domain CA: a trust
// bundle other than the one held, or another root issuing node
// certificates, wakes the renewal loop.
func (a *agent) noteCA(ans apitypes.AgentHeartbeatAnswer) {
	if ans.CATrust == "" {
		return // an admin node older than CA rotation
	}
	cur, _ := a.certs.get()
	a.trust.setIssuer(ans.CAIssuer)
	if ans.CATrust != a.trust.ID() || !a.trust.fromIssuer(cur.Leaf) {
		select {
		case a.renewKick <- struct{}{}:
		default:
		}
	}
}

// renewals renews the node certificate when due, checking a twelfth of
// its life apart (hourly at most), and at once when the domain CA
// changed: then it first fetches and trusts the new bundle.
func (a *agent) renewals(ctx context.Context) {
	for {
		if err := a.syncTrust(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("fetch the domain's trust bundle failed; will retry", "error", err)
		}
		renewed, err := a.certs.renewIfDue(ctx, a.admin, a.id.Host, a.trust, a.now())
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("certificate renewal failed; will retry", "error", err)
		case renewed:
			// The next requests handshake again, presenting the new
			// certificate: during a CA rotation the admin node counts a
			// host renewed by the certificate it presents.
			a.admin.Reconnect()
			cur, _ := a.certs.get()
			a.log.Info("node certificate renewed", "not_after", cur.Leaf.NotAfter, "issuer", cur.Leaf.Issuer.CommonName)
		}
		timer := time.NewTimer(a.certs.checkEvery())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-a.renewKick:
			timer.Stop()
		}
	}
}

// syncTrust fetches the trust bundle when the admin node's differs from
// the one held.
func (a *agent) syncTrust(ctx context.Context) error {
	got, err := a.admin.CA(ctx)
	if err != nil {
		return err
	}
	a.trust.setIssuer(got.Issuer)
	changed, err := a.trust.update([]byte(got.Bundle))
	if changed {
		a.log.Info("domain trust bundle updated", "trust", got.TrustID, "roots", len(pki.ParseBundle([]byte(got.Bundle))))
	}
	return err
}

// report is a gateway's last report and when it came.
type report struct {
	localapi.Report
	at time.Time
}

// report records what a gateway says it runs.
func (a *agent) report(name string, r localapi.Report) {
	a.mu.Lock()
	a.reports[name] = report{Report: r, at: a.now()}
	a.mu.Unlock()
}

// trafficTargets lists the instances whose traffic the node counts: the
// desired ones, read when a process runs, and the ones still stopping
// after they were removed, whose last push is still to come.
func (a *agent) trafficTargets() []trafficTarget {
	_, ins, err := a.state.Instances()
	if err != nil {
		a.log.Error("read desired instances", "error", err)
	}
	states := map[string]supervisor.State{}
	for _, st := range a.sup.States() {
		states[st.Name] = st
	}
	out := make([]trafficTarget, 0, len(ins)+len(states))
	for _, in := range ins {
		t := trafficTarget{name: in.Name, group: in.Group}
		if st, ok := states[in.Name]; ok && st.PID != 0 {
			// The group the process runs with: until a moved instance
			// restarts, its gateway counts under the old one.
			t.group = cmp.Or(st.Group, in.Group)
			if t.url, err = statusTrafficURL(orDefault(in.StatusListen, ":8085")); err != nil {
				a.log.Warn("cannot read the traffic of instance", "instance", in.Name, "error", err)
			}
		}
		delete(states, in.Name)
		out = append(out, t)
	}
	for _, st := range states {
		out = append(out, trafficTarget{name: st.Name, group: st.Group})
	}
	return out
}

// instance finds a desired instance by name.
func (a *agent) instance(name string) (apitypes.AgentInstance, bool) {
	_, ins, err := a.state.Instances()
	if err != nil {
		return apitypes.AgentInstance{}, false
	}
	i := slices.IndexFunc(ins, func(in apitypes.AgentInstance) bool { return in.Name == name })
	if i < 0 {
		return apitypes.AgentInstance{}, false
	}
	return ins[i], true
}

// deployment is what the local API answers an instance: its group's
// stored deployment and its gossip membership.
func (a *agent) deployment(in apitypes.AgentInstance) (localapi.DeploymentAnswer, error) {
	// Read before the store: a change stored meanwhile moves it again.
	now := a.localIndex.Load()
	var ans localapi.DeploymentAnswer
	d, err := a.state.Deployment(in.Group)
	if err != nil {
		return localapi.DeploymentAnswer{}, err
	}
	ans.Deployment = d
	if in.Gossip != nil {
		ans.Gossip = &localapi.Gossip{Seeds: in.Gossip.Seeds, Keys: in.Gossip.Keys}
	}
	ans.Index = a.answers.index(in.Name, ans, now)
	return ans, nil
}
