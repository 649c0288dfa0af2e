// Package certs compiles a configuration's certificates into an immutable
// SNI lookup for the gateway's TLS listener.
package certs
