package auth

import "github.com/gatehouse/gatehouse/policy"

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind { return nil }
