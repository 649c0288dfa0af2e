package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/internal/pause"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// remote is the node manager as a gateway's source (docs/node-manager.md):
// the gateway follows its group's deployment with blocking queries,
// applies only deployments it can verify itself, and reports what it runs.
type remote struct {
	client *localapi.Client
	url    string
	key    ed25519.PublicKey
	wait   time.Duration
	every  time.Duration // report interval
	// kick asks the report loop to report now, after an attempt to apply.
	kick chan struct{}

	mu          sync.Mutex
	lastRefused *RefusedDeployment
	contact     NodeManagerReport
	// failing holds the calls ("watch", "report") whose last attempt
	// failed, so that each logs its own changes: one failing alone must not
	// make the log flap between unreachable and reachable.
	failing map[string]error
}

// Backoff of calls to the node manager that fail: quick at first, since a
// node manager restarting is back within a second, and capped so that a
// gateway notices it soon after it returns without hammering it meanwhile.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

func newRemote(opts Options) (*remote, error) {
	if len(opts.DomainKey) != ed25519.PublicKeySize {
		return nil, errors.New("a gateway under a node manager needs the domain's deployment key")
	}
	if opts.Group == "" || opts.Instance == "" {
		return nil, errors.New("a gateway under a node manager needs its group and instance names")
	}
	c, err := localapi.New(opts.NodeManager, opts.Instance, opts.InstanceSecret, nil)
	if err != nil {
		return nil, fmt.Errorf("node manager source: %w", err)
	}
	r := &remote{
		client:  c,
		url:     c.URL(),
		key:     opts.DomainKey,
		wait:    opts.WatchWait,
		every:   opts.ReportInterval,
		kick:    make(chan struct{}, 1),
		failing: map[string]error{},
	}
	if r.wait <= 0 {
		r.wait = localapi.DefaultWait
	}
	if r.every <= 0 {
		r.every = 10 * time.Second
	}
	r.contact.URL = r.url
	return r, nil
}

// Why a deployment is refused besides what deploy.Verify finds.
var (
	errOtherGroup   = errors.New("deployment is for another group")
	errOldNumber    = errors.New("deployment is older than the one served")
	errNumberedZero = errors.New("deployment has number 0 (numbers start at 1)")
)

// checkDeployment returns the configuration of d, or why a gateway of
// group that serves deployment current must not apply it. The signature is
// checked first: until it verifies, no field of d can be trusted, not even
// to word the refusal.
//
// The domain name is not compared: the gateway is given the domain's key,
// not its name, and each domain has its own key, so a signature that
// verifies already says the deployment is of the gateway's domain.
func checkDeployment(d *deploy.Deployment, key ed25519.PublicKey, group string, current uint64) (*deploy.Config, error) {
	cfg, err := d.Open(key, catalog.Checker{})
	if err != nil {
		return nil, err
	}
	switch {
	case d.Group != group:
		return nil, fmt.Errorf("%w: %q, this gateway is of %q", errOtherGroup, d.Group, group)
	case d.Number == 0:
		return nil, errNumberedZero
	case d.Number < current:
		// A lower number is an old, correctly signed deployment sent again:
		// applying it would roll the gateway back behind the admin node's
		// back. A rollback is a new, higher number.
		return nil, fmt.Errorf("%w: %d is lower than %d", errOldNumber, d.Number, current)
	}
	return cfg, nil
}

// receive applies d, from the node manager, if checkDeployment allows
// it, else keeps what the gateway serves and records the refusal, which
// the next report carries.
func (g *Gateway) receive(d *deploy.Deployment) error {
	return g.receiveFrom(d, g.remote.key, "", g.remote.refused)
}

// receiveFrom is receive for any source: d is checked with key, a
// refusal recorded with refused (for reports and /status), and from says
// where d came from, for the logs.
func (g *Gateway) receiveFrom(d *deploy.Deployment, key ed25519.PublicKey, from string, refused func(uint64, error)) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	origin := fmt.Sprintf("deployment:%d", d.Number)
	if from != "" {
		origin += " (" + from + ")"
	}
	cfg, err := checkDeployment(d, key, g.opts.Group, g.deployment.Load())
	if err == nil {
		// Open validated it and the signature covers its checksum.
		err = g.apply(cfg, source{origin: origin, deployment: d.Number, persist: true, checksum: d.Checksum})
	}
	if err != nil {
		refused(d.Number, err)
		err = fmt.Errorf("deployment %d refused: %w", d.Number, err)
	}
	return g.settle(origin, err)
}

// RefusedDeployment is the last deployment a gateway refused, and why.
type RefusedDeployment struct {
	Number uint64    `json:"number"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// NodeManagerReport is how the gateway's talks with its node manager go.
type NodeManagerReport struct {
	URL         string    `json:"url"`
	LastContact time.Time `json:"last_contact,omitzero"`
	// LastError is the error of the last call if it failed; empty while
	// calls succeed.
	LastError string `json:"last_error,omitempty"`
}

func (r *remote) refused(number uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRefused = &RefusedDeployment{Number: number, Reason: err.Error(), At: time.Now()}
}

// contacted records the outcome of a call to the node manager and says
// whether that call's state changed, so that only changes are logged
// loudly.
func (r *remote) contacted(call string, err error) (changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, wasFailing := r.failing[call]
	if err != nil {
		r.failing[call] = err
	} else {
		delete(r.failing, call)
		r.contact.LastContact = time.Now()
	}
	// /status shows an error while any call fails.
	r.contact.LastError = ""
	for _, c := range []string{"report", "watch"} {
		if e := r.failing[c]; e != nil {
			r.contact.LastError = e.Error()
		}
	}
	return wasFailing != (err != nil)
}

func (r *remote) status() (*RefusedDeployment, NodeManagerReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastRefused, r.contact
}

func (r *remote) reportNow() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// followNodeManager watches the group's deployment until ctx is done. It
// asks with the index of the last answer rather than the number served, so
// that a refused deployment is not sent again and again: the next answer
// waits for a new one.
func (g *Gateway) followNodeManager(ctx context.Context) {
	r := g.remote
	index := g.deployment.Load()
	bo := backoff{}
	failed := false
	for {
		asked := time.Now()
		ans, err := r.client.WatchDeployment(ctx, index, r.wait)
		if ctx.Err() != nil {
			return
		}
		g.noteContact("watch", err)
		if err != nil {
			failed = true
			if !pause.For(ctx, bo.next()) {
				return
			}
			continue
		}
		if failed {
			// The node manager is back, perhaps restarted with no memory
			// of what this gateway runs: tell it now rather than at the
			// next periodic report.
			failed = false
			r.reportNow()
		}
		if ans.Index == index {
			// The wait ran out with nothing new. An answer that came back
			// at once would make this loop spin on a server that does not
			// block, so such answers are paced.
			if time.Since(asked) < min(time.Second, r.wait/2) {
				if !pause.For(ctx, bo.next()) {
					return
				}
			} else {
				bo.reset()
			}
			continue
		}
		bo.reset()
		index = ans.Index
		if ans.Deployment == nil {
			g.gossipSettings(ans.Gossip)
			g.logger.Info("node manager has no deployment for the group; keeping the current configuration", "index", ans.Index)
			continue
		}
		if g.serving(ans.Deployment) {
			// The node manager's index moves for changes of other
			// groups and instances too: the same deployment again is
			// neither applied, nor logged, nor told to the group.
			g.gossipSettings(ans.Gossip)
			continue
		}
		if err := g.receive(ans.Deployment); err == nil {
			g.logger.Info("deployment applied", "number", ans.Deployment.Number, "checksum", ans.Deployment.Checksum)
			g.gossipApplied()
		}
		g.gossipSettings(ans.Gossip)
		r.reportNow()
	}
}

// serving says whether d is the deployment the gateway serves already.
func (g *Gateway) serving(d *deploy.Deployment) bool {
	cur := g.proxy.Current()
	return cur != nil && g.deployment.Load() == d.Number && cur.Checksum == d.Checksum
}

// noteContact logs a call to the node manager starting to fail or working
// again, once per change, and every failure at debug level.
func (g *Gateway) noteContact(call string, err error) {
	changed := g.remote.contacted(call, err)
	switch {
	case err != nil && changed:
		g.logger.Warn("node manager call failing; serving the current configuration and retrying", "call", call, "url", g.remote.url, "error", err)
	case err != nil:
		g.logger.Debug("node manager call still failing", "call", call, "error", err)
	case changed:
		g.logger.Info("node manager call works again", "call", call, "url", g.remote.url)
	}
}

// reportLoop reports to the node manager at once (so that it learns what a
// restarted gateway serves from its store), after every attempt to apply a
// deployment, and every report interval, so that it sees readiness change.
// A report that fails is sent again with backoff; it is read afresh each
// time, so a retry never sends stale state.
func (g *Gateway) reportLoop(ctx context.Context) {
	r := g.remote
	t := time.NewTicker(r.every)
	defer t.Stop()
	bo := backoff{}
	retry := time.After(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		case <-retry:
		}
		retry = nil
		err := r.client.Report(ctx, g.localReport())
		if ctx.Err() != nil {
			return
		}
		g.noteContact("report", err)
		if err != nil {
			retry = time.After(bo.next())
			continue
		}
		bo.reset()
	}
}

// localReport is what the gateway runs now, for the node manager.
func (g *Gateway) localReport() localapi.Report {
	// Under applyMu, so that the number and the checksum are of the same
	// apply.
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	rep := localapi.Report{AppliedDeployment: g.deployment.Load(), Ready: g.Ready(),
		GatewayVersion: g.opts.Version, FeatureLevel: g.opts.FeatureLevel, Settings: g.settings()}
	if snap := g.proxy.Current(); snap != nil {
		rep.AppliedChecksum = snap.Checksum
	}
	if e := g.lastErr.Load(); e != nil {
		rep.LastError = e.Message
	}
	for _, p := range g.peerView() {
		rep.Peers = append(rep.Peers, localapi.Peer{Name: p.Name, State: p.State, Deployment: p.Deployment, Checksum: p.Checksum, Since: p.Since})
	}
	return rep
}

// backoff doubles a delay from backoffMin to backoffMax.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	if b.d == 0 {
		b.d = backoffMin
	} else {
		b.d = min(2*b.d, backoffMax)
	}
	return b.d
}

func (b *backoff) reset() { b.d = 0 }
