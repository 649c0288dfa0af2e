package proxy

import (
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/gateway/upstream"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

// PolicyEnv is what the gateway gives policies besides the configuration:
// its group channel, the resources kept across deployments, the plugin
// directory and the metrics policies count in. Zero values are allowed.
type PolicyEnv struct {
	Logger    hclog.Logger
	Group     policy.GroupChannel
	Resources policy.Resources
	PluginDir string
	Metrics   policy.Metrics
}

// chains builds every route's policy chain, and the consumers' own, once
// per configuration. It returns one chain per route in the order of
// Compile's walk (services, then their routes).
func (pe *PolicyEnv) chains(cfg *deploy.Config, ups map[string]*upstream.Upstream) ([]*policy.Chain, error) {
	logger := pe.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	consumers := catalog.Consumers(cfg)
	env := &policy.Env{
		Logger:    logger.Named("policy"),
		Consumers: consumers,
		Upstream: func(name string) (any, bool) {
			u, ok := ups[name]
			return u, ok
		},
		Group:     pe.Group,
		Resources: pe.Resources,
		PluginDir: pe.PluginDir,
		Metrics:   pe.Metrics,
	}
	build := func(path string, ps []deploy.Policy) ([]policy.Step, error) {
		steps := make([]policy.Step, 0, len(ps))
		for i, p := range ps {
			kind, ok := catalog.Lookup(p.Name)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: unknown policy %q", path, i, p.Name)
			}
			pol, err := kind.New(p.Config, env)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] (%s): %w", path, i, p.Name, err)
			}
			steps = append(steps, policy.Step{Kind: kind, Policy: pol})
		}
		return steps, nil
	}
	var consumerChains []*policy.Chain
	for i := range cfg.Consumers {
		c := &cfg.Consumers[i]
		if len(c.Policies) == 0 {
			continue
		}
		steps, err := build(fmt.Sprintf("consumers[%d].policies", i), c.Policies)
		if err != nil {
			return nil, err
		}
		ch := policy.NewChain(steps)
		consumerChains = append(consumerChains, ch)
		consumers.Named(c.Name).SetChain(ch)
	}
	global, err := build("global_policies", cfg.GlobalPolicies)
	if err != nil {
		return nil, err
	}
	var out []*policy.Chain
	for si := range cfg.Services {
		svc := &cfg.Services[si]
		svcSteps, err := build(fmt.Sprintf("services[%d].policies", si), svc.Policies)
		if err != nil {
			return nil, err
		}
		for ri := range svc.Routes {
			r := &svc.Routes[ri]
			rSteps, err := build(fmt.Sprintf("services[%d].routes[%d].policies", si, ri), r.Policies)
			if err != nil {
				return nil, err
			}
			all := make([]policy.Step, 0, len(global)+len(svcSteps)+len(rSteps))
			all = append(append(append(all, global...), svcSteps...), rSteps...)
			if len(all) == 0 {
				out = append(out, nil)
				continue
			}
			ch := policy.NewChain(all)
			// Which consumer's policies join the chain is known only per
			// request.
			ch.JoinableBy(consumerChains)
			out = append(out, ch)
		}
	}
	return out, nil
}

// applyEdits reports a Context's request edits to set, which writes them
// into the engine's request.
type headerSink interface {
	set(name string, value []byte)
	add(name string, value []byte)
	del(name string)
	// get is the current value of name, for a rename.
	get(name string) []byte
}

func applyEdits(pc *policy.Context, edits []policy.HeaderEdit, h headerSink) {
	for i := range edits {
		e := &edits[i]
		switch e.Op {
		case policy.EditSet:
			h.set(e.Name, pc.Value(e))
		case policy.EditAdd:
			h.add(e.Name, pc.Value(e))
		case policy.EditDel:
			h.del(e.Name)
		case policy.EditRename:
			if v := h.get(e.Name); v != nil {
				h.set(e.NewName, v)
				h.del(e.Name)
			}
		}
	}
}
