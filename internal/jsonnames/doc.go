// Package jsonnames checks that the JSON a type encodes to names every
// field in snake_case, the convention of every API of the project (admin
// API, agent API, node manager local API, gateway status port), so that a
// field added without a json tag, which would appear capitalised, is
// caught by a test rather than by a script that reads it.
package jsonnames
