// Package deploy is the contract between the admin node, the node managers
// and the gateways: the configuration model of a group (services, routes,
// upstreams, consumers, certificates, global policies), its strict decoding
// from YAML or JSON, its validation with field paths, and its canonical
// encoding and checksum.
package deploy
