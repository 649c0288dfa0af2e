package auth

import "github.com/gatehouse/gatehouse/policy"

var (
	keyAuthKind = &policy.Kind{
		Name: "key-auth", Phase: policy.PhaseAccess, Priority: 800, New: newKeyAuth,
	}
	basicAuthKind = &policy.Kind{
		Name: "basic-auth", Phase: policy.PhaseAccess, Priority: 790, New: newBasicAuth,
	}
	jwtAuthKind = &policy.Kind{
		Name: "jwt-auth", Phase: policy.PhaseAccess, Priority: 780, New: newJWTAuth,
	}
)

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind {
	return []*policy.Kind{keyAuthKind, basicAuthKind, jwtAuthKind}
}
