// Package apitypes holds the request and response bodies of the admin
// node's HTTP API (/api/v1), shared by the server (adminnode/api) and the
// Go client (adminnode/client). They are the API's contract, kept apart
// from the store's records so that a storage field (a password hash, a
// token hash) can never leak into a response by being added to a struct.
package apitypes
