package httplog

import "github.com/gatehouse/gatehouse/policy"

var httpLogKind = &policy.Kind{
	Name: "http-log", Phase: policy.PhaseLog, Priority: 100, New: newHTTPLog,
}

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind { return []*policy.Kind{httpLogKind} }
