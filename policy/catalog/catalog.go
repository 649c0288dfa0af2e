package catalog

import (
	"sort"

	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/policy/auth"
	"github.com/gatehouse/gatehouse/policy/external"
	"github.com/gatehouse/gatehouse/policy/httplog"
	"github.com/gatehouse/gatehouse/policy/ratelimit"
	"github.com/gatehouse/gatehouse/policy/transform"
)

var kinds = func() map[string]*policy.Kind {
	m := map[string]*policy.Kind{}
	for _, list := range [][]*policy.Kind{
		auth.Kinds(), ratelimit.Kinds(), transform.Kinds(), httplog.Kinds(), external.Kinds(),
	} {
		for _, k := range list {
			m[k.Name] = k
		}
	}
	return m
}()

// Lookup returns the kind called name.
func Lookup(name string) (*policy.Kind, bool) {
	k, ok := kinds[name]
	return k, ok
}

// Kinds lists every kind by phase, then by priority (the order a chain
// runs them in).
func Kinds() []*policy.Kind {
	out := make([]*policy.Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Phase != out[j].Phase {
			return out[i].Phase < out[j].Phase
		}
		return out[i].Priority > out[j].Priority
	})
	return out
}
