package deploy

import (
	"errors"

	"github.com/gatehouse/gatehouse/fieldpath"
)

// PolicyKinds is what validation knows of policies beyond their names: the
// kinds that exist and how each checks its configuration. deploy is the
// contract between the control and the data plane and depends on no policy
// implementation, so the caller passes the kinds in: policy/catalog's
// Checker, which the admin node, the gateway and the CLI always pass.
//
// A nil PolicyKinds knows no kind: every policy is refused as unknown, so
// a caller that forgets the catalog cannot let an unchecked policy
// configuration through.
type PolicyKinds interface {
	// PolicyChecker returns the checker of cfg's policies, whose
	// configurations may name cfg's consumers and upstreams. Validate calls
	// it once.
	PolicyChecker(cfg *Config) PolicyChecker
}

// PolicyChecker checks the policies of one configuration.
type PolicyChecker interface {
	// Known reports whether name is a kind of policy.
	Known(name string) bool
	// Check checks the configuration of a policy of the known kind name.
	// Errors whose paths are relative to config ("limits[0].window") are
	// reported below the policy's config field; any other error at the
	// field itself.
	Check(name string, config map[string]any) error
}

// noKinds is the checker of a nil PolicyKinds.
type noKinds struct{}

func (noKinds) Known(string) bool                  { return false }
func (noKinds) Check(string, map[string]any) error { return nil }

// policyChecker returns the checker of c's policies by kinds.
func (c *Config) policyChecker(kinds PolicyKinds) PolicyChecker {
	if kinds == nil {
		return noKinds{}
	}
	return kinds.PolicyChecker(c)
}

// policy checks one policy's name and, for a known kind, its
// configuration, reporting the kind's errors under path.config.
func (v *validator) policy(path string, p *Policy) {
	np := path + ".name"
	switch {
	case p.Name == "":
		v.errs.Add(np, "required")
		return
	case !policyName.MatchString(p.Name):
		v.errs.Add(np, `must be 1 to 63 lower-case letters, digits or "-", starting with a letter`)
		return
	}
	if !v.kinds.Known(p.Name) {
		v.errs.Addf(np, "unknown policy %q", p.Name)
		return
	}
	if err := v.kinds.Check(p.Name, p.Config); err != nil {
		var es Errors
		if !errors.As(err, &es) {
			v.errs.Add(path+".config", err.Error())
			return
		}
		for _, e := range es {
			v.errs.Add(fieldpath.Under(path+".config", e.Path), e.Message)
		}
	}
}
