// Package policytest gives the policy kinds' tests a Request that needs no
// engine, Resources kept for the length of a test, and helpers to build a
// kind from a configuration written as JSON and to read what a Context
// ended up with.
package policytest
