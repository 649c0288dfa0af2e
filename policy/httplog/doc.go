// Package httplog provides the http-log policy kind: every finished
// exchange becomes one JSON line, and the lines are POSTed in batches
// (application/x-ndjson) to a log collector's HTTP endpoint by a
// background sender. Logging never blocks a request: entries wait in a
// bounded queue, and what does not fit, or cannot be delivered, is dropped
// and counted.
package httplog
