package transform

import "github.com/gatehouse/gatehouse/policy"

// The kinds of this package, built once: a chain tells kinds apart by
// pointer.
var (
	requestIDKind = &policy.Kind{
		Name: "request-id", Phase: policy.PhaseRewrite, Priority: 200, New: newRequestID,
	}
	proxyRewriteKind = &policy.Kind{
		Name: "proxy-rewrite", Phase: policy.PhaseRewrite, Priority: 100, New: newProxyRewrite,
	}
	ipRestrictionKind = &policy.Kind{
		Name: "ip-restriction", Phase: policy.PhaseAccess, Priority: 1000, New: newIPRestriction,
	}
	corsKind = &policy.Kind{
		Name: "cors", Phase: policy.PhaseAccess, Priority: 950, New: newCORS,
	}
	requestSizeLimitKind = &policy.Kind{
		Name: "request-size-limit", Phase: policy.PhaseAccess, Priority: 900, LimitsBody: true, New: newRequestSizeLimit,
	}
	trafficSplitKind = &policy.Kind{
		Name: "traffic-split", Phase: policy.PhaseBeforeProxy, Priority: 200, New: newTrafficSplit,
	}
	requestHeadersKind = &policy.Kind{
		Name: "request-headers", Phase: policy.PhaseBeforeProxy, Priority: 100, New: newRequestHeaders,
	}
	responseHeadersKind = &policy.Kind{
		Name: "response-headers", Phase: policy.PhaseResponse, Priority: 100, New: newResponseHeaders,
	}
)

// Kinds lists the policy kinds of this package.
func Kinds() []*policy.Kind {
	return []*policy.Kind{
		requestIDKind, proxyRewriteKind, ipRestrictionKind, corsKind,
		requestSizeLimitKind, trafficSplitKind, requestHeadersKind, responseHeadersKind,
	}
}
