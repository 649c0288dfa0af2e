// Package demo is the demo upstream of `make run` and `gatehouse dev`: an
// HTTP server that answers every request with a JSON description of what it
// received, so that what a gateway forwards (path rewrites, forwarding
// headers, request ids) can be seen with curl.
package demo
