package transform

import (
	"sync/atomic"

	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

// trafficSplit sends a share of the requests, or the requests that carry
// given headers, to other upstreams.
type trafficSplit struct {
	rules []splitRule
}

// splitRule picks an upstream for the requests its matches hold for. Its
// weights are percentages: what they leave of 100 stays on the route's own
// upstream.
type splitRule struct {
	match []headerMatch
	// sequence lists the rule's choices in a smooth weighted order, over
	// the weights divided by their greatest common divisor; nil stands for
	// the route's own upstream. The n-th request takes sequence[n %
	// len]: the split is exact over every len requests, and needs no lock.
	sequence []any
	next     *atomic.Uint64
}

type headerMatch struct {
	name   string
	values [][]byte // any one; none means the header must be present
}

func newTrafficSplit(config map[string]any, env *policy.Env) (policy.Policy, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	p := &trafficSplit{}
	catchAll := -1
	r.Required("rules")
	n := r.List("rules", func(i int, r *policy.Reader) {
		if catchAll >= 0 {
			errs.Addf(r.Path(), "never used: rules[%d] has no match and takes every request", catchAll)
		}
		rule := splitRule{next: new(atomic.Uint64)}
		matches := r.List("match", func(_ int, r *policy.Reader) {
			if m, ok := readHeaderMatch(r, &errs); ok {
				rule.match = append(rule.match, m)
			}
		})
		switch {
		case r.Has("match") && matches == 0:
			r.Fail("match", "must not be empty: leave it out to match every request")
		case !r.Has("match") && catchAll < 0:
			catchAll = i
		}
		r.Required("upstreams")
		var choices []any
		var weights []int
		seen := map[string]bool{}
		total := 0
		count := r.List("upstreams", func(_ int, r *policy.Reader) {
			name, _ := stringField(r, &errs, "upstream")
			r.Required("weight")
			w := r.Int("weight", 0, 0, 100)
			var handle any
			if name != "" {
				if seen[name] {
					r.Failf("upstream", "%q is listed twice", name)
				}
				seen[name] = true
				h, ok := env.Upstream(name)
				if !ok {
					r.Failf("upstream", "unknown upstream %q", name)
				}
				handle = h
			}
			total += w
			choices, weights = append(choices, handle), append(weights, w)
		})
		if r.Has("upstreams") && count == 0 {
			r.Fail("upstreams", "must not be empty")
		}
		if total > 100 {
			r.Failf("upstreams", "weights add up to %d: they are percentages, at most 100 in all", total)
			return
		}
		choices, weights = append(choices, nil), append(weights, 100-total)
		rule.sequence = smoothSequence(choices, weights)
		p.rules = append(p.rules, rule)
	})
	if r.Has("rules") && n == 0 {
		r.Fail("rules", "must not be empty")
	}
	r.Done()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

func readHeaderMatch(r *policy.Reader, errs *policy.ConfigErrors) (headerMatch, bool) {
	var m headerMatch
	r.Required("header")
	name, ok := stringField(r, errs, "header")
	if ok && !httpascii.IsToken(name) {
		r.Failf("header", "%q is not a valid header name", name)
		ok = false
	}
	m.name = name
	values, _ := stringsField(r, errs, "values")
	for _, v := range values {
		m.values = append(m.values, []byte(v))
	}
	return m, ok
}

// smoothSequence spreads the choices over sum(weights)/gcd slots, each
// slot taking the choice furthest behind its share (nginx's smooth
// weighted round robin), so that a 10% canary gets every tenth request
// rather than ten in a row.
func smoothSequence(choices []any, weights []int) []any {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	// The weights add up to 100, so g > 0.
	total := 0
	scaled := make([]int, len(weights))
	for i, w := range weights {
		scaled[i] = w / g
		total += scaled[i]
	}
	current := make([]int, len(weights))
	seq := make([]any, total)
	for s := range seq {
		best := -1
		for i, w := range scaled {
			current[i] += w
			if w > 0 && (best < 0 || current[i] > current[best]) {
				best = i
			}
		}
		current[best] -= total
		seq[s] = choices[best]
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Run applies the first rule whose matches hold.
func (p *trafficSplit) Run(c *policy.Context) bool {
	for i := range p.rules {
		rule := &p.rules[i]
		if !rule.matches(c) {
			continue
		}
		n := rule.next.Add(1) - 1
		if up := rule.sequence[n%uint64(len(rule.sequence))]; up != nil {
			c.Upstream = up
		}
		return true
	}
	return true
}

func (rule *splitRule) matches(c *policy.Context) bool {
	for i := range rule.match {
		m := &rule.match[i]
		v := c.RequestHeader(m.name)
		if v == nil || !m.accepts(v) {
			return false
		}
	}
	return true
}

func (m *headerMatch) accepts(v []byte) bool {
	if len(m.values) == 0 {
		return true
	}
	for _, want := range m.values {
		if string(want) == string(v) {
			return true
		}
	}
	return false
}
