// Package catalog lists the policy kinds a configuration may name: the
// built-in ones and "external", the gateway's door to policies in their
// own processes. The gateway builds chains from it, and its Checker is
// the deploy.PolicyKinds that configurations are validated with: deploy
// depends on no policy, so every caller of its validation passes Checker.
package catalog
