// Package devdomain runs a whole domain on one machine for gatehouse dev:
// an admin node, a node manager, a demo upstream and a group "demo" of two
// gateway instances with a sample configuration deployed — the real
// processes and protocols (HTTPS, mTLS, signed deployments, supervised
// gateway processes), in a directory that can be thrown away. Everything
// listens on loopback only, the gateways' gossip included.
package devdomain
