package policy

import (
	"math"
	"sort"
)

// Step is one policy of a chain.
type Step struct {
	Kind   *Kind
	Policy Policy
}

// Chain is the compiled policies of a route (global, service and route
// scopes merged) or of a consumer: built once per deployment, read by
// every request without locks.
type Chain struct {
	phases     [numPhases][]Step
	responders []Step
	loggers    []Step
	blocking   bool
	limitsBody bool
	// consumerLogs and consumerResponds: a consumer's chain may bring
	// log or response policies.
	consumerLogs, consumerResponds bool
}

// NewChain compiles steps given from the widest scope to the narrowest
// (global, service, route): a kind given again replaces the wider one, so
// that a route's rate-limit overrides the group's.
func NewChain(steps []Step) *Chain {
	var kept []Step
	for _, s := range steps {
		replaced := false
		for i := range kept {
			if kept[i].Kind == s.Kind {
				kept[i], replaced = s, true
			}
		}
		if !replaced {
			kept = append(kept, s)
		}
	}
	ch := &Chain{}
	for _, s := range kept {
		ch.blocking = ch.blocking || s.Kind.Blocking
		ch.limitsBody = ch.limitsBody || s.Kind.LimitsBody
		if s.Kind.Phase < PhaseResponse {
			ch.phases[s.Kind.Phase] = append(ch.phases[s.Kind.Phase], s)
		}
		if _, ok := s.Policy.(Responder); ok {
			ch.responders = append(ch.responders, s)
		}
		if _, ok := s.Policy.(Logger); ok {
			ch.loggers = append(ch.loggers, s)
		}
	}
	for ph := range ch.phases {
		sortSteps(ch.phases[ph])
	}
	sortSteps(ch.responders)
	sortSteps(ch.loggers)
	return ch
}

// sortSteps orders by phase, then priority, higher first.
func sortSteps(s []Step) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Kind.Phase != s[j].Kind.Phase {
			return s[i].Kind.Phase < s[j].Kind.Phase
		}
		return s[i].Kind.Priority > s[j].Kind.Priority
	})
}

// JoinableBy notes what the chains of consumers may bring to this one
// when they are identified: a policy that blocks, responds or logs.
func (ch *Chain) JoinableBy(consumers []*Chain) {
	for _, c := range consumers {
		ch.blocking = ch.blocking || c.blocking
		ch.consumerResponds = ch.consumerResponds || len(c.responders) > 0
		ch.consumerLogs = ch.consumerLogs || len(c.loggers) > 0
	}
}

// Logs reports whether the chain has a log phase to run (of its own, or
// possibly a consumer's).
func (ch *Chain) Logs() bool { return ch != nil && (len(ch.loggers) > 0 || ch.consumerLogs) }

// Responds reports whether the chain has a response phase to run.
func (ch *Chain) Responds() bool {
	return ch != nil && (len(ch.responders) > 0 || ch.consumerResponds)
}

// LimitsBody reports whether a policy of the chain may limit a body of
// unknown length.
func (ch *Chain) LimitsBody() bool { return ch != nil && ch.limitsBody }

// Blocking reports whether a policy of the chain may block.
func (ch *Chain) Blocking() bool { return ch != nil && ch.blocking }

// Empty reports whether the chain has nothing to run.
func (ch *Chain) Empty() bool {
	if ch == nil {
		return true
	}
	for _, p := range ch.phases {
		if len(p) > 0 {
			return false
		}
	}
	return len(ch.responders) == 0 && len(ch.loggers) == 0
}

// Run runs the request's phases: rewrite, access, before-proxy. It returns
// false when a policy answered the request (c.Answer).
//
// Once a policy identifies a consumer, the consumer's own policies join
// the rest of the chain: one of a kind the route has replaces it; one of a
// kind that ran already (an authentication policy) is not run.
func (ch *Chain) Run(c *Context) bool {
	if ch == nil {
		return true
	}
	for ph := PhaseRewrite; ph < PhaseResponse; ph++ {
		own := ch.phases[ph]
		i, j := 0, 0
		last := math.MaxInt
		for {
			var theirs []Step
			if c.Consumer != nil && c.Consumer.chain != nil {
				theirs = c.Consumer.chain.phases[ph]
				for j < len(theirs) && theirs[j].Kind.Priority >= last {
					j++
				}
			}
			var s *Step
			switch {
			case j < len(theirs) && (i >= len(own) || theirs[j].Kind.Priority >= own[i].Kind.Priority):
				if i < len(own) && own[i].Kind == theirs[j].Kind {
					i++
				}
				s = &theirs[j]
				j++
			case i < len(own):
				s = &own[i]
				i++
			}
			if s == nil {
				break
			}
			last = s.Kind.Priority
			if !s.Policy.Run(c) {
				return false
			}
		}
	}
	return true
}

// Respond runs the response phase once the response's status is known.
func (ch *Chain) Respond(c *Context, status int) {
	if ch == nil {
		return
	}
	merge(ch.responders, c, func(s *Step) { s.Policy.(Responder).Respond(c, status) },
		func(consumer *Chain) []Step { return consumer.responders })
}

// Log runs the log phase once the exchange is over.
func (ch *Chain) Log(c *Context, o *Outcome) {
	if ch == nil {
		return
	}
	merge(ch.loggers, c, func(s *Step) { s.Policy.(Logger).Log(c, o) },
		func(consumer *Chain) []Step { return consumer.loggers })
}

// merge walks the route's steps and the consumer's, both in order, the
// consumer's replacing a route step of the same kind.
func merge(own []Step, c *Context, run func(*Step), of func(*Chain) []Step) {
	var theirs []Step
	if c.Consumer != nil && c.Consumer.chain != nil {
		theirs = of(c.Consumer.chain)
	}
	i, j := 0, 0
	for i < len(own) || j < len(theirs) {
		if j < len(theirs) && (i >= len(own) || !before(&own[i], &theirs[j])) {
			if i < len(own) && own[i].Kind == theirs[j].Kind {
				i++
			}
			run(&theirs[j])
			j++
			continue
		}
		run(&own[i])
		i++
	}
}

func before(a, b *Step) bool {
	if a.Kind.Phase != b.Kind.Phase {
		return a.Kind.Phase < b.Kind.Phase
	}
	return a.Kind.Priority > b.Kind.Priority
}
