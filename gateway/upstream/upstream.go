package upstream

import "github.com/gatehouse/gatehouse/deploy"

// Upstream is one configuration's view of an upstream: its targets and
// balancer. It never changes; the next configuration gets a new one.
type Upstream struct {
	Name   string
	Config deploy.Upstream
	// Targets are in the order of Config.Targets.
	Targets []*Target

	balancer balancer
}

func newUpstream(cfg deploy.Upstream, targets []*Target) *Upstream {
	u := &Upstream{Name: cfg.Name, Config: cfg, Targets: targets}
	switch cfg.Balancer {
	case deploy.BalancerLeastConnections:
		u.balancer = &leastConnections{targets: targets}
	case deploy.BalancerConsistentHash:
		u.balancer = newConsistentHash(targets)
	default:
		u.balancer = newRoundRobin(targets)
	}
	return u
}

// Pick chooses a healthy target, never skip, or returns nil when there is
// none (the proxy answers 503). key is the consistent-hash key the caller
// extracted as Config.HashOn says; without one, consistent-hash balances
// round-robin. Other balancers ignore key. skip is the target a retry
// must avoid, or nil.
func (u *Upstream) Pick(key []byte, skip *Target) *Target {
	return u.balancer.pick(key, skip)
}

// States returns a snapshot of the targets, in the order of Targets.
func (u *Upstream) States() []TargetState {
	states := make([]TargetState, len(u.Targets))
	for i, t := range u.Targets {
		states[i] = t.state()
	}
	return states
}
