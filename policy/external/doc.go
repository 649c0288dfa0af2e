// Package external provides the external policy kind: a policy whose
// decision is made by a plugin binary from the gateway's plugin directory,
// run as a child process over hashicorp/go-plugin (gRPC, protocol in
// pluginpb). The gateway keeps one process per plugin binary and plugin
// configuration across deployments, restarts it when it dies, and applies
// the policy's failure_mode while it cannot answer. Plugins are written
// with policy/external/sdk.
package external
