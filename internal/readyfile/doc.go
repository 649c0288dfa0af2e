// Package readyfile writes the ready file of a gatehouse process
// (--ready-file): once every listener is bound, the addresses it bound,
// as a JSON object, so that whoever started the process with port 0 (a
// test harness, a supervisor, a script) learns the ports without racing
// anyone for them.
package readyfile
