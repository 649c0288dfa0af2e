// Package apitypes is a published contract of the admin node: the request
// and response bodies of its HTTP API (/api/v1), shared by the server
// (adminnode/api), the Go client (adminnode/client), the node manager and
// the CLI. They are kept apart from the store's records so that a storage
// field (a password hash, a token hash) can never leak into a response by
// being added to a struct. As a contract it imports no admin node logic
// (internal/archtest checks it).
package apitypes
