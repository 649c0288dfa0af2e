package ratelimit

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/policy"
)

var kind = &policy.Kind{
	Name:     "rate-limit",
	Phase:    policy.PhaseAccess,
	Priority: 700,
	New:      newLimiter,
}

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind { return []*policy.Kind{kind} }

func newLimiter(m map[string]any, env *policy.Env) (policy.Policy, error) {
	cfg, err := parseConfig(m)
	if err != nil {
		return nil, err
	}
	windows := cfg.windows()
	l := &limiter{by: cfg.key, header: cfg.header, headers: cfg.headers}
	for _, lc := range cfg.limits {
		l.limits = append(l.limits, limit{
			requests: int64(lc.requests),
			slot:     slices.Index(windows, lc.window),
			text:     strconv.Itoa(lc.requests),
		})
	}
	if env.Resources == nil {
		// Validation: nothing may outlive the build.
		l.st = newStore(windows)
		return l, nil
	}
	res, err := env.Resources.Get(cfg.resourceKey(), func() (io.Closer, error) {
		return openStore(cfg, windows, env), nil
	})
	if err != nil {
		return nil, fmt.Errorf("rate-limit: counters: %w", err)
	}
	st, ok := res.(*store)
	if !ok {
		return nil, fmt.Errorf("rate-limit: counters: resource is a %T", res)
	}
	l.st = st
	return l, nil
}

// openStore makes the counters of a configuration and starts sharing
// them as its mode says.
func openStore(cfg config, windows []time.Duration, env *policy.Env) *store {
	log := env.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	st := newStore(windows)
	switch {
	case cfg.mode == modeGroup && env.Group == nil:
		log.Warn(`rate-limit: mode "group" on a gateway without a group: counting per instance`)
	case cfg.mode == modeGroup:
		st.start(newGroupSync(st, env.Group, "rate-limit/"+cfg.name()), cfg.sync)
	case cfg.mode == modeRedis:
		st.start(newRedisSync(st, cfg.redis, cfg.name(), log), cfg.sync)
	}
	return st
}
