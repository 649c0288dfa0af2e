// Package boltfile opens the bbolt files of the project's stores (the
// gateway's, the admin node's, the node manager's) safely: bbolt maps a file into memory and
// trusts its meta pages, so a file cut short kills the process with SIGBUS
// and damaged pages make it panic. Open checks the file before and after
// bbolt opens it and turns both into errors. Upgrade is the schema-version
// check and upgrade every store's file goes through. ReadUsage reads how a
// file's pages are used, from its meta pages, while another process holds
// it.
package boltfile
