// Package adminnode is the Admin Node Manager: the domain's store, admin
// API, RBAC, CA, deployments, status and metrics store.
package adminnode
