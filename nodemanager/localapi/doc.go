// Package localapi is a published contract of the node manager: its local
// API, the HTTP API a node manager serves on loopback (DefaultAddress,
// paths under /v1) to the gateway processes it supervises. It holds the
// wire types and a small Client that gateways use; the server lives in
// nodemanager. As a contract it imports no node manager logic
// (internal/archtest checks it).
//
// The protocol is described in docs/node-manager.md. In short:
//
//   - A gateway started by a node manager gets --node-manager (the base URL
//     of this API), --domain-key (the domain's deployment key) and a
//     per-instance secret in the environment variable EnvInstanceSecret,
//     which it sends as "Authorization: Bearer <secret>".
//   - GET /v1/deployment?instance=NAME&index=N&wait=30s is a blocking query
//     (Consul's model): the answer (DeploymentAnswer) comes at once when the
//     index of the instance's group deployment differs from N, else when it
//     changes, else after wait with the same index. The index is the node
//     manager's own counter of the deployments it stored (not the
//     deployment's number, so that a good copy replacing a damaged one with
//     the same number is still news); the deployment is absent while the
//     group has none.
//   - PUT /v1/instances/{name}/report (Report) says what the gateway runs:
//     after every attempt to apply a deployment and periodically, so that
//     the node manager sees readiness.
//   - PUT /v1/instances/{name}/traffic (traffic.Snapshot) is a stopping
//     gateway's last traffic counts, sent once it has drained, so that
//     what it served since the node manager last read its /traffic is
//     not lost.
//   - GET /v1/instances (InstanceList, loopback only, no secret) is the
//     supervisor's view of every local instance.
//   - POST /v1/instances/{name}/restart is an operator's: it needs the
//     operator token of TokenFile in the node manager's data dir as
//     "Authorization: Bearer <token>".
//   - Every route refuses a request with an Origin header or a Host that
//     is not a loopback address (403): web pages and rebound names.
//
// A gateway trusts nothing the node manager says about a deployment: it
// applies one only if its signature verifies with the domain key, its group
// is its own and its number is not lower than the one it serves.
package localapi
