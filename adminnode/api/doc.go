// Package api is the admin node's HTTP API (/api/v1): authentication,
// RBAC enforcement, the audit trail of every change, and the handlers for
// groups, hosts, instances, drafts, deployments, users, roles, tokens,
// environments and trusted domains over an adminnode/store.Store.
//
// Routes are declared once, in a table (routes.go), with the permission
// each needs and how it finds the group that permission is checked on:
// the same table registers the gorilla/mux routes, drives the audit log's
// action names and produces the OpenAPI description, so that the three
// cannot drift apart. Requests and responses are adminnode/apitypes values
// rather than store records, so that a stored secret cannot reach a
// response by accident.
package api
