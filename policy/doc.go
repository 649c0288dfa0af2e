// Package policy holds the policy interface, the built-in policies and the
// external policies run over hashicorp/go-plugin.
package policy
