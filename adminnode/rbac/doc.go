// Package rbac is the permission model of the admin API: the permissions,
// the built-in roles, the scopes of role bindings and the Authorizer that
// decides, for one user, what a request may do. docs/rbac.md describes it
// for administrators.
//
// A permission is "resource:action"; roles may also hold "*" and
// "resource:*". A role binding grants a role to a user on the whole
// domain, on named groups or on the groups matching a label selector.
// Permissions on hosts, users and the audit log span every group, so only
// domain-scoped bindings grant them; token:self concerns only the caller,
// so any binding grants it.
//
// The package only decides; loading bindings and roles from the store,
// refusing disabled users and auditing denials are the API's business.
package rbac
