// Package catalog lists the policy kinds a configuration may name: the
// built-in ones and "external", the gateway's door to policies in their
// own processes. The configuration model checks policy configurations
// against it and the gateway builds chains from it.
package catalog
