// Package adminnode is the Admin Node Manager's lifecycle: Init creates a
// domain in a data directory once, Run serves it. The parts it wires
// together live in the subpackages (store, ca, rbac, auth, api, status);
// this package owns only what happens at their edges: which files a data
// directory holds, in what order they are written, and what must agree
// before the node may serve.
//
// Init makes the store the commit point: the key files are written first
// and admin.db appears, complete, by a rename at the very end. A domain
// either exists whole or not at all, and the remains of a crash half-way
// are recognisable (key files without admin.db), so Init can refuse them
// with an explanation instead of guessing, and never overwrites a domain.
//
// Run refuses key files that are not the store's domain's. A CA or signing
// key from another domain would not fail loudly later: it would issue
// certificates no node trusts and sign deployments every gateway refuses.
// The node issues its own HTTPS certificate from the domain CA at start and
// renews it while it runs, so there is no server certificate to provision
// or to let expire; clients pin the CA, never that certificate. Run also
// loads settings.key, the key environment secrets are sealed with, making
// it for a domain that predates it — but never over secrets sealed with a
// lost one — and brings the built-in roles of an older domain up to date.
//
// A domain can also be kept in PostgreSQL (package store/pgstore): the
// data dir then holds only the keys and a marker, never the connection
// string, and Join makes another admin node's data dir from a key bundle
// (package keybundle) once its keys are checked against the domain the
// database holds.
//
// docs/admin-node.md is the operator's view of both.
package adminnode
