package external

import "github.com/gatehouse/gatehouse/policy"

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind { return []*policy.Kind{Kind} }

// Kind is the external policy kind.
var Kind = &policy.Kind{
	Name:     "external",
	Phase:    policy.PhaseAccess,
	Priority: 600,
	Blocking: true,
	New:      New,
}
