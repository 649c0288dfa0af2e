// Package boltfile checks a bbolt file before bbolt opens it. bbolt maps
// the file into memory and trusts its meta pages, so a file cut short kills
// the process with SIGBUS instead of returning an error; every store of the
// project (the gateway's, the admin node's) opens its file through
// Preflight first.
package boltfile
