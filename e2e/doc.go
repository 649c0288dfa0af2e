// Package e2e holds the end-to-end tests: they build the gatehouse binary,
// start it as a real process on loopback and talk to it over the network,
// as a user would.
package e2e
