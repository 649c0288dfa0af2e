// Package policy is the contract between the gateway's request path and
// the policies that act on it: the phases a request goes through, the
// Context a policy reads and edits, the Kind that builds a policy from its
// configuration, and the compiled Chain that runs a route's policies in
// order. It knows neither the configuration model nor the engines: the
// built-in kinds live in their own packages (policy/auth, policy/ratelimit,
// policy/transform, policy/httplog, policy/external), policy/catalog lists
// them, and gateway/proxy adapts both HTTP engines to Request and applies
// a Context's edits.
package policy
