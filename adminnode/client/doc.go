// Package client is a published contract of the admin node: the Go client
// of its HTTP API (docs/admin-api.md). The CLI and the node manager are
// built on it, and so can be anything else that drives a domain, so that
// none of them repeats the details of the wire: paths and their escaping,
// bearer tokens, If-Match versions, and the error bodies, which become
// *APIError. As a contract it imports no admin node logic, only
// adminnode/apitypes and neutral packages (internal/archtest checks it).
//
// The admin node's certificate is issued by the domain's own CA, which no
// system trusts. A client is therefore told which CA to trust, either as a
// PEM certificate or, the first time, as the CA's fingerprint: the
// fingerprint travels out of band (`admin init` prints it), so pinning it
// makes the first connection as safe as the later ones, which use the CA
// certificate the pinned connection returned (ServerCA).
//
// A client may be given several admin nodes of one domain (Config.Addresses,
// or a DNS name with several addresses): it sticks to one and moves to the
// next on a connection failure or a 5xx, and sends the failed request
// again only when a second copy cannot apply twice (Config.Addresses says
// which).
//
// Request and response bodies are the types of adminnode/apitypes.
package client
