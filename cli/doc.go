// Package cli is the command-line client of a domain's admin node: the
// `gatehouse login`, `group`, `config`, `deploy`… commands, each a thin
// layer over adminnode/client. It exists apart from cmd/gatehouse so that
// the commands can be tested without a binary, and so that the admin API
// is only ever spoken by the client package.
//
// The commands print tables for people and, with -o json, the API's JSON
// for scripts. Where to connect, as whom and how to trust the server come
// from flags, then the environment, then the file `gatehouse login` wrote
// (config.go says why in that order, and why a saved token only goes to
// the address it was obtained from). docs/cli.md documents every command.
package cli
